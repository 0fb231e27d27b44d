"""The gateway app served in-process by its server, Consul replaced by fakes, real upstreams."""

import json
import logging
import threading
from dataclasses import replace

import pytest
import requests
import schemathesis
from prometheus_client.parser import text_string_to_metric_families

from gateway.app import access_log, create_app
from gateway.openapi import openapi_document
from gateway.settings import GatewaySettings
from tests.gateway.fakes import FakeCatalog, FakeWatchers, echo_instance
from tests.gateway.serving import Answer, Client, serve
from tests.gateway.test_server import connect, read_response
from tests.support.processes import free_port, wait_until
from tests.support.services import start_service, stop_now
from tests.support.tracing import exported, keeping_recorder

ADMIN = schemathesis.openapi.from_dict(openapi_document())["/admin/instances"]["GET"]


def admin_report(w) -> dict:
    """/admin/instances as the world's gateway answers it, checked against its document:
    valid, and with no field the document does not name."""
    answer = requests.get(
        f"http://127.0.0.1:{w.served.port}/admin/instances", timeout=5
    )
    ADMIN.validate_response(answer)
    document = openapi_document()
    ok = document["paths"]["/admin/instances"]["get"]["responses"]["200"]
    schema = ok["content"]["application/json"]["schema"]
    if "$ref" in schema:  # #/components/schemas/<name>
        schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    assert undocumented(schema, answer.json()) == []
    return answer.json()


def undocumented(schema: dict, value, at: str = "") -> list[str]:
    """Where `value` holds a field `schema` does not name (an object schema naming none
    of its fields documents none)."""
    if isinstance(value, list):
        return [
            f
            for i, v in enumerate(value)
            for f in undocumented(schema["items"], v, f"{at}[{i}]")
        ]
    if not isinstance(value, dict):
        return []
    named = schema.get("properties", {})
    found = []
    for key, field in value.items():
        inner = named.get(key, schema.get("additionalProperties"))
        if isinstance(inner, dict):
            found += undocumented(inner, field, f"{at}.{key}")
        else:
            found.append(f"{at}.{key}")
    return found


TRACE = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


@pytest.fixture
def echo(world, upstream):
    w = world()
    w.publish(
        "echo", echo_instance("a", upstream("a")), echo_instance("b", upstream("b"))
    )
    return w


def error_code(response):
    assert response.mimetype == "application/json"
    return response.json()["error"]["code"]


def test_unclaimed_prefix_is_404_json(echo):
    r = echo.client.get("/api/nothing/here")
    assert r.status_code == 404 and error_code(r) == "no_route"
    assert r.headers["X-Served-By"] == "gateway-test"
    assert r.headers["X-Request-ID"]


def test_claimed_route_without_healthy_instance_is_503(world):
    w = world()
    w.publish("echo", echo_instance("a", free_port(), status="critical"))
    r = w.client.get("/api/echo/1")
    assert r.status_code == 503 and error_code(r) == "no_healthy_instance"
    assert r.headers["Retry-After"] == "1"


def test_path_and_query_reach_the_upstream_exactly(echo):
    r = echo.client.get("/api/echo/a%20b/c%3Fd;p?x=%2B1&y&z=%C3%A9")
    assert r.status_code == 200
    assert r.json()["target"] == "/echo/a%20b/c%3Fd;p?x=%2B1&y&z=%C3%A9"


def test_body_bytes_and_content_type_are_untouched(echo):
    body = bytes(range(256))
    r = echo.client.post(
        "/api/echo/x", body, {"Content-Type": "application/octet-stream"}
    )
    assert r.json()["body"].encode("latin-1") == body
    assert r.json()["content_type"] == "application/octet-stream"


def test_requests_without_a_body_share_nothing_with_the_next(echo):
    for data in (b"", b"", b"abc", b""):  # one connection: the empty ones share NO_BODY
        r = echo.client.post("/api/echo/x", data)
        assert r.status_code == 200
        assert (r.json()["method"], r.json()["body"]) == ("POST", data.decode())


def test_forwarding_headers(echo):
    r = echo.client.get(
        "/api/echo/x",
        {
            "Connection": "X-Secret",
            "X-Secret": "1",
            "Keep-Alive": "300",
            "X-Custom": "kept",
            "X-Request-ID": "req-1",
            "traceparent": TRACE,
            "Host": "gw.example",
        },
    )
    seen = r.json()["headers"]
    assert "x-secret" not in seen and "keep-alive" not in seen
    assert seen["x-custom"] == "kept"
    assert seen["x-forwarded-for"] == "127.0.0.1"
    assert seen["x-forwarded-host"] == "gw.example"
    assert seen["x-forwarded-prefix"] == "/api"
    assert seen["x-forwarded-proto"] == "http"
    assert seen["x-request-id"] == "req-1"
    assert seen["traceparent"].split("-")[1] == TRACE.split("-")[1]
    assert seen["host"] != "gw.example"
    assert r.headers["X-Request-ID"] == "req-1"
    assert r.headers["X-Served-By"] in ("a", "b")


def test_request_id_generated_when_absent(echo):
    r = echo.client.get("/api/echo/x")
    assert r.json()["headers"]["x-request-id"] == r.headers["X-Request-ID"]


