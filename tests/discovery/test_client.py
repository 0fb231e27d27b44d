import random
import time
from collections import Counter

import pytest
import requests

from discovery.client import ServiceClient, StaticSource
from discovery.env import ConfigError
from discovery.errors import DiscoveryError, NoHealthyInstance, ServiceUnavailable
from discovery.instances import Snapshot
from discovery.strategies import make_strategy
from tests.discovery.stubs import HangUpServer, StubServer, answer, closed_port_url


class EmptySource:
    def snapshot(self):
        return Snapshot((), index=3, updated_at=time.monotonic(), stale=False)


def client_for(*urls, strategy="round_robin", **kwargs):
    return ServiceClient(
        "user-service",
        strategy=make_strategy(strategy, random.Random(1)),
        source=StaticSource(",".join(urls), service="user-service"),
        **kwargs,
    )


def test_requests_spread_over_instances_round_robin():
    with StubServer(answer("a")) as a, StubServer(answer("b")) as b:
        client = client_for(a.url, b.url)
        bodies = Counter(client.request("GET", "/users/1").text for _ in range(10))
    assert bodies == Counter({"a": 5, "b": 5})
    assert {path for _, path, _ in a.requests} == {"/users/1"}


def test_http_errors_are_returned_not_retried():
    with StubServer(answer("gone", 404)) as a, StubServer(answer("b")) as b:
        client = client_for(a.url, b.url)
        statuses = Counter(
            client.request("GET", "/users/9").status_code for _ in range(4)
        )
    assert statuses == Counter({404: 2, 200: 2})


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_refused_connection_moves_to_another_instance(method):
    with StubServer(answer("ok")) as good:
        client = client_for(closed_port_url(), good.url)
        for _ in range(4):
            assert client.request(method, "/users", json={}).text == "ok"
        assert len(good.requests) == 4


def test_broken_connection_retries_idempotent_methods_only():
    with HangUpServer() as broken, StubServer(answer("ok")) as good:
        client = client_for(broken.url, good.url, strategy="round_robin")
        # Round-robin alternates, so within two calls each instance is tried first once.
        assert [client.request("GET", "/x").text for _ in range(2)] == ["ok", "ok"]
        with pytest.raises(ServiceUnavailable):
            for _ in range(2):
                client.request("POST", "/x", json={})
    assert broken.accepted >= 2


def test_all_instances_failing_raises_service_unavailable_with_attempts():
    urls = [closed_port_url(), closed_port_url()]
    with pytest.raises(ServiceUnavailable) as err:
        client_for(*urls).request("GET", "/users")
    assert isinstance(err.value, DiscoveryError)
    assert len(err.value.attempts) == 2
    assert len({iid for iid, _ in err.value.attempts}) == 2


def test_attempts_are_capped():
    urls = [closed_port_url() for _ in range(5)]
    with pytest.raises(ServiceUnavailable) as err:
        client_for(*urls, max_attempts=3).request("GET", "/")
    assert len(err.value.attempts) == 3


def test_read_timeout_is_not_retried():
    def slow(request):
        time.sleep(1.0)
        return 200, {}, b"late"

    with StubServer(slow) as a, StubServer(slow) as b:
        client = client_for(a.url, b.url, read_timeout=0.2)
        with pytest.raises(ServiceUnavailable) as err:
            client.request("GET", "/users/1")
    assert len(err.value.attempts) == 1
    assert isinstance(err.value.attempts[0][1], requests.ReadTimeout)


def test_no_instance_listed_raises_no_healthy_instance():
    client = ServiceClient("user-service", source=EmptySource())
    with pytest.raises(NoHealthyInstance) as err:
        client.request("GET", "/users/1")
    assert err.value.service == "user-service"
    assert isinstance(err.value, DiscoveryError)


@pytest.mark.parametrize(
    "urls, expected",
    [
        ("http://127.0.0.1:8001", [("127.0.0.1", 8001)]),
        (" http://a:1 , http://b:2/ ", [("a", 1), ("b", 2)]),
        (["http://[::1]:9"], [("::1", 9)]),
    ],
)
def test_static_source_parses_urls(urls, expected):
    snap = StaticSource(urls, service="user-service").snapshot()
    assert [(i.address, i.port) for i in snap.instances] == expected
    assert not snap.stale and snap.loaded
    assert snap.instances[0].id.startswith("user-service-")


@pytest.mark.parametrize(
    "urls",
    ["", "127.0.0.1:8001", "https://a:1", "http://a", "http://a:1/users", "http://a:x"],
)
def test_static_source_rejects_bad_urls_naming_the_variable(urls):
    with pytest.raises(ConfigError) as err:
        StaticSource(urls, variable="USER_SERVICE_URL")
    assert str(err.value).startswith("USER_SERVICE_URL:")
