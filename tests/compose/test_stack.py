"""End-to-end scenarios against `docker compose up --build`, where a Docker engine answers.

The project gets its own name and free host ports, so it never collides with a stack a
developer is running; it is torn down with its volumes at the end.
"""

import itertools
import os
import time
import uuid

import pytest
import requests

from tests.compose.tooling import COMPOSE_FILE, compose_commands, engine_problem, run
from tests.integration.api import TIMEOUT, create_order, create_user, orders_of
from tests.integration.load import Load
from tests.support.processes import free_port, wait_until

pytestmark = [pytest.mark.compose, pytest.mark.timeout(1200)]


class ComposeStack:
    def __init__(self, command: list[str]):
        self.project = f"switchyard-test-{uuid.uuid4().hex[:8]}"
        self.gateway_port, self.consul_port = free_port(), free_port()
        self.jaeger_port = free_port()
        self.command = [*command, "-f", str(COMPOSE_FILE), "-p", self.project]
        self.env = {
            **os.environ,
            "GATEWAY_PORT": str(self.gateway_port),
            "CONSUL_PORT": str(self.consul_port),
            "JAEGER_PORT": str(self.jaeger_port),
            # Its own image tag: another checkout's stack may be building on this engine.
            "SWITCHYARD_IMAGE": f"{self.project}:latest",
        }
        self.gateway = f"http://127.0.0.1:{self.gateway_port}"
        self.consul = f"http://127.0.0.1:{self.consul_port}"
        self.jaeger = f"http://127.0.0.1:{self.jaeger_port}"

    def compose(self, *args: str, timeout: float = 120) -> str:
        result = run([*self.command, *args], timeout, env=self.env)
        assert result.returncode == 0, (
            f"compose {' '.join(args)}:\n{result.stderr[-3000:]}"
        )
        return result.stdout

    def containers(self, service: str) -> list[str]:
        return self.compose("ps", "-q", service).split()

    def passing(self, service: str) -> list[dict]:
        resp = requests.get(
            f"{self.consul}/v1/health/service/{service}?passing", timeout=5
        )
        return resp.json() if resp.status_code == 200 else []

    def gateway_routes_to_everyone(self) -> bool:
        resp = requests.get(f"{self.gateway}/health", timeout=5)
        services = resp.json().get("services", {}) if resp.status_code == 200 else {}
        return all(
            services.get(s, {}).get("routable", 0) >= 2
            for s in ("user-service", "order-service")
        )

    def logs(self) -> str:
        return run(
            [*self.command, "logs", "--no-color", "--tail", "40"], 60, env=self.env
        ).stdout


@pytest.fixture(scope="module")
def compose_stack():
    problem = engine_problem()
    if problem:
        pytest.skip(problem)
    commands = compose_commands()
    if not commands:
        pytest.skip("neither `docker compose` nor `docker-compose` is installed")
    stack = ComposeStack(commands[0])
    try:
        stack.compose("up", "--build", "-d", timeout=900)
        try:
            wait_until(
                stack.gateway_routes_to_everyone,
                240,
                1.0,
                "gateway routing to 2+2 instances",
            )
        except AssertionError as exc:
            pytest.fail(f"{exc}\n{stack.logs()}", pytrace=False)
        yield stack
    finally:
        # Seconds, not each container's drain and stop_grace_period: nothing is tested now.
        down = [*stack.command, "down", "-v", "--remove-orphans", "--timeout", "1"]
        run(down, 300, env=stack.env)
        run(["docker", "rmi", stack.env["SWITCHYARD_IMAGE"]], 120)


def test_users_orders_idempotency_and_the_view(compose_stack):
    gateway = compose_stack.gateway
    user = create_user(gateway)
    key = str(uuid.uuid4())
    first = create_order(gateway, user["id"], "12.50", key=key)
    again = create_order(gateway, user["id"], "12.50", key=key)
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["total_amount"] == "12.50"
    assert [o["id"] for o in orders_of(gateway, user["id"])] == [first.json()["id"]]
    view = requests.get(f"{gateway}/api/views/users/{user['id']}", timeout=TIMEOUT)
    assert view.status_code == 200 and view.json()["user"]["id"] == user["id"]


def test_replicas_register_their_container_addresses(compose_stack):
    for service in ("user-service", "order-service"):
        addresses = {e["Service"]["Address"] for e in compose_stack.passing(service)}
        assert len(addresses) == 2 and "127.0.0.1" not in addresses, addresses


def test_round_robin_over_both_replicas(compose_stack):
    user = create_user(compose_stack.gateway)
    with requests.Session() as session:
        served = [
            session.get(
                f"{compose_stack.gateway}/api/users/{user['id']}", timeout=TIMEOUT
            ).headers["X-Served-By"]
            for _ in range(6)
        ]
    assert len(set(served)) == 2
    assert all(a != b for a, b in itertools.pairwise(served))