def test_upstream_status_and_headers_come_back(echo):
    r = echo.client.get("/api/echo/status/418")
    assert r.status_code == 418 and r.headers["X-Served-By"] in ("a", "b")
    head = echo.client.head("/api/echo/x")
    assert head.status_code == 200 and int(head.headers["Content-Length"]) > 0
    assert head.content == b""


@pytest.mark.parametrize(
    "path",
    [
        "/api/echo/%2e%2e/admin",
        "/api/echo/..%2Fadmin",
        "/api/echo%5c..",
        "/api/echo/%00",
    ],
)
def test_path_tricks_are_rejected(echo, path):
    r = echo.client.get(path)
    assert r.status_code == 400 and error_code(r) == "bad_path"


def test_an_absolute_form_request_is_routed_as_its_path_with_its_authority_as_host(
    echo,
):
    # What a client sends a proxy; RFC 9112 section 3.2.2: a server must accept it.
    r = echo.client.get("http://gw.example:8000/api/echo/x?y=1", {"Host": "other"})
    assert r.status_code == 200
    assert r.json()["target"] == "/echo/x?y=1"
    assert r.json()["headers"]["x-forwarded-host"] == "gw.example:8000"
    assert echo.client.get("http://gw.example/health").status_code == 200


@pytest.mark.parametrize(
    "method, target",
    [
        ("GET", "*"),  # the asterisk-form is OPTIONS's alone (RFC 9112 section 3.2.4)
        ("OPTIONS", "ftp://gw.example/api/echo/x"),
        ("OPTIONS", "http://gw.example/api/echo/%2e%2e"),
    ],
)
def test_targets_neither_a_path_nor_an_http_uri_are_400(echo, method, target):
    r = echo.client.open(target, method)
    assert r.status_code == 400 and error_code(r) == "bad_path"


def test_options_asterisk_is_answered_with_the_methods_the_gateway_serves(echo):
    r = echo.client.open("*", "OPTIONS")
    assert r.status_code == 200
    assert r.headers["Allow"] == "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"
    assert (r.headers["Content-Length"], r.content) == ("0", b"")
    assert r.headers["X-Served-By"] == echo.gateway.served_by
    assert echo.client.get("/health").status_code == 200  # the connection goes on


def test_merged_slashes_still_route(echo):
    r = echo.client.get("/api//echo///x")
    assert r.status_code == 200 and r.json()["target"] == "/echo/x"


def test_unsupported_method_is_405(echo):
    r = echo.client.open("/api/echo/x", "TRACE")
    assert r.status_code == 405 and error_code(r) == "method_not_allowed"


def test_body_over_the_limit_is_413(world, upstream):
    w = world(max_body_bytes=100)
    w.publish("echo", echo_instance("a", upstream("a")))
    assert w.client.post("/api/echo/x", b"x" * 100).status_code == 200
    r = w.client.post("/api/echo/x", b"x" * 101)
    assert r.status_code == 413 and error_code(r) == "request_entity_too_large"


def test_debug_header_lists_attempts(world, upstream):
    w = world(eject_after=100)
    w.publish(
        "echo", echo_instance("a", free_port()), echo_instance("b", upstream("b"))
    )
    seen = {
        w.client.get("/api/echo/x", {"X-Gateway-Debug": "1"}).headers[
            "X-Gateway-Attempts"
        ]
        for _ in range(2)
    }
    assert "a=connect_failed, b=200" in seen
    assert "X-Gateway-Attempts" not in w.client.get("/api/echo/x").headers


def test_new_service_becomes_routable_without_restart(echo, upstream):
    assert echo.client.get("/api/other/1").status_code == 404
    echo.publish(
        "other", echo_instance("o", upstream("o"), service="other", prefix="/other")
    )
    wait_until(
        lambda: echo.client.get("/api/other/1").status_code == 200, 5, what="route"
    )
    assert echo.client.get("/api/other/1").headers["X-Served-By"] == "o"


def test_service_meta_overrides_the_strategy(world, upstream):
    w = world()
    w.publish(
        "echo",
        echo_instance("a", upstream("a"), lb_strategy="random"),
        echo_instance("b", upstream("b"), status="warning"),
    )
    w.publish(
        "bad",
        echo_instance(
            "c", upstream("c"), service="bad", prefix="/bad", lb_strategy="nope"
        ),
    )
    report = admin_report(w)["services"]
    assert report["echo"]["strategy"] == "random"
    assert report["bad"]["strategy"] == "round_robin"
    assert "nope" in report["bad"]["strategy_problem"]
    reasons = {
        i["id"]: (i["routable"], i["reason"]) for i in report["echo"]["instances"]
    }
    assert reasons["a"] == (True, "passing")
    assert reasons["b"][0] is False and reasons["b"][1].startswith("warning")


def test_weighted_admits_warning_instances(world, upstream):
    w = world(strategy="weighted")
    w.publish("echo", echo_instance("w", upstream("w"), status="warning"))
    assert w.client.get("/api/echo/x").headers["X-Served-By"] == "w"


def test_admin_says_why_weighted_leaves_out_a_warning_instance_weighing_0(
    world, upstream
):
    w = world(strategy="weighted")
    w.publish(
        "echo",
        echo_instance("p", upstream("p")),
        replace(echo_instance("z", upstream("z"), status="warning"), weights=(1, 0)),
    )
    [p, z] = admin_report(w)["services"]["echo"]["instances"]
    assert (p["routable"], p["reason"]) == (True, "passing")
    assert (z["routable"], z["reason"]) == (False, "warning: its Weights.Warning is 0")


