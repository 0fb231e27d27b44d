"""Tracing across real processes: user-service and order-service under gunicorn export to
switchyard's OTLP receiver, and the traces are checked from what the receiver stored.

order-service reaches user-service through a recording proxy, so the test also sees the
`traceparent` order-service sends on (for a sampled-out request there is no span to see).
Then the whole path: the gateway under gunicorn in front of both services, all found through
a devconsul agent, all exporting to one receiver.
"""

import contextlib
import http.client
import re
import socket
import threading
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests

from switchyard.otlp import OTLPReceiver
from switchyard.spanstore import SpanRecord, SpanStore
from switchyard.traces import find_trace, roots
from tests.conftest import Agent
from tests.gateway.stack import (
    quick_stop,
    register_static,
    start_gateway,
    wait_routable,
)
from tests.support.processes import ManagedProcess, free_port, wait_until
from tests.support.services import fresh_database, start_service, stop_now

pytestmark = pytest.mark.integration

# Spans leave each process within 100 ms of their end rather than the default 5 s.
FAST_EXPORT = {"OTEL_BSP_SCHEDULE_DELAY": "100"}
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
GATEWAY_SPAN_ID = "00f067aa0ba902b7"


class RecordingProxy:
    """Forwards GETs to `upstream`, keeping the headers of each request it saw."""

    def __init__(self, upstream: str):
        self.seen: list[dict[str, str]] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                proxy.seen.append({k.lower(): v for k, v in self.headers.items()})
                forwarded = {
                    k: v
                    for k, v in self.headers.items()
                    if k.lower() in ("traceparent", "tracestate", "x-request-id")
                }
                answer = requests.get(
                    upstream + self.path, headers=forwarded, timeout=10
                )
                self.send_response(answer.status_code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@dataclass
class Running:
    users: ManagedProcess
    users_url: str
    orders: ManagedProcess
    orders_url: str
    user_id: int  # a user that exists


@contextlib.contextmanager
def both_services(
    directory: Path, env: dict, route_to_users=None, database: str = "sqlite"
):
    """user-service and order-service (one worker each, so each exports in order) with
    `env`; order-service reaches user-service at `route_to_users(users_url)` (its env),
    directly by default. Stopped at the end, and neither may have logged a traceback."""
    route_to_users = route_to_users or (lambda url: {"USER_SERVICE_URL": url})
    processes = []
    with (
        fresh_database(database, directory, "users") as users_db,
        fresh_database(database, directory, "orders") as orders_db,
    ):
        try:
            users, users_url = start_service(
                "user_service", users_db, workers=1, env=env
            )
            processes.append(users)
            orders, orders_url = start_service(
                "order_service",
                orders_db,
                workers=1,
                env={**env, **route_to_users(users_url)},
            )
            processes.append(orders)
            user = requests.post(
                f"{users_url}/users",
                json={"name": "Ada", "email": "ada@example.com"},
                timeout=10,
            )
            assert user.status_code == 201, user.text
            yield Running(users, users_url, orders, orders_url, user.json()["id"])
        finally:
            stop_now(*processes)
    for process in processes:
        assert "Traceback" not in process.output()


@dataclass
class Traced:
    store: SpanStore
    services: Running
    proxy: RecordingProxy


@pytest.fixture(scope="module")
def traced(tmp_path_factory):
    """Both services exporting to one receiver, order-service calling through a proxy."""
    directory = tmp_path_factory.mktemp("tracing")
    store = SpanStore(directory)
    receiver = OTLPReceiver(store).start()
    env = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url,
        **FAST_EXPORT,
        "GUNICORN_CMD_ARGS": "--access-logfile -",
    }
    proxies = []

    def through_a_proxy(users_url: str) -> dict:
        proxies.append(RecordingProxy(users_url))
        return {"USER_SERVICE_URL": proxies[0].url}

    try:
        with both_services(directory, env, through_a_proxy) as running:
            yield Traced(store, running, proxies[0])
    finally:
        receiver.stop()
        for proxy in proxies:
            proxy.close()


