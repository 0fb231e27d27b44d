"""chassis.spanexport: the OTLP bytes it writes are the SDK encoder's for the same spans; the
queue and its thread keep the batch processor's promises; the SDK exporter's client sends."""

import threading

import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource as ResourceMessage
from opentelemetry.sdk.resources import Resource

from chassis.env import ConfigError
from chassis.spanexport import (
    OTLPEncoder,
    SpanExport,
    key_values,
    otlp_sender,
    queue_encoded,
    settings_from_env,
)
from switchyard.otlp import OTLPReceiver
from switchyard.spanstore import SpanStore
from tests.chassis.sdk_gateway import Request, light_spans, sdk_spans
from tests.support.processes import wait_until
from tests.support.tracing import exported

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"
RESOURCE = Resource.create(
    {
        "service.name": "gateway",
        "service.instance.id": "gateway-10.0.0.1-8000",
        "service.version": "1.2",
        "team": "edge",
        "replicas": 3,
    }
)
REQUESTS = {
    "root, no request id": Request({}, request_id=None),
    "continued, tracestate, retried": Request(
        {
            "traceparent": f"00-{TRACE_ID}-{PARENT_ID}-03",
            "tracestate": "k=v,vendor=opaque",
        },
        method="POST",
        path="/api/orders",
        route="/api/orders/*",
        attempts=[("o-1", "connect_failed", None), ("o-2", "ok", 201)],
        answer=201,
    ),
    "5xx": Request(
        {"traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01"},
        attempts=[("u-1", "server_error", 500)],
        answer=500,
    ),
    "an exception escapes": Request({}, escapes=KeyError("x")),
    "no route, a long path": Request(
        {}, path="/api/" + "é" * 200, route=None, attempts=[]
    ),
    "a method the semantic conventions do not know": Request(
        {}, method="PROPFIND", route=None, attempts=[], answer=405
    ),
    # request ids either side of the longest whose nested lengths all take one byte
    **{
        f"a request id of {n} bytes": Request({}, request_id="r" * n)
        for n in (85, 86, 300)
    },
}


@pytest.mark.parametrize("request_", REQUESTS.values(), ids=REQUESTS.keys())
def test_the_bytes_decode_to_what_the_sdk_encoder_makes(request_):
    sdk = sdk_spans(request_, {}, seed=3, resource=RESOURCE).spans
    light = light_spans(request_, {}, seed=3).spans
    for record, span in zip(light, sdk, strict=True):  # times are the clock's
        record.start_ns, record.end_ns = span.start_time, span.end_time
    expected = encode_spans(sdk)
    for span in expected.resource_spans[0].scope_spans[0].spans:
        del span.events[:]  # the SDK's exception event, which chassis.spans leaves out
    encoder = OTLPEncoder(RESOURCE.attributes, "switchyard")
    actual = ExportTraceServiceRequest.FromString(
        encoder.request([encoder.span(s) for s in light])
    )
    [resource_spans] = actual.resource_spans
    [expected_resource_spans] = expected.resource_spans
    assert resource_spans.resource == expected_resource_spans.resource
    assert resource_spans.schema_url == expected_resource_spans.schema_url
    [scope_spans] = resource_spans.scope_spans
    [expected_scope_spans] = expected_resource_spans.scope_spans
    assert scope_spans.scope == expected_scope_spans.scope
    assert len(scope_spans.spans) == len(expected_scope_spans.spans)
    for span, expected_span in zip(scope_spans.spans, expected_scope_spans.spans):
        assert str(span) == str(expected_span)  # field by field, readable when not
        assert span == expected_span
    assert actual == expected


def attributes_of(span) -> dict:
    return {
        a.key: a.value.string_value for a in span.attributes if a.value.string_value
    }


@pytest.mark.parametrize(
    "method, route, name, recorded",
    [
        ("GET", "/api/users/*", "GET /api/users/*", {"http.request.method": "GET"}),
        ("QUERY", None, "QUERY", {"http.request.method": "QUERY"}),
        *(
            (
                method,
                route,
                name,
                {
                    "http.request.method": "_OTHER",
                    "http.request.method_original": method,
                },
            )
            for method, route, name in [
                ("PROPFIND", None, "HTTP"),
                ("FOO", "/api/users/*", "HTTP /api/users/*"),
                ("get", None, "HTTP"),  # methods are case-sensitive
            ]
        ),
    ],
)
def test_a_method_the_conventions_do_not_know_is_other_named_http(
    method, route, name, recorded
):
    """One span name and one attribute value for every made-up method, not one each."""
    [span] = exported(
        light_spans(Request({}, method, route=route, attempts=[]), {}, 1).spans
    )
    assert span.name == name
    attributes = attributes_of(span)
    assert {
        k: v for k, v in attributes.items() if k.startswith("http.request.method")
    } == recorded


@pytest.mark.parametrize(
    "value",
    [0, 1, 127, 128, 300, 16383, 16384, 2**40, 2**63 - 1, -1, -(2**63), True, False,
     0.5, "", "x" * 200, ("a", "b"), [1, 2], ()],
)  # fmt: skip
def test_a_resource_attribute_decodes_to_its_value(value):
    [decoded] = ResourceMessage.FromString(key_values({"k": value})).attributes
    expected = KeyValue(key="k", value=_sdk_any_value(value))
    assert decoded == expected


def _sdk_any_value(value) -> AnyValue:
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        return AnyValue(int_value=value)
    if isinstance(value, float):
        return AnyValue(double_value=value)
    if isinstance(value, str):
        return AnyValue(string_value=value)
    return AnyValue(array_value=ArrayValue(values=[_sdk_any_value(v) for v in value]))


