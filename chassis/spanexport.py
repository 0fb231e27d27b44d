"""The export of chassis.spans' records: OTLP protobuf, a bounded queue, one thread.

    encoder = OTLPEncoder(resource_attributes, "switchyard")
    export = SpanExport(encoder.request, send, count_dropped, **settings_from_env())
    export.start()
    recorder = SpanRecorder(sampling, queue_encoded(encoder, export))
    export.shutdown(seconds)                          # at exit: what is queued, bounded

A span is encoded as it ends, on the request path, and waits as bytes: the same work as
encoding batches in the thread, minus the garbage collections that hundreds of waiting span
objects cost (bytes are not tracked by the collector; the records die with their request).

The queue and the thread follow the SDK's BatchSpanProcessor: at most OTEL_BSP_MAX_QUEUE_SIZE
spans wait (a full queue drops its oldest); the thread sends a batch of up to
OTEL_BSP_MAX_EXPORT_BATCH_SIZE every OTEL_BSP_SCHEDULE_DELAY milliseconds, or as soon as a
batch is full. A request only appends to the queue: an exporter that is down or hangs
delays the thread, never a request. Spans that do not fit or fail to export are counted.

OTLPEncoder writes an ExportTraceServiceRequest as the SDK's encoder would for the same spans
(tests/chassis/test_spanexport.py decodes it with the official classes and compares), by
hand: the gateway's two span shapes are fixed, most of their bytes repeat from span to span,
and building the upb messages of opentelemetry-proto costs about five times as much (some
17 us a span against 3, in process: a KeyValue and an AnyValue object per attribute), on a
path every request pays for.

`otlp_sender()` sends through the SDK's own OTLP/HTTP exporter's client, so every
OTEL_EXPORTER_OTLP_(TRACES_)* variable -- endpoint, headers, timeout, compression,
certificates -- means what it means to the services' exporters, retries included.
"""

import collections
import functools
import logging
import struct
import threading
from collections.abc import Callable, Mapping

from chassis.env import ConfigError, env_int
from chassis.spans import (
    REQUEST_ID_ATTRIBUTE,
    AttemptSpan,
    known_method,
    method_in_name,
)

__all__ = ["OTLPEncoder", "SpanExport", "otlp_sender", "settings_from_env"]

log = logging.getLogger("tracing")


def settings_from_env(environ: Mapping[str, str] | None = None) -> dict:
    """The batch settings (OTEL_BSP_*, the SDK's defaults), checked."""
    settings = {
        "max_queue_size": env_int("OTEL_BSP_MAX_QUEUE_SIZE", 2048, 1, environ=environ),
        "schedule_delay_ms": env_int(
            "OTEL_BSP_SCHEDULE_DELAY", 5000, 0, environ=environ
        ),
        "max_batch_size": env_int(
            "OTEL_BSP_MAX_EXPORT_BATCH_SIZE", 512, 1, environ=environ
        ),
    }
    if settings["max_batch_size"] > settings["max_queue_size"]:
        raise ConfigError(
            "OTEL_BSP_MAX_EXPORT_BATCH_SIZE: must be <= OTEL_BSP_MAX_QUEUE_SIZE"
        )
    return settings