def post_order(orders_url: str, user_id: int, **headers) -> requests.Response:
    response = requests.post(
        f"{orders_url}/orders",
        json={"user_id": user_id, "total_amount": "12.50"},
        headers=headers,
        timeout=30,
    )
    assert response.status_code == 201, response.text
    return response


def complete_trace(
    store: SpanStore, trace_id: str, servers=("order-service", "user-service")
) -> list[SpanRecord]:
    """The trace once the server spans of `servers` are stored: each process exports its
    spans in the order they end, and a server span ends after all its children."""

    def both_servers():
        spans = store.trace(trace_id)
        services = {s.service for s in spans if s.kind == "server"}
        return spans if services == set(servers) else None

    try:
        return wait_until(both_servers, timeout=30, what=f"the spans of {trace_id}")
    except AssertionError as exc:
        stored = [(s.service, s.kind, s.name) for s in store.trace(trace_id)]
        raise AssertionError(f"{exc}; stored: {stored}") from None


def is_statement(span: SpanRecord) -> bool:
    return "db.system" in span.attributes or "db.system.name" in span.attributes


def tree(spans: list[SpanRecord], parent_id: str) -> list:
    """The spans under `parent_id` as sorted (service, kind, statement?, children) tuples."""
    return sorted(
        (s.service, s.kind, is_statement(s), tree(spans, s.span_id))
        for s in spans
        if s.parent_id == parent_id
    )


def check_order_trace(spans: list[SpanRecord]) -> SpanRecord:
    """Exactly order-service's subtree (check_order_service), continuing the gateway's
    span; returns its root."""
    # continued: the gateway's span (not stored) is the parent of order-service's
    [root] = roots(spans)
    assert root.parent_id == GATEWAY_SPAN_ID
    check_order_service(spans, root)
    return root


def check_order_service(spans: list[SpanRecord], root: SpanRecord) -> None:
    """Under `root`, order-service's server span: exactly its statements and its call ->
    user-service server -> its statement."""
    assert (root.service, root.kind) == ("order-service", "server")
    assert root.attributes["http.target"] == "/orders"
    statements = sum(
        1 for s in spans if is_statement(s) and s.parent_id == root.span_id
    )
    assert statements >= 1  # the order's INSERT at least
    user_lookup = (
        "user-service",
        "server",
        False,
        [("user-service", "client", True, [])],
    )
    assert tree(spans, root.span_id) == sorted(
        [("order-service", "client", False, [user_lookup])]
        + [("order-service", "client", True, [])] * statements
    )


def test_one_order_is_one_trace_through_both_services_and_their_databases(traced):
    store, request_id = traced.store, f"req-{uuid.uuid4().hex}"
    post_order(
        traced.services.orders_url,
        traced.services.user_id,
        traceparent=f"00-{TRACE_ID}-{GATEWAY_SPAN_ID}-01",
        **{"X-Request-ID": request_id},
    )
    spans = complete_trace(store, TRACE_ID)

    check_order_trace(spans)
    # both services' server spans carry the request id: order-service passes it on
    assert {s.request_id for s in spans if s.kind == "server"} == {request_id}
    # order-service sent this trace on, with its call span as the parent
    [call] = [s for s in spans if s.kind == "client" and not is_statement(s)]
    assert call.service == "order-service"
    assert f"00-{TRACE_ID}-{call.span_id}-01" in traceparents_seen(traced.proxy)
    assert find_trace(store, request_id) == spans


def test_the_access_log_line_names_the_request_and_its_server_span(traced):
    store, orders, request_id = traced.store, traced.services.orders, uuid.uuid4().hex
    post_order(
        traced.services.orders_url,
        traced.services.user_id,
        **{"X-Request-ID": request_id},
    )
    [trace_id] = wait_until(
        lambda: store.trace_ids_for_request(request_id), timeout=15, what=request_id
    )
    [root] = roots(complete_trace(store, trace_id))
    [line] = wait_until(
        lambda: [x for x in orders.output().splitlines() if request_id in x],
        timeout=10,
        what="the access line",
    )
    assert re.fullmatch(
        r'INFO access: 127\.0\.0\.1 "POST /orders HTTP/1\.1" 201 \d+ \d+ms '
        rf"request_id={request_id} trace_id={trace_id} span_id={root.span_id}",
        line,
    ), line