def test_killing_a_replica_under_get_load_fails_no_request(compose_stack):
    user = create_user(compose_stack.gateway)
    url = f"{compose_stack.gateway}/api/users/{user['id']}"
    victim = compose_stack.containers("user-service")[0]
    with Load({"get": lambda session, n: session.get(url, timeout=TIMEOUT)}) as load:
        wait_until(lambda: load.count() >= 20, 30, what="load running")
        run(["docker", "kill", victim], 60)
        killed_at = time.monotonic()
        wait_until(
            lambda: load.count(since=killed_at) >= 100, 60, what="load after the kill"
        )
    assert load.failures() == []
    # Whether or not the restart policy already did (a kill may count as a manual stop).
    run(["docker", "start", victim], 60)
    wait_until(compose_stack.gateway_routes_to_everyone, 120, 1.0, "replica back")


def test_a_request_through_the_gateway_leaves_its_trace_in_jaeger(compose_stack):
    """Asked as one would ask real Jaeger: its query API, by service.

    The gateway continues the caller's trace: its server span is a child of the caller's
    span (which Jaeger never receives), order-service's server span a child of the
    gateway's attempt span, and user-service's spans (the user check) hang under
    order-service's client span.
    """
    user = create_user(compose_stack.gateway)
    trace_id, caller_span = uuid.uuid4().hex, uuid.uuid4().hex[:16]
    resp = requests.post(
        f"{compose_stack.gateway}/api/orders",
        json={"user_id": user["id"], "total_amount": "3.00"},
        headers={"traceparent": f"00-{trace_id}-{caller_span}-01"},
        timeout=TIMEOUT,
    )
    assert resp.status_code == 201, resp.text

    def parent(span: dict) -> str | None:
        (reference,) = span["references"] or [{"refType": "CHILD_OF", "spanID": None}]
        assert reference["refType"] == "CHILD_OF"
        return reference["spanID"]

    def the_trace() -> dict | None:
        found = requests.get(
            f"{compose_stack.jaeger}/api/traces",
            params={"service": "order-service", "limit": 1000},
            timeout=5,
        )
        assert found.status_code == 200, found.text
        traces = [t for t in found.json()["data"] if t["traceID"] == trace_id]
        if not traces:
            return None
        (trace,) = traces
        services = {p["serviceName"] for p in trace["processes"].values()}
        ids = {s["spanID"] for s in trace["spans"]}
        orphans = [s for s in trace["spans"] if parent(s) not in ids]
        # Each process exports on its own schedule, a batch may end between two spans of
        # one request: wait for all three services' spans, joined up under one root.
        complete = services == {"gateway", "order-service", "user-service"}
        return trace if complete and len(orphans) == 1 else None

    trace = wait_until(the_trace, 60, 0.5, "the order's whole trace in Jaeger")
    spans = {s["spanID"]: s for s in trace["spans"]}
    assert all(s["traceID"] == trace_id for s in spans.values())

    def service(span: dict) -> str:
        return trace["processes"][span["processID"]]["serviceName"]

    def services_up_to_the_root(span: dict) -> list[str]:
        """The services on the way from `span` to the root, each once."""
        path = [service(span)]
        while parent(span) in spans:
            span = spans[parent(span)]
            path.append(service(span))
        return [name for name, _ in itertools.groupby(path)]

    (root,) = [s for s in spans.values() if parent(s) not in spans]
    assert (service(root), parent(root)) == ("gateway", caller_span)
    users = [s for s in spans.values() if service(s) == "user-service"]
    assert users, trace
    for span in users:
        assert services_up_to_the_root(span) == [
            "user-service",
            "order-service",
            "gateway",
        ], trace


def test_consul_outage_then_return(compose_stack):
    """Consul stops before order-service has served any order (issue 12), then returns.

    Restarting order-service first makes every one of its workers fresh, so the outage
    always meets workers that never looked user-service up: a worker that finds its
    instances lazily, on first use, has nothing to fall back on and answers 503. Without
    the restart, the result would depend on which workers earlier tests happened to warm.
    """
    gateway = compose_stack.gateway
    user = create_user(gateway)
    compose_stack.compose("restart", "order-service")
    wait_until(compose_stack.gateway_routes_to_everyone, 120, 1.0, "order-service back")
    compose_stack.compose("stop", "consul")
    try:
        wait_until(
            lambda: requests.get(f"{gateway}/health", timeout=5).json()["consul"][
                "stale"
            ],
            60,
            1.0,
            "gateway reports stale",
        )
        resp = requests.get(f"{gateway}/api/users/{user['id']}", timeout=TIMEOUT)
        assert resp.status_code == 200
        # Enough orders to reach all four order-service workers (2 replicas x 2) many times over.
        statuses = [
            create_order(gateway, user["id"], key=str(uuid.uuid4())).status_code
            for _ in range(16)
        ]
        assert statuses == [201] * 16, statuses
        view = requests.get(f"{gateway}/api/views/users/{user['id']}", timeout=TIMEOUT)
        body = view.json()
        assert (view.status_code, body["errors"]) == (200, []), body
        assert len(body["orders"]) == 16
    finally:
        compose_stack.compose("start", "consul")
    wait_until(
        lambda: len(compose_stack.passing("user-service")) == 2,
        120,
        1.0,
        "re-registered",
    )
    wait_until(
        compose_stack.gateway_routes_to_everyone, 60, 1.0, "routing follows Consul"
    )
