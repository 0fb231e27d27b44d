import random
import signal
import time
from collections import Counter

import pytest
import requests

from chassis.env import ConfigError
from chassis.errors import DiscoveryError, NoHealthyInstance, ServiceUnavailable
from discovery.client import ServiceClient, StaticSource
from discovery.instances import Snapshot
from discovery.strategies import make_strategy
from tests.discovery.stubs import (
    FrozenServer,
    HangUpServer,
    StubServer,
    answer,
    closed_port_url,
)
from tests.support.processes import (
    ManagedProcess,
    free_port,
    python_module,
    true_in_a_forked_child,
    wait_until,
)


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


def test_a_frozen_instance_costs_idempotent_requests_one_read_timeout():
    with FrozenServer() as frozen, StubServer(answer("ok")) as good:
        client = client_for(frozen.url, good.url, read_timeout=0.3)
        # Round-robin: every other request tries the frozen one first, then the other.
        assert [client.request("GET", "/users/1").text for _ in range(4)] == ["ok"] * 4
    assert len(good.requests) == 4


def test_a_read_timeout_is_not_retried_for_a_post():
    with FrozenServer() as a, FrozenServer() as b:
        client = client_for(a.url, b.url, read_timeout=0.2)
        with pytest.raises(ServiceUnavailable) as err:
            client.request("POST", "/users", json={})
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


class UnloadedSource:
    """A watcher that has not heard from Consul yet; waiting for it is not allowed."""

    def snapshot(self):
        return Snapshot()

    def wait_ready(self, timeout):
        raise AssertionError("the request path waited for Consul")


def test_no_answer_from_consul_yet_is_no_healthy_instance_at_once():
    client = ServiceClient("user-service", source=UnloadedSource())
    with pytest.raises(NoHealthyInstance):
        client.request("GET", "/users/1")


# -- integration: order-service calling user-service found through Consul ------------------


def start_service(package, agent, port, data_dir):
    env = {
        "CONSUL_HTTP_ADDR": agent.addr,
        "SERVICE_ADDRESS": "127.0.0.1",
        "BIND_HOST": "127.0.0.1",
        "PORT": str(port),
        "CHECK_INTERVAL": "1s",
        "CHECK_TIMEOUT": "1s",
        "DATA_DIR": str(data_dir),
        "WEB_CONCURRENCY": "1",
        "GUNICORN_THREADS": "4",
        "DRAIN_SECONDS": "0.5",
        # Access lines show which instance order-service asked.
        "GUNICORN_CMD_ARGS": "--access-logfile -",
    }
    env.pop("USER_SERVICE_URL", None)
    argv = python_module(
        "gunicorn", "-c", f"python:{package}.gunicorn_conf", f"{package}.wsgi:app"
    )
    proc = ManagedProcess(argv, env=env, name=f"{package}-{port}").start()
    proc.url = f"http://127.0.0.1:{port}"
    return proc


@pytest.mark.integration
def test_orders_keep_working_while_a_user_service_instance_is_killed(
    devconsul, tmp_path
):
    pytest.importorskip("user_service.wsgi")
    pytest.importorskip("order_service.wsgi")
    procs = []
    try:
        procs = [
            start_service(package, devconsul, free_port(), tmp_path)
            for package in ("user_service", "user_service", "order_service")
        ]
        users_a, users_b, orders = procs
        for proc in procs:
            proc.wait_http(f"{proc.url}/health", status=200)
        passing = f"{devconsul.url}/v1/health/service/user-service?passing"
        wait_until(
            lambda: len(requests.get(passing, timeout=2).json()) == 2, timeout=10
        )

        user = requests.post(
            f"{users_a.url}/users",
            json={"name": "Ada", "email": "ada@example.com"},
            timeout=5,
        )
        assert user.status_code == 201, user.text
        order = {"user_id": user.json()["id"], "total_amount": "12.50"}

        def create():
            return requests.post(f"{orders.url}/orders", json=order, timeout=10)

        # Consul lists both; order-service's watcher follows within a rate-limited query or
        # two. Orders until it has asked each instance: B's death below must be one it knew.
        asked = f'"GET /users/{order["user_id"]} '
        statuses = []

        def both_asked():
            statuses.append(create().status_code)
            return all(asked in users.output() for users in (users_a, users_b))

        wait_until(both_asked, timeout=10, what="order-service asking both instances")
        users_b.signal(signal.SIGKILL)
        started = time.monotonic()
        # Spans B's death until Consul marks it critical.
        while time.monotonic() - started < 3:
            statuses.append(create().status_code)
        assert set(statuses) == {201}, statuses
        # an unknown user is still told apart from an outage
        missing = requests.post(
            f"{orders.url}/orders", json={**order, "user_id": 999999}, timeout=10
        )
        assert missing.status_code == 422
    finally:
        for proc in procs:
            proc.signal(signal.SIGINT)  # quick stop, deregistering without a drain
        for proc in procs:
            proc.stop()


def test_a_forked_child_never_uses_the_parents_pooled_session():
    # gunicorn forks workers from a master that may have called already: sharing the
    # parent's pooled sockets would interleave two processes' requests on one connection.
    client = client_for("http://127.0.0.1:1")
    parents = client._session()
    assert client._session() is parents  # one per thread, kept
    assert true_in_a_forked_child(lambda: client._session() is not parents)
    assert client._session() is parents


def test_calls_from_one_thread_reuse_one_keep_alive_connection():
    # order-service checks the user on every POST /orders: a TCP connection opened for
    # each check would be an avoidable round trip.
    client_ports = []

    def remember(request):
        client_ports.append(request.client_address[1])
        return 200, {}, b"ok"

    with StubServer(remember) as a:
        client = client_for(a.url)
        for _ in range(5):
            assert client.request("GET", "/users/1").status_code == 200
    assert len(client_ports) == 5
    assert len(set(client_ports)) == 1