class SpanExport:
    """The queue and its export thread. `encode(batch) -> bytes` (a list of what was added);
    `send(bytes) -> bool` (delivered); `count_dropped(n)` hears of every span lost."""

    def __init__(
        self,
        encode: Callable[[list], bytes],
        send: Callable[[bytes], bool],
        count_dropped: Callable[[int], None],
        max_queue_size: int = 2048,
        schedule_delay_ms: int = 5000,
        max_batch_size: int = 512,
    ):
        self._encode, self._send, self.count_dropped = encode, send, count_dropped
        self._queue: collections.deque = collections.deque(maxlen=max_queue_size)
        self._max_queue_size = max_queue_size
        self._batch_size = max_batch_size
        self._delay = schedule_delay_ms / 1000
        self._awake = threading.Event()
        self._stopping = False
        self._sending = 0  # spans of the batch the thread is sending
        self._thread = threading.Thread(
            target=self._work, name="span-export", daemon=True
        )

    def start(self) -> "SpanExport":
        self._thread.start()
        return self

    def add(self, span) -> None:
        """Queue an ended span (on the request path: an append, nothing that waits)."""
        queue = self._queue
        if len(queue) == self._max_queue_size:
            self.count_dropped(1)  # the append below pushes the oldest out
        queue.append(span)
        if len(queue) >= self._batch_size and not self._awake.is_set():
            self._awake.set()

    def shutdown(self, seconds: float) -> None:
        """Send what is queued, for at most `seconds`: an exporter that hangs must not hold
        the process (gunicorn would wait for its worker until the graceful timeout). What
        has not left by then never will, and is counted as dropped."""
        self._stopping = True
        self._awake.set()
        self._thread.join(seconds)
        if self._thread.is_alive():
            self.count_dropped(len(self._queue) + self._sending)

    def _work(self) -> None:
        while not self._stopping:
            batch_full = self._awake.wait(self._delay)
            self._awake.clear()
            if self._stopping:
                break
            self._export(every_batch=not batch_full)
        self._export(every_batch=True)

    def _export(self, every_batch: bool) -> None:
        """One batch, and more while a full batch waits; every batch when `every_batch`
        (the schedule's turn, and the exit)."""
        queue = self._queue
        while queue:
            count = min(self._batch_size, len(queue))
            batch = [queue.popleft() for _ in range(count)]
            self._sending = count
            try:
                delivered = self._send(self._encode(batch))
            except Exception:  # a bug of ours or the client's must not end the thread
                log.exception("span export failed")
                delivered = False
            self._sending = 0
            if not delivered:
                self.count_dropped(count)
            if not every_batch and len(queue) < self._batch_size:
                return


def otlp_sender() -> Callable[[bytes], bool]:
    """`send(body) -> delivered` through the SDK's OTLP/HTTP span exporter's client (its
    private `_client`: pinned by tests/chassis/test_spanexport.py to the installed SDK)."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    client = getattr(OTLPSpanExporter(), "_client", None)
    if client is None:  # an exporter outside setup.cfg's bounds
        raise RuntimeError(
            "this opentelemetry-exporter-otlp-proto-http has no _client to send with: "
            "install the version setup.cfg names"
        )
    return lambda body: client.export(body).success


# -- OTLP protobuf, by hand ----------------------------------------------------------------

_SERVER, _CLIENT = 2, 3  # Span.SpanKind
_ERROR = 2  # Status.StatusCode
# Span.flags: the SDK says whether the parent is remote (SpanFlags' two CONTEXT bits).
_HAS_IS_REMOTE, _IS_REMOTE = 0x100, 0x200
_VARINTS = [bytes((n,)) for n in range(0x80)]
_TIMES = struct.Struct("<BQBQ")  # start_time_unix_nano (7), end_time_unix_nano (8)
_FLAGS = struct.Struct("<2sI")  # flags (16), fixed32
_LOCAL_FLAGS = _FLAGS.pack(b"\x85\x01", _HAS_IS_REMOTE)
_REMOTE_FLAGS = _FLAGS.pack(b"\x85\x01", _HAS_IS_REMOTE | _IS_REMOTE)


def _varint(n: int) -> bytes:
    if 0 <= n < 0x80:
        return _VARINTS[n]
    if 0 < n < 0x4000:  # a span's length: two bytes
        return bytes((n & 0x7F | 0x80, n >> 7))
    n &= (1 << 64) - 1  # a negative int64 is ten bytes of two's complement
    out = bytearray()
    while n >= 0x80:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _field(tag: bytes, data: bytes) -> bytes:
    """A length-delimited field: its tag byte(s), the length, the bytes."""
    return tag + _varint(len(data)) + data


def _string(tag: bytes, text: str) -> bytes:
    return _field(tag, text.encode())


def _any_value(value) -> bytes:
    """An AnyValue's bytes, as the SDK encodes an attribute value."""
    if isinstance(value, bool):
        return b"\x10" + _VARINTS[value]
    if isinstance(value, int):
        return b"\x18" + _varint(value)
    if isinstance(value, float):
        return b"\x21" + struct.pack("<d", value)
    if isinstance(value, str):
        return _string(b"\x0a", value)
    if isinstance(value, (list, tuple)):
        values = b"".join(_field(b"\x0a", _any_value(v)) for v in value)
        return _field(b"\x2a", values)
    raise TypeError(f"attribute value {value!r}")