def test_the_batch_settings_are_the_sdks_variables_checked():
    assert settings_from_env({}) == {
        "max_queue_size": 2048,
        "schedule_delay_ms": 5000,
        "max_batch_size": 512,
    }
    with pytest.raises(ConfigError, match="^OTEL_BSP_MAX_QUEUE_SIZE: "):
        settings_from_env({"OTEL_BSP_MAX_QUEUE_SIZE": "many"})
    with pytest.raises(ConfigError, match="^OTEL_BSP_MAX_EXPORT_BATCH_SIZE: "):
        settings_from_env({"OTEL_BSP_MAX_QUEUE_SIZE": "8"})


class Collector:
    """send() of a SpanExport: keeps batches (encode is the identity on lists), can be held,
    can fail."""

    def __init__(self, delivers=True):
        self.batches = []
        self.delivers = delivers
        self.entered = threading.Event()
        self.release = threading.Event()
        self.release.set()

    def send(self, batch) -> bool:
        self.entered.set()
        self.release.wait(30)
        self.batches.append(batch)
        if self.delivers == "raise":
            raise OSError("the client broke")
        return self.delivers


def export_to(collector, dropped, **settings) -> SpanExport:
    return SpanExport(list, collector.send, dropped.append, **settings).start()


def test_a_full_batch_leaves_at_once_and_the_rest_on_schedule():
    collector, dropped = Collector(), []
    export = export_to(
        collector, dropped, schedule_delay_ms=3_600_000, max_batch_size=2
    )
    for span in "abc":
        export.add(span)
    wait_until(lambda: collector.batches == [["a", "b"]], what="the full batch")
    export.shutdown(10)  # the exit sends what is left
    assert collector.batches == [["a", "b"], ["c"]]
    assert dropped == []


def test_a_partial_batch_leaves_after_the_delay():
    collector = Collector()
    export = export_to(collector, [], schedule_delay_ms=10)
    export.add("a")
    wait_until(lambda: collector.batches == [["a"]], what="the scheduled export")
    export.shutdown(10)


def test_a_full_queue_drops_its_oldest_and_counts_them():
    collector, dropped = Collector(), []
    collector.release.clear()
    export = export_to(collector, dropped, max_queue_size=2, max_batch_size=1)
    export.add("a")
    assert collector.entered.wait(10)  # "a" is out of the queue, being sent
    for span in "bcd":
        export.add(span)  # the queue holds two: "b" goes
    assert dropped == [1]
    collector.release.set()
    export.shutdown(10)
    assert collector.batches == [["a"], ["c"], ["d"]]


@pytest.mark.parametrize("delivers", [False, "raise"])
def test_a_batch_that_does_not_arrive_is_counted(delivers):
    collector, dropped = Collector(delivers), []
    export = export_to(collector, dropped, max_batch_size=3)
    for span in "abc":
        export.add(span)
    wait_until(lambda: dropped == [3], what="the lost batch counted")
    export.add("d")  # and the thread goes on
    export.shutdown(10)
    assert collector.batches[-1] == ["d"]


def test_the_exit_does_not_wait_for_a_hanging_exporter():
    collector, dropped = Collector(), []
    collector.release.clear()
    export = export_to(collector, dropped, max_batch_size=1)
    export.add("a")
    assert collector.entered.wait(10)
    export.add("b")
    export.shutdown(0.1)  # returns, the export still hanging
    assert export._thread.is_alive()
    assert dropped == [2]  # "a", being sent, and "b", queued, will never leave
    collector.release.set()


def test_a_span_that_does_not_encode_is_counted_not_raised():
    collector, dropped = Collector(), []
    export = export_to(collector, dropped, max_batch_size=1)
    record = queue_encoded(OTLPEncoder({}, "switchyard"), export)
    made = light_spans(Request({}), {}, seed=1)
    attempt, server = made.spans
    record(attempt)
    server.status = "200"  # not an int: no varint for it
    record(server)
    assert dropped == [1]
    export.shutdown(10)
    assert len(collector.batches) == 1


# -- the SDK exporter's client ----------------------------------------------------------


@pytest.fixture
def receiver(tmp_path):
    store = SpanStore(tmp_path)
    receiver = OTLPReceiver(store).start()
    yield receiver, store
    receiver.stop()


@pytest.mark.parametrize("compression", ["none", "gzip"])
def test_the_sdk_exporters_client_sends_as_the_otel_variables_say(
    receiver, monkeypatch, compression
):
    """Pins chassis.spanexport.otlp_sender to the installed SDK: it uses its private
    `_client`, which honours OTEL_EXPORTER_OTLP_* (endpoint + /v1/traces, compression)."""
    receiver, store = receiver
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.url)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_COMPRESSION", compression)
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", raising=False)
    made = light_spans(REQUESTS["continued, tracestate, retried"], {}, seed=5)
    encoder = OTLPEncoder(RESOURCE.attributes, "switchyard")
    body = encoder.request([encoder.span(s) for s in made.spans])
    assert otlp_sender()(body) is True
    stored = store.trace(made.ids[0])
    assert sorted(s.name for s in stored) == ["POST", "POST", "POST /api/orders/*"]
    assert {s.service for s in stored} == {"gateway"}


def test_the_sdk_exporters_client_says_when_nothing_arrived(monkeypatch):
    monkeypatch.setenv(
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://127.0.0.1:9/v1/traces"
    )
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "0.5")
    assert otlp_sender()(b"") is False