def test_admin_shows_ejection(world, upstream):
    w = world(eject_after=1)
    w.publish(
        "echo", echo_instance("a", free_port()), echo_instance("b", upstream("b"))
    )
    for _ in range(2):
        w.client.get("/api/echo/x")
    report = admin_report(w)["services"]["echo"]
    reasons = {i["id"]: i["reason"] for i in report["instances"]}
    assert reasons["a"].startswith("ejected until ")
    assert reasons["b"] == "passing"
    last = {i["id"]: i["last_failure"] for i in report["instances"]}
    assert last == {"a": "connect_failed", "b": None}
    assert {i["in_flight"] for i in report["instances"]} == {None}  # round_robin


def test_admin_names_the_services_that_claim_one_prefix(world, upstream):
    w = world()
    w.publish("echo", echo_instance("a", upstream("a")))
    w.publish("copy", echo_instance("c", upstream("c"), service="copy"))
    report = admin_report(w)
    assert report["conflicts"] == {"/echo": ["copy", "echo"]}
    assert report["services"]["echo"]["prefix"] is None  # "copy" comes first


def test_admin_shows_least_connections_in_flight_counts(world, upstream):
    w = world(strategy="least_connections")
    w.publish("echo", echo_instance("slow", upstream("slow", delay=1.0)))
    other = Client(w.served.port)
    try:
        other.connection.request("GET", "/api/echo/x")  # answered in a second

        def in_flight():
            report = admin_report(w)
            return report["services"]["echo"]["instances"][0]["in_flight"]

        wait_until(lambda: in_flight() == 1, 5, what="one request in flight")
        assert other.connection.getresponse().status == 200
        assert in_flight() == 0
    finally:
        other.close()


def test_health_counts_and_is_byte_stable(world, upstream):
    w = world()
    w.publish(
        "echo",
        echo_instance("a", upstream("a")),
        echo_instance("b", free_port(), status="critical"),
    )
    first = w.client.get("/health")
    assert first.status_code == 200
    assert first.json() == {
        "service": "gateway",
        "status": "ok",
        "consul": {"reachable": True, "stale": False},
        "services": {
            "echo": {"passing": 1, "total": 2, "routable": 1, "prefix": "/echo"}
        },
    }
    assert w.client.get("/health").content == first.content


def test_health_body_does_not_depend_on_this_workers_ejections(world, upstream):
    w = world(eject_after=1)
    w.publish(
        "echo", echo_instance("a", free_port()), echo_instance("b", upstream("b"))
    )
    before = w.client.get("/health")
    for _ in range(2):
        w.client.get("/api/echo/x")
    assert w.gateway.ejector.is_ejected("a")
    after = w.client.get("/health")
    assert after.status_code == before.status_code == 200
    assert after.content == before.content
    assert after.json()["services"]["echo"]["routable"] == 2


def test_health_is_degraded_while_a_claimed_service_has_no_instance(world, upstream):
    """Still 200 (the gateway serves the others, and Consul's check of it must pass), but
    the status says that one prefix answers 503."""
    w = world()
    w.publish("echo", echo_instance("a", upstream("a")))
    w.publish("down", echo_instance("d", free_port(), "down", "/down", "critical"))
    health = w.client.get("/health")
    assert health.status_code == 200
    assert health.json()["status"] == "degraded"
    assert health.json()["services"]["down"]["routable"] == 0
    assert w.client.get("/api/echo/x").status_code == 200


def test_health_is_503_when_nothing_can_be_routed(world):
    w = world()
    w.publish("echo", echo_instance("a", free_port(), status="critical"))
    assert w.client.get("/health").status_code == 503


def test_consul_down_keeps_routing_on_the_stale_snapshot(echo):
    echo.catalog.fail = True
    echo.watchers.set("echo", *echo.watchers.snapshots["echo"].instances, stale=True)
    wait_until(lambda: echo.gateway.directory.catalog_error, 5, what="catalog error")
    health = echo.client.get("/health")
    assert health.status_code == 200
    assert health.json()["status"] == "degraded"
    assert health.json()["consul"] == {"reachable": False, "stale": True}
    assert echo.client.get("/api/echo/x").status_code == 200
    metrics = echo.client.get("/metrics").content.decode()
    assert 'gateway_consul_watch_failing{service="echo"} 1.0' in metrics


def test_metrics(echo):
    echo.client.get("/api/echo/x")
    text = echo.client.get("/metrics").content.decode()
    assert 'gateway_requests_total{instance="' in text
    assert 'service="echo",status="200"' in text
    assert "gateway_request_duration_seconds_bucket" in text
    assert 'gateway_snapshot_age_seconds{service="echo"}' in text
    assert 'gateway_consul_watch_failing{service="echo"} 0.0' in text
    assert "gateway_consul_catalog_errors_total 0.0" in text