def traceparents_seen(proxy: RecordingProxy) -> list[str]:
    return [headers.get("traceparent", "") for headers in proxy.seen]


def test_an_invalid_traceparent_starts_a_new_trace(traced):
    store, request_id = traced.store, f"req-{uuid.uuid4().hex}"
    invalid = f"00-{'0' * 32}-{GATEWAY_SPAN_ID}-01"  # an all-zero trace id is invalid
    post_order(
        traced.services.orders_url,
        traced.services.user_id,
        traceparent=invalid,
        **{"X-Request-ID": request_id},
    )

    trace_ids = wait_until(
        lambda: store.trace_ids_for_request(request_id), timeout=15, what=request_id
    )
    assert len(trace_ids) == 1
    [root] = roots(complete_trace(store, trace_ids[0]))
    assert (root.service, root.kind, root.parent_id) == ("order-service", "server", "")


def test_two_traceparent_lines_start_a_new_trace(traced):
    """W3C Trace Context's test suite: two traceparent headers are no parent at all (gunicorn
    joins them into one value that does not parse), as at the gateway."""
    store, request_id = traced.store, f"req-{uuid.uuid4().hex}"
    other = "0af7651916cd43dd8448eb211c80319c"
    connection = http.client.HTTPConnection(
        traced.services.orders_url.removeprefix("http://"), timeout=10
    )
    connection.putrequest("GET", f"/orders/user/{traced.services.user_id}")
    for trace_id in (other, TRACE_ID):
        connection.putheader("traceparent", f"00-{trace_id}-{GATEWAY_SPAN_ID}-01")
    connection.putheader("X-Request-ID", request_id)
    connection.endheaders()
    assert connection.getresponse().status == 200
    connection.close()

    [trace_id] = wait_until(
        lambda: store.trace_ids_for_request(request_id), timeout=15, what=request_id
    )
    assert trace_id not in (other, TRACE_ID)
    [root] = roots(store.trace(trace_id))
    assert (root.service, root.kind, root.parent_id) == ("order-service", "server", "")


def answered_alone(traced, method: str, path: str, status: int):
    """The one span of a request order-service answers itself with `status`."""
    store, request_id = traced.store, f"req-{uuid.uuid4().hex}"
    r = requests.request(
        method,
        f"{traced.services.orders_url}{path}",
        headers={"X-Request-ID": request_id},
        timeout=10,
    )
    assert r.status_code == status
    [trace_id] = wait_until(
        lambda: store.trace_ids_for_request(request_id), timeout=15, what=request_id
    )
    [span] = store.trace(trace_id)
    return span


def test_a_method_the_conventions_do_not_know_is_other_named_http(traced):
    """As the gateway records it: one span name for every made-up method, not one each."""
    span = answered_alone(traced, "FOO", "/orders", 405)
    assert (span.name, span.attributes["http.method"]) == ("HTTP", "_OTHER")
    assert span.attributes["http.request.method_original"] == "FOO"


def test_a_request_no_route_matches_is_named_by_its_method_not_its_path(traced):
    """A 404 for /orders/<id> named "GET /orders/<id>" would be one operation per id."""
    span = answered_alone(traced, "GET", "/orders/987654/nowhere", 404)
    assert span.name == "GET"


def test_a_sampled_out_request_records_nothing_and_still_propagates(traced):
    store, orders_url, user_id = (
        traced.store,
        traced.services.orders_url,
        traced.services.user_id,
    )
    unsampled = uuid.uuid4().hex
    post_order(orders_url, user_id, traceparent=f"00-{unsampled}-{GATEWAY_SPAN_ID}-00")
    [sent] = [t for t in traceparents_seen(traced.proxy) if unsampled in t]
    assert sent.startswith(f"00-{unsampled}-") and sent.endswith("-00")

    # A sampled request after it: once its spans are stored, so would be any of the
    # first one's (one worker per service, each exporting in order).
    marker = uuid.uuid4().hex
    post_order(orders_url, user_id, traceparent=f"00-{marker}-{GATEWAY_SPAN_ID}-01")
    complete_trace(store, marker)
    assert store.trace(unsampled) == []