def _key(key: str) -> bytes:
    """The start of a KeyValue: its key and the value's tag (the value's length follows)."""
    return _string(b"\x0a", key) + b"\x12"


def _attribute(key: bytes, value: bytes) -> bytes:
    """Span.attributes (9): one KeyValue of a _key() and an _any_value()."""
    return _field(b"\x4a", key + _varint(len(value)) + value)


def key_values(attributes: Mapping) -> bytes:
    """A repeated KeyValue field 1 (Resource.attributes), in the mapping's order."""
    return b"".join(
        _field(b"\x0a", _key(k) + _field(b"", _any_value(v)))
        for k, v in attributes.items()
    )


_METHOD = _key("http.request.method")
_METHOD_ORIGINAL = _key("http.request.method_original")
_PATH = _key("url.path")
_ROUTE = _key("http.route")
_REQUEST_ID = _key(REQUEST_ID_ATTRIBUTE)
_STATUS_CODE = _key("http.response.status_code")
_ADDRESS = _key("server.address")
_PORT = _key("server.port")
_URL = _key("url.full")
_RESEND_COUNT = _key("http.request.resend_count")
_INSTANCE = _key("switchyard.instance.id")
_ATTEMPT = _key("switchyard.attempt")
_OUTCOME = _key("switchyard.outcome")


def _status(error: str | None) -> bytes:
    """Span.status (15): present and empty when unset, as the SDK sends it."""
    if error is None:
        return b"\x7a\x00"
    message = _string(b"\x12", error) if error else b""
    return _field(b"\x7a", message + b"\x18" + _VARINTS[_ERROR])


# The bytes that repeat from span to span -- a route's name and attributes, an instance's,
# an outcome and its status -- are made once (bounded: paths may carry ids).
_repeated = functools.lru_cache(maxsize=1024)


@_repeated
def _server_constants(method: str, path: str, route: str | None) -> tuple[bytes, bytes]:
    """(name and kind, method, path and route attributes) of a server span; a method the
    semantic conventions do not know is `_OTHER`, named `HTTP`, its original beside it."""
    known = known_method(method)
    name = f"{method_in_name(known)} {route}" if route else method_in_name(known)
    attributes = _attribute(_METHOD, _string(b"\x0a", known))
    if known != method:
        attributes += _attribute(_METHOD_ORIGINAL, _string(b"\x0a", method))
    attributes += _attribute(_PATH, _string(b"\x0a", path))
    if route:
        attributes += _attribute(_ROUTE, _string(b"\x0a", route))
    return _string(b"\x2a", name) + b"\x30" + _VARINTS[_SERVER], attributes


@_repeated
def _attempt_constants(
    number: int, method: str, instance_id: str, address: str, port: int
) -> tuple[bytes, bytes, str]:
    """(name and kind, method, instance and attempt attributes, the start of url.full) of
    an attempt span: named `{method}` as the semantic conventions name a client span, the
    instance (whose id and port would make a name per instance) in attributes. A retry is
    a resend."""
    known = known_method(method)
    attributes = (
        _attribute(_METHOD, _string(b"\x0a", known))
        + _attribute(_ADDRESS, _string(b"\x0a", address))
        + _attribute(_PORT, b"\x18" + _varint(port))
        + _attribute(_INSTANCE, _string(b"\x0a", instance_id))
        + _attribute(_ATTEMPT, b"\x18" + _varint(number))
    )
    if number > 1:
        attributes += _attribute(_RESEND_COUNT, b"\x18" + _varint(number - 1))
    host = f"[{address}]" if ":" in address else address  # an IPv6 literal
    return (
        _string(b"\x2a", method_in_name(known)) + b"\x30" + _VARINTS[_CLIENT],
        attributes,
        f"http://{host}:{port}",
    )


@_repeated
def _ending(outcome: str | None, status: int | None, error: str | None) -> bytes:
    """The outcome and status code attributes (when there are), then the span's status."""
    parts = []
    if outcome is not None:
        parts.append(_attribute(_OUTCOME, _string(b"\x0a", outcome)))
    if status is not None:
        parts.append(_attribute(_STATUS_CODE, b"\x18" + _varint(status)))
    parts.append(_status(error))
    return b"".join(parts)