def test_metrics_follow_prometheus_conventions(world, upstream):
    """What `promtool check metrics` and the naming guide ask, after traffic that touches
    every metric: each family documented and typed, counters `_total`, units in the name,
    cumulative buckets, and labels from bounded sets (no path, no request id)."""
    w = world(eject_after=1, max_body_bytes=10)
    w.publish(
        "echo", echo_instance("a", free_port()), echo_instance("b", upstream("b"))
    )
    for n in range(4):  # a's connect failures: retries, an ejection
        w.client.get(f"/api/echo/{n}?id={n}", {"X-Request-ID": f"r{n}"})
    w.client.post("/api/echo/x", b"x" * 11)
    text = w.client.get("/metrics").content.decode()
    families = list(text_string_to_metric_families(text))
    assert len({f.name for f in families}) == len(families)
    for family in families:
        assert family.documentation and family.type in ("counter", "gauge", "histogram")
        assert family.name.startswith("gateway_")
        if family.type == "counter":
            assert all(s.name == family.name + "_total" for s in family.samples)
        if "duration" in family.name or "age" in family.name:
            assert family.name.endswith("_seconds")
        for sample in family.samples:
            assert set(sample.labels) <= {
                "service", "status", "instance", "outcome", "code", "watch", "le"
            }  # fmt: skip
            assert sample.labels.get("instance", "-") in ("a", "b", "-")
    [latency] = [f for f in families if f.type == "histogram"]
    buckets = [s.value for s in latency.samples if s.name.endswith("_bucket")]
    [count] = [s.value for s in latency.samples if s.name.endswith("_count")]
    assert buckets == sorted(buckets) and buckets[-1] == count == 4
    totals = {f.name for f in families if any(s.value for s in f.samples)}
    assert {
        "gateway_requests",
        "gateway_upstream_attempts",
        "gateway_retries",
        "gateway_ejections",
        "gateway_refusals",
        "gateway_client_connections",
    } <= totals


def test_failed_catalog_watches_are_a_counter_of_their_own(echo):
    """A count, typed as one (a gauge beside the services' 0/1 flags, it was summed with
    them and, with several workers, jumped between the answering workers' counts)."""
    echo.catalog.fail = True
    wait_until(
        lambda: echo.gateway.directory.catalog_errors >= 2,
        10,
        what="two failed watches",
    )
    echo.catalog.fail = False
    wait_until(
        lambda: echo.gateway.directory.catalog_error is None, 10, what="the watch back"
    )
    text = echo.client.get("/metrics").content.decode()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    errors = families["gateway_consul_catalog_errors"]
    assert errors.type == "counter"
    assert errors.samples[0].value == echo.gateway.directory.catalog_errors
    assert [s.labels for s in families["gateway_consul_watch_failing"].samples] == [
        {"service": "echo"}
    ]


def test_metrics_count_the_spans_tracing_dropped(echo, monkeypatch):
    def scrape():
        return echo.client.get("/metrics").content.decode()

    monkeypatch.setattr("gateway.metrics.dropped_spans", lambda: 3)
    assert "gateway_tracing_dropped_spans_total 3.0" in scrape()
    monkeypatch.setattr("gateway.metrics.dropped_spans", lambda: 7)
    assert "gateway_tracing_dropped_spans_total 7.0" in scrape()
    assert "gateway_tracing_dropped_spans_total 7.0" in scrape()  # not added twice


def samples(client, name: str) -> dict[tuple, float]:
    """The values of metric family `name` in the gateway's /metrics, by label values."""
    text = client.get("/metrics").content.decode()
    return {
        tuple(sorted(s.labels.values())): s.value
        for f in text_string_to_metric_families(text)
        if f.name == name
        for s in f.samples
    }


def test_requests_the_gateway_refuses_itself_are_counted_by_status_and_code(
    world, upstream
):
    w = world(max_body_bytes=100, max_header_bytes=100, header_timeout=0.5)
    w.publish("echo", echo_instance("a", upstream("a")))
    assert w.client.get("/api/echo/x").status_code == 200  # not a refusal
    assert w.client.post("/api/echo/x", b"x" * 101).status_code == 413
    assert w.client.get("/api/nothing").status_code == 404
    assert w.client.get("/nothing").status_code == 404
    assert w.client.open("/api/echo/x", "TRACE").status_code == 405
    assert w.client.open("/health", "POST").status_code == 405
    assert w.client.get("/api/views/nothing").status_code == 404
    assert w.client.post("/api/views/users/1").status_code == 405
    for head, status in [
        (b"GET / HTTP/1.1\r\nHost: gw\r\nX: %s\r\n\r\n" % (b"a" * 99), 431),
        (b"GET / HTTP/1.1\r\nHost: gw\r\nno colon\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: gw\r\n", 408),  # the rest never comes
    ]:
        assert exchange(w.served.port, head)[0] == status
    assert samples(w.client, "gateway_refusals") == {
        ("413", "request_entity_too_large"): 1,
        ("404", "no_route"): 1,
        ("404", "not_found"): 2,
        ("405", "method_not_allowed"): 3,
        ("431", "header_too_large"): 1,
        ("400", "bad_request"): 1,
        ("408", "request_timeout"): 1,
    }


def test_open_connections_and_those_past_the_cap_are_counted(world):
    w = world(max_connections=3)
    w.client.get("/health")  # its connection open: one
    held = [connect(w.served.port) for _ in range(2)]
    wait_until(lambda: len(w.served.server.connections) == 3, 5, what="3 connections")
    try:
        sock, stream = connect(w.served.port)
        with sock, stream:
            status, _, body = read_response(stream)
        assert (status, json.loads(body)["error"]["code"]) == (
            503,
            "too_many_connections",
        )
        assert samples(w.client, "gateway_client_connections") == {(): 3}
    finally:
        for sock, stream in held:
            stream.close()
            sock.close()
    wait_until(
        lambda: samples(w.client, "gateway_client_connections") == {(): 1},
        5,
        what="the held connections closed",
    )
    refusals = samples(w.client, "gateway_refusals")
    assert refusals == {("503", "too_many_connections"): 1}


