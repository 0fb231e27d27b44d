"""switchyard's OTLP/HTTP receiver, fed by the SDK's own exporter and by malformed bodies."""

import gzip

import pytest
import requests
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
    InMemorySpanExporter,
)
from opentelemetry.trace import SpanKind, Status, StatusCode

from switchyard.otlp import MAX_BODY_BYTES, OTLPReceiver
from switchyard.spanstore import SpanStore

PROTOBUF = {"Content-Type": "application/x-protobuf"}


@pytest.fixture
def store(tmp_path):
    return SpanStore(tmp_path)


@pytest.fixture
def receiver(store):
    receiver = OTLPReceiver(store).start()
    yield receiver
    receiver.stop()


def finished_spans() -> list:
    """A server span with a child, as the SDK hands them to an exporter."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider(
        resource=Resource.create({"service.name": "order-service"}),
        shutdown_on_exit=False,
    )
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")
    with (
        tracer.start_as_current_span(
            "POST /orders",
            kind=SpanKind.SERVER,
            attributes={"http.request.header.x-request-id": ("req-7",)},
        ),
        tracer.start_as_current_span("GET", kind=SpanKind.CLIENT) as child,
    ):
        child.set_status(Status(StatusCode.ERROR))
    return list(exporter.get_finished_spans())


def test_what_the_sdk_exporter_sends_is_stored(receiver, store):
    spans = finished_spans()
    exporter = OTLPSpanExporter(endpoint=f"{receiver.url}/v1/traces")
    assert exporter.export(spans) is SpanExportResult.SUCCESS
    _, server = spans  # children end first
    trace_id = format(server.context.trace_id, "032x")
    stored = {s.name: s for s in store.trace(trace_id)}
    assert set(stored) == {"POST /orders", "GET"}
    assert stored["POST /orders"].parent_id == ""
    assert stored["POST /orders"].request_id == "req-7"
    assert stored["POST /orders"].kind == "server"
    assert stored["GET"].parent_id == format(server.context.span_id, "016x")
    assert (stored["GET"].kind, stored["GET"].status) == ("client", "error")
    assert {s.service for s in stored.values()} == {"order-service"}
    # the same batch again (an exporter retrying) changes nothing
    assert exporter.export(spans) is SpanExportResult.SUCCESS
    assert len(store.trace(trace_id)) == 2
    assert store.trace_ids_for_request("req-7") == [trace_id]


def test_a_gzip_body_is_accepted(receiver, store):
    body = exporter_body(finished_spans())
    response = requests.post(
        f"{receiver.url}/v1/traces",
        data=gzip.compress(body),
        headers={**PROTOBUF, "Content-Encoding": "gzip"},
        timeout=5,
    )
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/x-protobuf"
    assert len(store.recent(10)) == 1


def exporter_body(spans) -> bytes:
    """The body the SDK's exporter would send, before its own (optional) compression."""
    return encode_spans(spans).SerializeToString()


def malformed_ids() -> bytes:
    request = ExportTraceServiceRequest()
    span = request.resource_spans.add().scope_spans.add().spans.add()
    span.name = "bad"
    span.trace_id = b"\x01" * 8  # half a trace id
    span.span_id = b"\x02" * 8
    return request.SerializeToString()


@pytest.mark.parametrize(
    "body, headers, status, code",
    [
        (b"not protobuf at all", PROTOBUF, 400, "malformed_otlp"),
        (malformed_ids(), PROTOBUF, 400, "malformed_otlp"),
        (b"\x1f\x8b garbage", {**PROTOBUF, "Content-Encoding": "gzip"}, 400, None),
        (b"{}", {"Content-Type": "application/json"}, 415, "unsupported_media_type"),
        (b"", {**PROTOBUF, "Content-Encoding": "br"}, 415, "unsupported_encoding"),
    ],
)
def test_a_bad_body_gets_a_json_error_and_stores_nothing(
    receiver, store, body, headers, status, code
):
    response = requests.post(
        f"{receiver.url}/v1/traces", data=body, headers=headers, timeout=5
    )
    assert response.status_code == status
    assert response.headers["Content-Type"] == "application/json"
    if code:
        assert response.json()["error"]["code"] == code
    assert store.recent(10) == []
    # and the receiver still takes a good export afterwards
    exporter = OTLPSpanExporter(endpoint=f"{receiver.url}/v1/traces")
    assert exporter.export(finished_spans()) is SpanExportResult.SUCCESS


def test_too_large_a_body_is_refused_before_it_is_read(receiver):
    response = requests.post(
        f"{receiver.url}/v1/traces",
        data=b"",
        headers={**PROTOBUF, "Content-Length": str(MAX_BODY_BYTES + 1)},
        timeout=5,
    )
    assert response.status_code == 413


@pytest.mark.parametrize(
    "method, path, status, code",
    [
        ("POST", "/v1/logs", 404, "not_found"),
        ("GET", "/v1/traces", 405, "method_not_allowed"),
    ],
)
def test_only_post_v1_traces_is_served(receiver, method, path, status, code):
    response = requests.request(method, receiver.url + path, timeout=5)
    assert response.status_code == status
    assert response.json()["error"]["code"] == code