@pytest.fixture
def silent_port():
    """A port that accepts connections and never answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        yield listener.getsockname()[1]


@pytest.mark.parametrize("exporter", ["nothing listens", "never answers"])
def test_an_exporter_down_or_hanging_leaves_requests_unaffected(
    exporter, silent_port, tmp_path
):
    port = free_port() if exporter == "nothing listens" else silent_port
    env = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{port}",
        **FAST_EXPORT,
        # full after one request: spans are dropped too
        "OTEL_BSP_MAX_QUEUE_SIZE": "8",
        "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "8",
    }
    with both_services(tmp_path, env) as running:
        for _ in range(20):
            post_order(running.orders_url, running.user_id)
        # and the loss is told where a user of the services can see it
        services = (running.users, running.orders)
        wait_until(
            lambda: all("spans dropped so far" in s.output() for s in services),
            timeout=30,
            what="the dropped spans in both services' logs",
        )
        # as is the failing export: once, not the exporter's line per retry and batch
        wait_until(
            lambda: all("span export failing: " in s.output() for s in services),
            timeout=30,
            what="the failing export in both services' logs",
        )
        for service in services:
            output = service.output()
            assert output.count("span export failing: ") == 1
            assert "opentelemetry.exporter" not in output


def one_traced_order(
    directory: Path, extra_env: dict, route_to_users=None, database: str = "sqlite"
) -> tuple[SpanStore, list[SpanRecord]]:
    """Both services, fresh, exporting to a receiver of their own; one order of TRACE_ID.
    Returns the store and that trace."""
    store = SpanStore(directory)
    receiver = OTLPReceiver(store).start()
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url, **FAST_EXPORT, **extra_env}
    try:
        with both_services(directory, env, route_to_users, database) as running:
            post_order(
                running.orders_url,
                running.user_id,
                traceparent=f"00-{TRACE_ID}-{GATEWAY_SPAN_ID}-01",
            )
            return store, complete_trace(store, TRACE_ID)
    finally:
        receiver.stop()


def test_consul_calls_are_in_no_trace(devconsul, tmp_path):
    """order-service finds user-service through Consul: its watcher's blocking queries go
    through the instrumented requests library, from a thread of the serving process."""

    def through_consul(users_url: str) -> dict:
        wait_until(
            lambda: requests.get(
                f"{devconsul.url}/v1/health/service/user-service?passing", timeout=5
            ).json(),
            timeout=30,
            what="user-service passing in Consul",
        )
        return {}  # no USER_SERVICE_URL: order-service asks Consul

    consul = {"CONSUL_HTTP_ADDR": devconsul.addr, "CHECK_INTERVAL": "1s"}
    store, spans = one_traced_order(tmp_path, consul, through_consul)
    check_order_trace(spans)
    traces = store.recent(100)  # this order, and the creation of its user
    assert [roots(spans)[0].kind for spans in traces] == ["server", "server"]
    urls = [s.attributes.get("http.url", "") for spans in traces for s in spans]
    assert not [url for url in urls if f":{devconsul.port}/" in url]


@pytest.mark.postgres
def test_postgresql_statements_are_traced_alike(tmp_path):
    _, spans = one_traced_order(tmp_path, {}, database="postgresql")
    check_order_trace(spans)
    assert {s.attributes["db.system"] for s in spans if is_statement(s)} == {
        "postgresql"
    }


# -- through the gateway ------------------------------------------------------------------


@dataclass
class Stacked:
    store: SpanStore
    consul: Agent
    gateway: ManagedProcess
    url: str  # the gateway's
    user_id: int


def start_traced_gateway(consul: Agent, **env: str) -> tuple[ManagedProcess, str]:
    gateway, url = start_gateway(consul.addr, **env)
    for service in ("user-service", "order-service"):
        wait_routable(url, service, 1, timeout=30)
    return gateway, url


@pytest.fixture(scope="module")
def stacked(tmp_path_factory):
    """The gateway and both services, found through devconsul, exporting to one receiver."""
    directory = tmp_path_factory.mktemp("gateway-tracing")
    store = SpanStore(directory)
    receiver = OTLPReceiver(store).start()
    consul = Agent(free_port())
    otel = {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url, **FAST_EXPORT}
    env = {**otel, "CONSUL_HTTP_ADDR": consul.addr, "CHECK_INTERVAL": "1s"}
    try:
        with both_services(directory, env, lambda url: {}) as running:
            gateway, url = start_traced_gateway(consul, **otel)
            try:
                yield Stacked(store, consul, gateway, url, running.user_id)
                output = before_stopping(gateway)
            finally:
                quick_stop(gateway)
            assert "Traceback" not in output
    finally:
        receiver.stop()
        consul.process.stop()


def before_stopping(gateway: ManagedProcess) -> str:
    """The gateway's output so far. Read before the stop: gunicorn's SIGINT handler exits
    from whichever callback the worker's loop is running, and uvloop may log that exit as a
    transport's fatal error with a traceback (the worker's, nothing to do with tracing)."""
    return gateway.output()


def order_through(gateway_url: str, user_id: int, **headers) -> requests.Response:
    return post_order(gateway_url + "/api", user_id, **headers)


def children(spans: list[SpanRecord], parent: SpanRecord) -> list[SpanRecord]:
    return sorted(
        (s for s in spans if s.parent_id == parent.span_id), key=lambda s: s.start_ns
    )


def traced_request(store: SpanStore, request_id: str, *servers: str) -> list:
    [trace_id] = wait_until(
        lambda: store.trace_ids_for_request(request_id), timeout=15, what=request_id
    )
    return complete_trace(store, trace_id, ("gateway", *servers))


def test_an_order_through_the_gateway_is_one_trace_rooted_at_its_span(stacked):
    request_id = f"req-{uuid.uuid4().hex}"
    order_through(stacked.url, stacked.user_id, **{"X-Request-ID": request_id})
    spans = traced_request(stacked.store, request_id, "order-service", "user-service")

    [root] = roots(spans)
    assert (root.service, root.kind, root.name) == (
        "gateway",
        "server",
        "POST /api/orders/*",
    )
    assert root.attributes["http.route"] == "/api/orders/*"
    assert root.attributes["url.path"] == "/api/orders"
    assert (root.parent_id, root.request_id) == ("", request_id)
    [attempt] = children(spans, root)
    assert (attempt.service, attempt.kind) == ("gateway", "client")
    assert attempt.attributes["switchyard.outcome"] == "ok"
    assert attempt.attributes["http.response.status_code"] == 201
    [order_service] = children(spans, attempt)
    check_order_service(spans, order_service)
    # named as a client span is, its instance in attributes
    instance = attempt.attributes["switchyard.instance.id"]
    assert attempt.name == "POST" and instance.startswith("order-service-")
    address, port = (
        attempt.attributes["server.address"],
        attempt.attributes["server.port"],
    )
    assert instance == f"order-service-{address}-{port}"
    # its access line joins the trace
    line = f"request_id={request_id} trace_id={root.trace_id} span_id={root.span_id}"
    wait_until(
        lambda: line in stacked.gateway.output(), timeout=10, what="the access line"
    )
    # the gateway's Consul calls (its watchers) are in no trace: every trace is a request's
    assert {t[0].kind for t in map(roots, stacked.store.recent(100))} == {"server"}


def test_a_retried_attempt_is_a_second_sibling_span(stacked):
    """A stopped order-service instance that Consul still lists: a connect failure, which
    the gateway retries on the live one, whatever the method."""
    consul, url = stacked.consul, stacked.url
    stopped = register_static(consul.url, "order-service", "/orders", free_port())
    try:
        wait_routable(url, "order-service", 2)
        for _ in range(4):  # round robin: the stopped one comes first once in two
            request_id = f"req-{uuid.uuid4().hex}"
            r = order_through(
                url,
                stacked.user_id,
                **{"X-Request-ID": request_id, "X-Gateway-Debug": "1"},
            )
            if r.headers["X-Gateway-Attempts"].startswith(stopped):
                break
        else:
            pytest.fail("the stopped instance was never tried first")
    finally:
        requests.put(
            f"{consul.url}/v1/agent/service/deregister/{stopped}", timeout=5
        ).raise_for_status()
        wait_routable(url, "order-service", 1)
    spans = traced_request(stacked.store, request_id, "order-service", "user-service")

    [root] = roots(spans)
    failed, succeeded = children(spans, root)
    assert [
        (a.kind, a.attributes["switchyard.attempt"]) for a in (failed, succeeded)
    ] == [
        ("client", 1),
        ("client", 2),
    ]
    assert failed.attributes["switchyard.instance.id"] == stopped
    assert failed.attributes["switchyard.outcome"] == "connect_failed"
    assert failed.status == "error"
    assert children(spans, failed) == []
    assert succeeded.attributes["switchyard.outcome"] == "ok"
    [order_service] = children(spans, succeeded)
    check_order_service(spans, order_service)


def test_the_view_is_two_concurrent_children_of_the_gateway_span(stacked):
    request_id = f"req-{uuid.uuid4().hex}"
    r = requests.get(
        f"{stacked.url}/api/views/users/{stacked.user_id}",
        headers={"X-Request-ID": request_id},
        timeout=10,
    )
    assert r.status_code == 200, r.text
    spans = traced_request(stacked.store, request_id, "order-service", "user-service")

    [root] = roots(spans)
    assert root.name == "GET /api/views/users/{id}"
    assert root.attributes["url.path"] == f"/api/views/users/{stacked.user_id}"
    fetches = children(spans, root)
    assert [s.kind for s in fetches] == ["client", "client"]
    assert fetches[1].start_ns < fetches[0].end_ns  # concurrent
    reached = sorted(
        (server.service, server.attributes["http.target"])
        for fetch in fetches
        for server in children(spans, fetch)
    )
    assert reached == [
        ("order-service", f"/orders/user/{stacked.user_id}?limit=500"),
        ("user-service", f"/users/{stacked.user_id}"),
    ]


def test_a_request_sampled_out_at_the_gateway_leaves_no_span_anywhere(stacked):
    store, url, user_id = stacked.store, stacked.url, stacked.user_id
    unsampled = uuid.uuid4().hex
    order_through(url, user_id, traceparent=f"00-{unsampled}-{GATEWAY_SPAN_ID}-00")
    # A sampled request after it: once its spans are stored, so would be any of the
    # first one's (one worker per process, each exporting in order).
    marker = uuid.uuid4().hex
    order_through(url, user_id, traceparent=f"00-{marker}-{GATEWAY_SPAN_ID}-01")
    complete_trace(store, marker, ("gateway", "order-service", "user-service"))
    assert store.trace(unsampled) == []
    # the gateway continued it (its propagation to the upstream: tests/gateway/test_app.py)
    wait_until(
        lambda: f"trace_id={unsampled} " in stacked.gateway.output(),
        timeout=10,
        what="the access line of the sampled-out request",
    )


def dropped_by(gateway_url: str) -> float:
    text = requests.get(f"{gateway_url}/metrics", timeout=5).text
    [value] = re.findall(
        r"^gateway_tracing_dropped_spans_total (\S+)$", text, re.MULTILINE
    )
    return float(value)


@pytest.mark.parametrize("exporter", ["nothing listens", "never answers"])
def test_a_gateway_exporter_down_or_hanging_leaves_requests_unaffected(
    stacked, exporter, silent_port
):
    """A second gateway, beside the first, whose spans go nowhere: its queue fills."""
    port = free_port() if exporter == "nothing listens" else silent_port
    gateway, url = start_traced_gateway(
        stacked.consul,
        OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{port}",
        OTEL_BSP_MAX_QUEUE_SIZE="8",
        OTEL_BSP_MAX_EXPORT_BATCH_SIZE="8",
        **FAST_EXPORT,
    )
    try:
        for _ in range(20):
            order_through(url, stacked.user_id)
        wait_until(lambda: dropped_by(url) > 0, timeout=15, what="dropped spans")
        output = before_stopping(gateway)
    finally:
        quick_stop(gateway)
    assert "Traceback" not in output