def test_each_app_has_its_own_registry(world):
    a, b = world(), world()
    assert a.gateway.metrics.registry is not b.gateway.metrics.registry


def test_openapi_document(echo):
    doc = echo.client.get("/openapi.json").json()
    assert {
        "/health",
        "/metrics",
        "/admin/instances",
        "/api/views/users/{user_id}",
        "/api/{prefix}/{rest}",
    } <= set(doc["paths"])


def test_own_404_is_json(echo):
    r = echo.client.get("//health")
    assert r.status_code == 404 and error_code(r) == "not_found"


# -- aggregation --------------------------------------------------------------------------


@pytest.fixture
def shop(world, upstream):
    w = world()
    w.publish(
        "user-service",
        echo_instance("u", upstream("u"), service="user-service", prefix="/users"),
    )
    return w


def test_view_user_with_orders(shop, upstream):
    shop.publish(
        "order-service",
        echo_instance("o", upstream("o"), service="order-service", prefix="/orders"),
    )
    r = shop.client.get("/api/views/users/7")
    body = r.json()
    assert r.status_code == 200 and body["errors"] == []
    assert body["user"]["target"] == "/users/7"
    assert [o["target"] for o in body["orders"]] == ["/orders/user/7?limit=500"]
    assert (body["orders_total"], body["orders_next"]) == (1, None)  # all of them


def test_views_are_counted_and_timed_like_proxied_requests(shop):
    shop.publish(
        "order-service",
        echo_instance("o", free_port(), service="order-service", prefix="/orders"),
    )
    assert shop.client.get("/api/views/users/7").status_code == 200
    assert shop.client.get("/api/views/users/x").status_code == 404
    text = shop.client.get("/metrics").content.decode()
    views = {
        (s.name, s.labels.get("status"), s.labels.get("instance")): s.value
        for f in text_string_to_metric_families(text)
        for s in f.samples
        if s.labels.get("service") == "views"
    }
    assert views[("gateway_requests_total", "200", "-")] == 1
    assert views[("gateway_requests_total", "404", "-")] == 1
    assert views[("gateway_request_duration_seconds_count", None, None)] == 2


def test_view_with_more_orders_than_a_page_says_so_and_links_to_the_rest(
    shop, upstream
):
    shop.publish(
        "order-service",
        echo_instance(
            "o", upstream("o", rows=505), service="order-service", prefix="/orders"
        ),
    )
    body = shop.client.get("/api/views/users/7").json()
    assert len(body["orders"]) == 500 and body["errors"] == []
    assert body["orders_total"] == 505
    assert body["orders_next"] == "/api/orders/user/7?limit=500&after=500"
    rest = shop.client.get(body["orders_next"])  # through the gateway, as it is
    assert rest.status_code == 200
    assert rest.json()["items"][0]["target"] == "/orders/user/7?limit=500&after=500"


def test_view_with_order_service_down_still_answers(shop):
    shop.publish(
        "order-service",
        echo_instance("o", free_port(), service="order-service", prefix="/orders"),
    )
    r = shop.client.get("/api/views/users/7")
    body = r.json()
    assert r.status_code == 200
    assert body["orders"] is None
    assert (body["orders_total"], body["orders_next"]) == (None, None)
    assert body["errors"][0]["service"] == "order-service"
    assert body["user"]["target"] == "/users/7"


def test_view_of_unknown_user_is_404(world, upstream):
    w = world()
    w.publish(
        "user-service",
        echo_instance(
            "u", upstream("u", status=404), service="user-service", prefix="/users"
        ),
    )
    r = w.client.get("/api/views/users/7")
    assert r.status_code == 404 and error_code(r) == "user_not_found"


@pytest.mark.parametrize(
    "users, code",
    [
        ("stopped", "no_healthy_instance"),  # registered, none passing
        ("deregistered", "no_route"),  # no instance left to claim /users
        ("unavailable", "bad_gateway"),  # user-service's own 503
    ],
)
def test_every_503_of_the_view_carries_retry_after(world, upstream, users, code):
    w = world(retry_after=7)
    w.publish(
        "order-service",
        echo_instance("o", upstream("o"), service="order-service", prefix="/orders"),
    )
    if users != "deregistered":
        port = upstream("u", status=503) if users == "unavailable" else free_port()
        status = "passing" if users == "unavailable" else "critical"
        w.publish(
            "user-service",
            echo_instance(
                "u", port, service="user-service", prefix="/users", status=status
            ),
        )
    r = w.client.get("/api/views/users/7")
    assert r.status_code == 503 and error_code(r) == code
    assert r.headers["Retry-After"] == "7"  # GATEWAY_RETRY_AFTER, as when proxied