_KEY_LENGTH = len(_REQUEST_ID)
_SHORT = 0x7F - 7 - _KEY_LENGTH  # a request id this long or shorter: one-byte lengths


def _request_id(request_id: str) -> bytes:
    """The X-Request-ID attribute: an array of one string, as captured headers are. On
    every request: a short id's nested lengths are written at once."""
    data = request_id.encode()
    n = len(data)
    if n > _SHORT:
        value = _field(b"\x2a", _field(b"\x0a", _field(b"\x0a", data)))
        return _attribute(_REQUEST_ID, value)
    # Span.attributes > KeyValue.value > AnyValue.array_value > ArrayValue.values >
    # AnyValue.string_value: each a tag and the length of what it holds.
    return (
        bytes((0x4A, _KEY_LENGTH + n + 7))
        + _REQUEST_ID
        + bytes((n + 6, 0x2A, n + 4, 0x0A, n + 2, 0x0A, n))
        + data
    )


def _span(trace_id, span_id, trace_state, parent_id, head, start, end, rest, flags):
    """An OTLP Span: its ids, name and kind (`head`), times, then `rest` (attributes and
    status, made by the caller) and the flags -- the fields in number order."""
    return b"".join(
        (
            b"\x0a\x10",
            trace_id.to_bytes(16, "big"),
            b"\x12\x08",
            span_id.to_bytes(8, "big"),
            _string(b"\x1a", trace_state) if trace_state else b"",
            b"\x22\x08" + parent_id.to_bytes(8, "big") if parent_id else b"",
            head,
            _TIMES.pack(0x39, start, 0x41, end),
            rest,
            flags,
        )
    )


def encode_server(span) -> bytes:
    """A chassis.spans.ServerSpan as an OTLP Span."""
    head, attributes = _server_constants(span.method, span.path, span.route)
    if span.request_id:
        attributes += _request_id(span.request_id)
    parent_id = span.parent_id
    return _span(
        span.trace_id,
        span.span_id,
        span.trace_state,
        parent_id,
        head,
        span.start_ns,
        span.end_ns,
        attributes + _ending(None, span.status, span.error),
        _REMOTE_FLAGS if parent_id else _LOCAL_FLAGS,
    )


def encode_attempt(span) -> bytes:
    """A chassis.spans.AttemptSpan as an OTLP Span: a local child of its server span."""
    server, instance = span.parent, span.instance
    head, attributes, origin = _attempt_constants(
        span.number, span.method, instance.id, instance.address, instance.port
    )
    attributes += _attribute(_URL, _string(b"\x0a", origin + span.target))
    return _span(
        server.trace_id,
        span.span_id,
        server.trace_state,
        server.span_id,
        head,
        span.start_ns,
        span.end_ns,
        attributes + _ending(span.outcome, span.status, span.error),
        _LOCAL_FLAGS,
    )


class OTLPEncoder:
    """ExportTraceServiceRequest bytes of ServerSpans and AttemptSpans, under one resource
    (its attributes: a mapping, e.g. an SDK Resource's) and the scope `scope`: each span on
    its own (`span`), then those of a batch together (`request`)."""

    def __init__(self, resource_attributes: Mapping, scope: str):
        resource = _field(b"\x0a", key_values(resource_attributes))
        self._resource = resource  # ResourceSpans.resource (1)
        self._scope = _field(b"\x0a", _string(b"\x0a", scope))  # ScopeSpans.scope (1)

    @staticmethod
    def span(span) -> bytes:
        """One span, as an element of ScopeSpans.spans (2)."""
        encode = encode_attempt if type(span) is AttemptSpan else encode_server
        return _field(b"\x12", encode(span))

    def request(self, spans: list[bytes]) -> bytes:
        """The request of spans encoded by `span`."""
        scope_spans = _field(b"\x12", self._scope + b"".join(spans))
        return _field(b"\x0a", self._resource + scope_spans)


def queue_encoded(encoder: OTLPEncoder, export: SpanExport) -> Callable:
    """The sink of a SpanRecorder: each ended span encoded and queued. Encoding cannot fail
    a request: a span it fails on is logged and counted as dropped."""
    encode, add = encoder.span, export.add

    def record(span) -> None:
        try:
            add(encode(span))
        except Exception:
            log.exception("span not encoded")
            export.count_dropped(1)

    return record
