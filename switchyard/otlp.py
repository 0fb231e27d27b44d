"""A small OTLP/HTTP trace receiver: what the services' exporters send, kept in a SpanStore.

    receiver = OTLPReceiver(SpanStore(data_dir)).start()   # a free loopback port
    receiver.url                                            # OTEL_EXPORTER_OTLP_ENDPOINT
    receiver.stop()

It speaks OTLP/HTTP in binary protobuf, as the OpenTelemetry SDK's exporter sends it:
POST /v1/traces, an ExportTraceServiceRequest body (optionally gzip), answered with an empty
ExportTraceServiceResponse. Anything else is a client's mistake answered with the project's
JSON error shape and stores nothing: a body that does not decode, or a span with malformed
ids, rejects the whole request with 400.
"""

import json
import logging
import threading
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from switchyard.spanstore import SpanRecord, SpanStore

__all__ = ["MAX_BODY_BYTES", "OTLPReceiver", "decode_spans"]

log = logging.getLogger("switchyard.otlp")

PATH = "/v1/traces"
PROTOBUF = "application/x-protobuf"
MAX_BODY_BYTES = 16 * 1024 * 1024
REQUEST_ID_KEYS = (
    "http.request.header.x-request-id",
    "http.request.header.x_request_id",
)
KINDS = ("unspecified", "internal", "server", "client", "producer", "consumer")
STATUSES = ("unset", "ok", "error")
NO_TRACE_ID, NO_SPAN_ID = bytes(16), bytes(8)


class MalformedSpans(ValueError):
    """The body is not an OTLP trace export we can store; the message says why."""


def decode_spans(body: bytes) -> list[SpanRecord]:
    """The spans of an ExportTraceServiceRequest; MalformedSpans when it is not one."""
    try:
        request = ExportTraceServiceRequest.FromString(body)
    except DecodeError as exc:
        raise MalformedSpans(f"not an OTLP ExportTraceServiceRequest: {exc}") from None
    records = []
    for resource_spans in request.resource_spans:
        resource = attributes(resource_spans.resource.attributes)
        service = str(resource.get("service.name", "unknown"))
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                records.append(_record(span, service))
    return records


def _record(span, service: str) -> SpanRecord:
    # Each field read once: every read of a upb message's field makes a Python object.
    name, trace_id, span_id = span.name, span.trace_id, span.span_id
    parent_id, start, end = (
        span.parent_span_id,
        span.start_time_unix_nano,
        span.end_time_unix_nano,
    )
    if len(trace_id) != 16 or trace_id == NO_TRACE_ID:
        raise MalformedSpans(f"span {name!r}: trace_id must be 16 non-zero bytes")
    if len(span_id) != 8 or span_id == NO_SPAN_ID:
        raise MalformedSpans(f"span {name!r}: span_id must be 8 non-zero bytes")
    if len(parent_id) not in (0, 8):
        raise MalformedSpans(f"span {name!r}: parent_span_id must be 8 bytes")
    if end < start:
        raise MalformedSpans(f"span {name!r}: ends before it starts")
    values = attributes(span.attributes)
    request_id = None
    for key in REQUEST_ID_KEYS:
        if key in values:
            request_id = values[key]
            break
    if isinstance(request_id, list):  # captured headers are lists of values
        request_id = request_id[0] if request_id else None
    kind, status = span.kind, span.status.code
    return SpanRecord(
        trace_id=trace_id.hex(),
        span_id=span_id.hex(),
        parent_id=parent_id.hex(),
        name=name,
        service=service,
        kind=KINDS[kind] if 0 <= kind < len(KINDS) else "unspecified",
        start_ns=start,
        end_ns=end,
        status=STATUSES[status] if 0 <= status < len(STATUSES) else "unset",
        attributes=values,
        request_id=None if request_id is None else str(request_id),
    )


def attributes(key_values) -> dict:
    values = {}
    for kv in key_values:
        value = kv.value
        kind = value.WhichOneof("value")
        # Most attributes are strings: those without another call, on every span received.
        values[kv.key] = (
            value.string_value if kind == "string_value" else _any_value(value, kind)
        )
    return values


def any_value(value):
    return _any_value(value, value.WhichOneof("value"))


def _any_value(value, kind: str | None):
    if kind == "string_value":
        return value.string_value
    if kind == "array_value":
        return [any_value(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return attributes(value.kvlist_value.values)
    if kind == "bytes_value":
        return value.bytes_value.hex()
    return None if kind is None else getattr(value, kind)


class _Handler(BaseHTTPRequestHandler):
    server: "_Server"
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        if self.path.split("?", 1)[0] != PATH:
            return self._error(404, "not_found", f"only POST {PATH} is served here")
        content_type = self.headers.get("Content-Type", "").split(";")[0].strip()
        if content_type != PROTOBUF:
            return self._error(
                415, "unsupported_media_type", f"Content-Type must be {PROTOBUF}"
            )
        body = self._body()
        if body is None:
            return
        try:
            spans = decode_spans(body)
        except MalformedSpans as exc:
            return self._error(400, "malformed_otlp", str(exc))
        self.server.store.add(spans)
        self._send(200, PROTOBUF, ExportTraceServiceResponse().SerializeToString())

    def do_GET(self) -> None:
        self._error(405, "method_not_allowed", f"only POST {PATH} is served here")

    def _body(self) -> bytes | None:
        length = self.headers.get("Content-Length", "")
        if not length.isdigit():
            self._error(411, "length_required", "Content-Length is required")
            return None
        if int(length) > MAX_BODY_BYTES:
            self._error(413, "payload_too_large", f"at most {MAX_BODY_BYTES} bytes")
            return None
        body = self.rfile.read(int(length))
        encoding = self.headers.get("Content-Encoding", "identity").strip().lower()
        if encoding == "identity":
            return body
        if encoding != "gzip":
            self._error(415, "unsupported_encoding", "Content-Encoding: gzip or none")
            return None
        inflate = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        try:
            inflated = inflate.decompress(body, MAX_BODY_BYTES)
        except zlib.error:
            self._error(400, "malformed_otlp", "the gzip body does not decompress")
            return None
        if inflate.unconsumed_tail:
            self._error(413, "payload_too_large", f"at most {MAX_BODY_BYTES} bytes")
            return None
        return inflated

    def _error(self, status: int, code: str, message: str) -> None:
        body = {"error": {"code": code, "message": message, "details": None}}
        self.close_connection = True  # an unread body must not be taken for a request
        self._send(status, "application/json", json.dumps(body).encode())

    def _send(self, status: int, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args) -> None:
        log.debug("%s " + format, self.address_string(), *args)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address, store: SpanStore):
        super().__init__(address, _Handler)
        self.store = store


class OTLPReceiver:
    """The receiver on a loopback port (0: a free one), served by a daemon thread."""

    def __init__(self, store: SpanStore, host: str = "127.0.0.1", port: int = 0):
        self._store = store
        self._server = _Server((host, port), store)
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="otlp-receiver", daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> "OTLPReceiver":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._store.close()