def test_view_asks_both_services_at_once(world, upstream):
    # Neither upstream answers until both requests are in: asked one after the other, the
    # first waits past the gateway's read timeout (2 s) and the view fails. No clock read.
    both_asked = threading.Barrier(2, timeout=5)
    w = world()
    w.publish(
        "user-service",
        echo_instance(
            "u",
            upstream("u", meet=both_asked),
            service="user-service",
            prefix="/users",
        ),
    )
    w.publish(
        "order-service",
        echo_instance(
            "o",
            upstream("o", meet=both_asked),
            service="order-service",
            prefix="/orders",
        ),
    )
    r = w.client.get("/api/views/users/1")
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["user"]["served_by"], body["orders"][0]["served_by"]) == ("u", "o")


def test_served_by_without_port_is_the_registered_id(monkeypatch):
    monkeypatch.delenv("PORT", raising=False)
    monkeypatch.setenv("SERVICE_ADDRESS", "10.0.0.7")
    app = create_app(
        GatewaySettings(), catalog=FakeCatalog(), watcher_factory=FakeWatchers()
    )
    assert app.served_by == "gateway-10.0.0.7-8000"
    served = serve(app)
    client = Client(served.port)
    try:
        answer = client.get("/nowhere")
    finally:
        client.close()
        served.stop()
    assert answer.status_code == 404
    assert answer.headers["X-Served-By"] == "gateway-10.0.0.7-8000"


def test_metrics_forget_instances_consul_forgets(world, upstream):
    w = world(eject_after=1)
    b = echo_instance("b", upstream("b"))
    w.publish("echo", echo_instance("a", upstream("a", status=500)), b)
    for _ in range(4):
        w.client.get("/api/echo/x")
    text = w.client.get("/metrics").content.decode()
    assert 'instance="a"' in text and 'instance="b"' in text
    w.watchers.set("echo", b)
    wait_until(
        lambda: 'instance="a"' not in w.client.get("/metrics").content.decode(),
        5,
        what="instance a's series dropped",
    )
    assert 'instance="b"' in w.client.get("/metrics").content.decode()
    assert all("a" not in labels for _, labels in w.gateway.metrics._children)


# -- tracing (chassis.spans' records, kept by tests.support.tracing) -----------------------

TRACE_ID, CLIENT_SPAN = TRACE.split("-")[1:3]


@pytest.fixture
def traced():
    """trace(gateway): trace its requests from now on; returns the list of ended spans."""

    def trace(gateway, sampler="parentbased_always_on"):
        recorder, ended = keeping_recorder(sampler)
        gateway.trace_requests(recorder)
        return ended

    return trace


@pytest.fixture
def access_lines(caplog, capsys):
    """The access lines the gateway writes from now on (INFO on for its logger)."""
    caplog.set_level(logging.INFO, "gateway.access")

    def lines():
        access_log.flush()
        return [x for x in capsys.readouterr().err.splitlines() if "access" in x]

    return lines


def test_a_traced_request_continues_the_trace_and_is_the_upstreams_parent(
    echo, traced, access_lines
):
    spans = traced(echo.gateway)
    r = echo.client.get(
        "/api/echo/x",
        {"traceparent": TRACE, "tracestate": "k=v", "X-Request-ID": "req-traced"},
    )
    attempt, server = spans
    assert (server.method, server.path) == ("GET", "/api/echo/x")
    assert server.trace_hex == TRACE_ID
    assert f"{server.parent_id:016x}" == CLIENT_SPAN
    assert server.request_id == "req-traced"
    assert (server.status, server.error) == (200, None)
    assert attempt.parent is server
    seen = r.json()["headers"]
    assert seen["traceparent"] == f"00-{TRACE_ID}-{attempt.span_id:016x}-01"
    assert seen["tracestate"] == "k=v"  # once, the span's
    assert r.headers["X-Request-ID"] == "req-traced"
    [line] = access_lines()
    assert line.endswith(
        f" request_id=req-traced trace_id={TRACE_ID} span_id={server.span_hex}"
    )


def test_a_tracestate_in_several_lines_is_continued_whole(echo, traced):
    traced(echo.gateway)
    connection = echo.client.connection
    connection.putrequest("GET", "/api/echo/x")
    for name, value in [
        ("traceparent", TRACE),
        ("tracestate", "k=v"),
        ("tracestate", "a=b"),
    ]:
        connection.putheader(name, value)
    connection.endheaders()
    r = Answer(connection.getresponse())
    assert r.json()["headers"]["tracestate"] == "k=v,a=b"


@pytest.mark.parametrize("tracing", [True, False], ids=["traced", "untraced"])
def test_two_traceparent_lines_start_a_new_trace(echo, traced, tracing):
    """W3C Trace Context's test suite: two traceparent headers are no parent at all."""
    spans = traced(echo.gateway) if tracing else []
    other = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    connection = echo.client.connection
    connection.putrequest("GET", "/api/echo/x")
    for name, value in [("traceparent", other), ("traceparent", TRACE)]:
        connection.putheader(name, value)
    connection.putheader("tracestate", "k=v")
    connection.endheaders()
    seen = Answer(connection.getresponse()).json()["headers"]
    trace_id = seen["traceparent"].split("-")[1]
    assert trace_id not in (TRACE_ID, other.split("-")[1])
    assert "tracestate" not in seen  # it belongs to one of theirs
    if tracing:
        _, server = spans
        assert (server.trace_hex, server.parent_id) == (trace_id, 0)


def test_the_server_span_records_the_request_id_the_gateway_made(echo, traced):
    spans = traced(echo.gateway)
    r = echo.client.get("/api/echo/x")
    assert spans[-1].request_id == r.headers["X-Request-ID"]


