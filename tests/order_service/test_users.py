import pytest

from chassis.env import ConfigError
from discovery.client import StaticSource
from discovery.instances import Snapshot
from order_service.settings import Settings
from order_service.users import (
    UserDirectory,
    UserServiceUnavailable,
    discovered_services,
)
from tests.discovery.stubs import StubServer, answer
from tests.support.processes import free_port

STATIC = StaticSource("http://127.0.0.1:1").snapshot()


def directory(url: str) -> UserDirectory:
    return UserDirectory(
        Settings(
            database_url="sqlite://", user_service_url=url, user_service_timeout=2.0
        )
    )


def test_asks_the_real_user_service(user_service_url, new_user):
    users = directory(user_service_url)
    assert users.exists(new_user()) is True
    assert users.exists(2_000_000_000) is False


def test_any_of_several_urls_may_answer(user_service_url, new_user):
    dead = f"http://127.0.0.1:{free_port()}"
    users = directory(f"{dead},{user_service_url}")
    user_id = new_user()
    # The dead one is skipped every time.
    assert all(users.exists(user_id) for _ in range(4))


def test_nothing_listening_is_unavailable():
    with pytest.raises(UserServiceUnavailable):
        directory(f"http://127.0.0.1:{free_port()}").exists(1)


@pytest.mark.parametrize("status", [500, 503, 401])
def test_a_failing_user_service_is_unavailable_not_unknown(status):
    with (
        StubServer(answer("no", status)) as stub,
        pytest.raises(UserServiceUnavailable, match=str(status)),
    ):
        directory(stub.url).exists(1)


def test_a_malformed_url_fails_at_boot():
    with pytest.raises(ConfigError, match="^USER_SERVICE_URL: "):
        directory("users.internal:8001")


def test_bad_consul_setting_fails_when_the_directory_is_built(monkeypatch):
    monkeypatch.setenv("CONSUL_HTTP_ADDR", "ftp://x")
    with pytest.raises(ConfigError) as err:
        UserDirectory(Settings(database_url="sqlite://"))
    assert str(err.value).startswith("CONSUL_HTTP_ADDR:")


def test_consul_settings_do_not_matter_with_a_fixed_url(monkeypatch):
    monkeypatch.setenv("CONSUL_HTTP_ADDR", "ftp://x")
    assert directory("http://127.0.0.1:1").static_source is not None


@pytest.mark.parametrize(
    "environ, services",
    [({}, ("user-service",)), ({"USER_SERVICE_URL": "http://a:1"}, ())],
)
def test_services_found_through_consul_are_known_at_boot(environ, services):
    assert discovered_services(environ) == services


class Source:
    def __init__(self, snapshot):
        self.snapshot = lambda: snapshot


@pytest.mark.parametrize(
    "snapshot, state",
    [
        (Snapshot(), "unavailable"),  # no answer from Consul yet
        (Snapshot((), 0, 0.0, True, "refused"), "unavailable"),  # only failures
        (Snapshot((), 3, 1.0, False), "ok"),  # an empty list is an answer
        (Snapshot(STATIC.instances, 3, 1.0, True, "refused"), "stale"),
    ],
)
def test_discovery_state_for_health(snapshot, state):
    users = directory("http://127.0.0.1:1")
    users.client.source = Source(snapshot)
    assert users.discovery_state() == state