@pytest.mark.parametrize(
    "incoming", ["00-xyz-abc-01", f"00-{'0' * 32}-{CLIENT_SPAN}-01"]
)
def test_an_invalid_traceparent_starts_a_new_trace(echo, traced, incoming):
    spans = traced(echo.gateway)
    r = echo.client.get("/api/echo/x", {"traceparent": incoming})
    _, server = spans
    assert server.parent_id == 0
    assert r.json()["headers"]["traceparent"].split("-")[1] == server.trace_hex


@pytest.mark.parametrize(
    ("path", "route"),
    [
        ("/api/echo/x/42", "/api/echo/*"),
        ("/api/echo", "/api/echo/*"),
        ("/api/views/users/42", "/api/views/users/{id}"),
        ("/api/nobody/42", None),  # no route: the span is named by its method alone
    ],
)
def test_the_server_span_is_named_by_the_route_it_matched_not_its_path(
    echo, traced, path, route
):
    """The semantic conventions' server span name: a backend lists one operation per
    route, not one per user id."""
    spans = traced(echo.gateway)
    echo.client.get(path)
    server = spans[-1]
    assert (server.route, server.path) == (route, path)
    [encoded] = exported([server])
    assert encoded.name == (f"GET {route}" if route else "GET")


def test_a_method_the_conventions_do_not_know_is_other_named_http(echo, traced):
    """Refused (the gateway proxies none such), and recorded as `_OTHER`, its original
    beside it: a client making methods up makes no span name per method."""
    spans = traced(echo.gateway)
    assert echo.client.open("/api/echo/x", "PROPFIND").status_code == 405
    [encoded] = exported([spans[-1]])
    attributes = {a.key: a.value.string_value for a in encoded.attributes}
    assert encoded.name == "HTTP"
    assert attributes["http.request.method"] == "_OTHER"
    assert attributes["http.request.method_original"] == "PROPFIND"


def test_a_5xx_answer_makes_the_server_span_an_error(echo, traced):
    spans = traced(echo.gateway)
    assert echo.client.get("/api/echo/status/500").status_code == 500
    server = spans[-1]
    assert (server.status, server.error) == (500, "")  # an error, no description


def test_a_sampled_out_request_records_nothing_and_passes_its_trace_on(
    echo, traced, access_lines
):
    spans = traced(echo.gateway)
    r = echo.client.get("/api/echo/x", {"traceparent": TRACE[:-2] + "00"})
    assert spans == []
    version, trace_id, parent, flags = r.json()["headers"]["traceparent"].split("-")
    assert (version, trace_id, flags) == ("00", TRACE_ID, "00")
    assert parent != CLIENT_SPAN  # the gateway's (unrecorded) attempt
    [line] = access_lines()
    assert f" trace_id={TRACE_ID} span_id=" in line


def test_untraced_the_access_line_names_the_span_id_sent_upstream(echo, access_lines):
    r = echo.client.get("/api/echo/x", {"traceparent": TRACE, "X-Request-ID": "r-1"})
    _, trace_id, span_id, _ = r.json()["headers"]["traceparent"].split("-")
    assert trace_id == TRACE_ID and span_id != CLIENT_SPAN
    [line] = access_lines()
    assert line.startswith("INFO gateway.access: GET /api/echo/x -> echo ")
    assert line.endswith(f" request_id=r-1 trace_id={trace_id} span_id={span_id}")


def test_the_views_fetches_are_two_concurrent_children_of_its_span(
    world, upstream, traced, access_lines
):
    w = world()
    for name, service, prefix in (("u", "user", "/users"), ("o", "order", "/orders")):
        port = upstream(name, delay=0.3)
        w.publish(
            f"{service}-service",
            echo_instance(name, port, service=f"{service}-service", prefix=prefix),
        )
    spans = traced(w.gateway)
    r = w.client.get("/api/views/users/1", {"X-Request-ID": "view-1"})
    assert r.status_code == 200 and r.headers["X-Request-ID"] == "view-1"
    *fetches, server = spans
    assert server.path == "/api/views/users/1"
    assert sorted(f.instance.id for f in fetches) == ["o", "u"]
    assert all(f.parent is server for f in fetches)
    first, second = sorted(fetches, key=lambda f: f.start_ns)
    assert second.start_ns < first.end_ns  # concurrent, not one after the other
    # each upstream's parent is its own fetch
    body = r.json()
    sent = {
        tuple(body["user"]["headers"]["traceparent"].split("-")[1:3]),
        tuple(body["orders"][0]["headers"]["traceparent"].split("-")[1:3]),
    }
    assert sent == {(server.trace_hex, f"{f.span_id:016x}") for f in fetches}
    [line] = access_lines()
    assert "GET /api/views/users/1 -> views - 200 " in line


@pytest.fixture(scope="module")
def user_service(tmp_path_factory):
    """A real user-service under gunicorn: it answers 413 to a body over its 1 MiB limit
    before reading it, then stops reading and closes."""
    database = tmp_path_factory.mktemp("early") / "users.db"
    process, url = start_service("user_service", f"sqlite:///{database}", threads=2)
    yield int(url.rsplit(":", 1)[1])
    stop_now(process)


def chunked(body: bytes) -> bytes:
    pieces = (body[i : i + 65536] for i in range(0, len(body), 65536))
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces) + b"0\r\n\r\n"


@pytest.mark.integration
@pytest.mark.parametrize("framing", ["length", "chunked"])
@pytest.mark.parametrize("mib", [2, 9])
def test_an_upstream_refusing_a_body_before_reading_it_is_answered_not_blamed(
    world, user_service, mib, framing
):
    """The service answers 413 while the gateway still streams the body to it, then stops
    reading and resets the connection: the 413 is the client's answer (not a 502), and the
    instance is not blamed for it. (The connection it leaves: test_upstream.)"""
    w = world()
    w.publish("users", echo_instance("u", user_service, "users", "/users"))
    body = b'{"name": "' + b"a" * (mib << 20) + b'"}'
    headers = {"Content-Type": "application/json", "X-Gateway-Debug": "1"}
    if framing == "chunked":
        body, headers = chunked(body), {**headers, "Transfer-Encoding": "chunked"}
    client = Client(w.served.port)
    try:
        r = client.post("/api/users", body, headers)
    finally:
        client.close()
    assert r.status_code == 413, r.headers["X-Gateway-Attempts"]
    assert error_code(r) == "request_entity_too_large"
    assert r.headers["X-Gateway-Attempts"] == "u=413"
    [instance] = admin_report(w)["services"]["users"]["instances"]
    assert (instance["routable"], instance["consecutive_failures"]) == (True, 0)
    listed = w.client.get("/api/users")
    assert listed.status_code == 200 and listed.json()["items"] == []


# -- a request the gateway admits fits what the services admit ------------------------

LIMITS = GatewaySettings()  # the defaults: each limit at its most


def exchange(port: int, head: bytes) -> tuple[int, dict, bytes]:
    """(status, lower-cased headers, body) of the answer to a raw request head."""
    sock, stream = connect(port)
    with sock, stream:
        sock.sendall(head)
        return read_response(stream)


def full_lines(count: int, size: int, forwarded_for: bool = False) -> list[bytes]:
    """`count` header lines of `size` bytes as the gateway counts them ("name: value");
    the first an X-Forwarded-For if `forwarded_for`, which a trusting gateway forwards
    with the client's address added."""
    names = [b"X-Pad-%03d" % n for n in range(count)]
    if forwarded_for:
        names[0] = b"X-Forwarded-For"
    return [name + b": " + b"1" * (size - len(name) - 2) for name in names]


@pytest.fixture
def trusting(world, user_service):
    """A gateway whose every limit is at its most, trusting X-Forwarded-*, in front of a
    real user-service (gunicorn's limits)."""
    w = world(trust_forwarded=True)
    w.publish("users", echo_instance("u", user_service, "users", "/users"))
    return w


@pytest.mark.integration
def test_a_request_line_at_the_gateways_limit_is_served(trusting):
    # OPTIONS: the longest method proxied, so the longest request line forwarded.
    target = b"/api/users?q="
    target += b"a" * (LIMITS.max_request_line - len(target))
    status, headers, _ = exchange(
        trusting.served.port, b"OPTIONS %s HTTP/1.1\r\nHost: gw\r\n\r\n" % target
    )
    assert status == 200, headers
    assert headers["x-served-by"].startswith("user-service-")


@pytest.mark.integration
@pytest.mark.parametrize(
    "forwarded_for", [False, True], ids=["most-lines", "longest-line"]
)
def test_headers_at_the_gateways_limits_are_served(trusting, forwarded_for):
    """As many header lines as the gateway takes, each as long as it takes, and what the
    gateway adds at its most: an absolute-form target without a Host (its authority
    becomes X-Forwarded-Host), a POST without a body (Content-Length: 0), and either
    none of the client's lines replaced by its own (most lines) or a trusted
    X-Forwarded-For that grows (the longest line)."""
    lines = full_lines(LIMITS.max_headers, LIMITS.max_header_bytes, forwarded_for)
    head = b"POST http://gw/api/users HTTP/1.0\r\n%s\r\n\r\n" % b"\r\n".join(lines)
    status, headers, body = exchange(trusting.served.port, head)
    # The service's own answer to a body that is no JSON, not its gunicorn's 431.
    assert status == 415, body
    assert json.loads(body)["error"]["code"] == "unsupported_media_type"
    assert headers["x-served-by"].startswith("user-service-")


@pytest.mark.integration
@pytest.mark.parametrize(
    ("over", "status", "code"),
    [
        ("request_line", 414, "uri_too_long"),
        ("headers", 431, "too_many_headers"),
        ("header_bytes", 431, "header_too_large"),
    ],
)
def test_a_request_past_the_gateways_limits_gets_its_own_answer(
    trusting, over, status, code
):
    target = b"/api/users"
    if over == "request_line":
        target += b"?" + b"a" * (LIMITS.max_request_line - len(target))
    count = LIMITS.max_headers + (over == "headers")
    lines = full_lines(count, LIMITS.max_header_bytes + (over == "header_bytes"))
    head = b"GET %s HTTP/1.1\r\nHost: gw\r\n%s\r\n\r\n" % (
        target,
        b"\r\n".join(lines[1:]),  # room for the Host
    )
    answer, headers, body = exchange(trusting.served.port, head)
    assert (answer, json.loads(body)["error"]["code"]) == (status, code)
    assert headers["x-served-by"] == "gateway-test"
