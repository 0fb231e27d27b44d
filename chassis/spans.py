"""Hand-made spans for a server of our own (the gateway): light records, not SDK spans.

No official instrumentation fits the gateway's asyncio server, so its spans are made here,
and made cheaply: an SDK span costs tens of microseconds (bounded attributes behind locks,
the sampler, contextvars attach/detach, the processor hooks) and the gateway makes two per
request. A request's spans are a few slotted objects instead -- ids from random.getrandbits
as the SDK's RandomIdGenerator makes them, times from time.time_ns(), the attributes as plain
fields -- handed, once ended, to a sink (chassis.spanexport: encoded to bytes and queued
for its export thread). What reaches a collector is what the SDK would send for the same spans
(names, kinds, attributes, status, parentage, OTLP flags; tests/chassis/test_spanexport.py
compares the two field by field). Deliberately missing: the SDK's `exception` event on a
span an exception escaped (its status still says what escaped).

    recorder = SpanRecorder(Sampling.from_env(), sink)
    with recorder.server_span(headers, method, path, request_id) as span:   # current
        name_route("/api/users/*")              # its name: "GET /api/users/*", not the path
        ...
        with attempt_span(instance, number, "GET", "/users/1") as attempt:  # a child of it
            send(headers + attempt.headers)                     # its traceparent (+ tracestate)
            attempt.finish(outcome, status)
        ...
        span.finish(status)
    span.trace_hex, span.span_hex                               # for the access log

Propagation is W3C Trace Context, as the SDK's default propagator reads and writes it: a
valid incoming `traceparent` (and its `tracestate`) is continued, an invalid one -- or two --
starts a new trace. The sampling decision is the SDK's for OTEL_TRACES_SAMPLER (+ _ARG),
made once per request: with any of those samplers an attempt is sampled exactly when its
request's span is. A sampled-out request records nothing and still sends a traceparent,
with the sampled flag clear, as the SDK's non-recording spans do.

The current request span lives in a ContextVar, so it follows the request across awaits and
into the tasks it creates: the view's two concurrent fetches are two children of its span.
"""

import re
import time
from collections.abc import Callable, Mapping, Sequence
from contextvars import ContextVar
from random import getrandbits
from typing import Self

from chassis.env import ConfigError, env_choice, env_float

__all__ = [
    "REQUEST_ID_ATTRIBUTE",
    "SAMPLERS",
    "AttemptSpan",
    "Sampling",
    "ServerSpan",
    "SpanRecorder",
    "attempt_span",
    "known_method",
    "method_in_name",
    "name_route",
    "parse_traceparent",
    "sole_traceparent",
]

SAMPLERS = (
    "always_on",
    "always_off",
    "traceidratio",
    "parentbased_always_on",
    "parentbased_always_off",
    "parentbased_traceidratio",
)
# The semantic conventions' name for a captured request header (a list of values).
REQUEST_ID_ATTRIBUTE = "http.request.header.x-request-id"
# The methods the HTTP semantic conventions know (RFC 9110's, RFC 5789's PATCH, and QUERY):
# the list the services' instrumentations check a method against (opentelemetry-util-http's
# sanitize_method, pinned by tests/chassis/test_spans.py), so both sides record one alike.
KNOWN_METHODS = frozenset(
    {"CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "QUERY",
     "TRACE"}
)  # fmt: skip
OTHER_METHOD = "_OTHER"
SAMPLED = 0x01  # W3C trace flags
RANDOM_TRACE_ID = (
    0x02  # W3C Trace Context level 2: the trace id's right bits are random
)
# The SDK propagator's pattern, as it applies it (re.search).
_TRACEPARENT = re.compile(
    r"^[ \t]*([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?[ \t]*$"
)
_MAX_TRACESTATE = 512  # characters (W3C), beyond which the SDK ignores the header
_LOW_64 = (1 << 64) - 1  # TraceIdRatioBased looks at the trace id's low 64 bits

_current: ContextVar["ServerSpan | None"] = ContextVar("request_span", default=None)


def sampler_setting(environ: Mapping[str, str] | None = None) -> tuple[str, float]:
    """(OTEL_TRACES_SAMPLER, its ratio), checked: a typo is a ConfigError at boot rather
    than the SDK's silent fall-back to sampling everything."""
    name = env_choice("OTEL_TRACES_SAMPLER", "parentbased_always_on", SAMPLERS, environ)
    ratio = 1.0
    if name.endswith("traceidratio"):
        ratio = env_float("OTEL_TRACES_SAMPLER_ARG", 1.0, minimum=0.0, environ=environ)
        if ratio > 1.0:
            raise ConfigError(f"OTEL_TRACES_SAMPLER_ARG: must be <= 1, got {ratio}")
    return name, ratio


class Sampling:
    """The SDK samplers' rule for a request's server span, without building the parent
    Context they take: ParentBased follows a valid parent's sampled flag, any other root
    (always_on, always_off, traceidratio) compares the trace id's low 64 bits with
    round(ratio * 2**64), as TraceIdRatioBased does (always_on: every id, always_off: none)."""

    def __init__(self, name: str, ratio: float = 1.0):
        self.parent_based = name.startswith("parentbased_")
        root = name.removeprefix("parentbased_")
        if root == "always_on":
            ratio = 1.0
        elif root == "always_off":
            ratio = 0.0
        self.bound = round(ratio * (_LOW_64 + 1))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "Sampling":
        return cls(*sampler_setting(environ))

    def sampled(self, trace_id: int, parent_flags: int | None) -> bool:
        """Whether a span of `trace_id` is recorded; `parent_flags` are the trace flags of
        its remote parent, None when it starts the trace."""
        if self.parent_based and parent_flags is not None:
            return bool(parent_flags & SAMPLED)
        return trace_id & _LOW_64 < self.bound


class ServerSpan:
    """A request's SERVER span, recorded or not (`sampled`); a context manager that makes
    it current and, on leaving, ends it (an exception escaping marks it an error)."""

    __slots__ = (
        "_sink",
        "_token",
        "end_ns",
        "error",  # None, or the status description of an error ("" for none)
        "flags",  # W3C trace flags, as the SDK would propagate them
        "method",
        "parent_id",  # of the remote parent, 0 for a root
        "path",
        "request_id",
        "route",  # the route it matched (http.route), None until known
        "sampled",
        "span_hex",
        "span_id",
        "start_ns",
        "status",  # the HTTP status answered, None until finish()
        "trace_hex",
        "trace_id",
        "trace_state",  # the incoming tracestate, normalised ("" for none)
    )

    def __init__(self, sink, trace_id, parent_id, flags, trace_state, sampled):
        self.trace_id, self.parent_id = trace_id, parent_id
        self.span_id = getrandbits(64) or _nonzero(64)
        self.flags, self.trace_state, self.sampled = flags, trace_state, sampled
        self.trace_hex = f"{trace_id:032x}"
        self.span_hex = f"{self.span_id:016x}"
        self.status = self.error = self.end_ns = self.route = None
        self._sink = sink
        self.start_ns = time.time_ns()

    def finish(self, status: int) -> None:
        """Record the status the server answered with; a 5xx is an error span (a 4xx is
        the client's, not the server's, in the semantic conventions)."""
        self.status = status
        if status >= 500:
            self.error = ""

    def __enter__(self) -> Self:
        self._token = _current.set(self)
        return self

    def __exit__(self, kind, exc, traceback) -> None:
        _current.reset(self._token)
        if isinstance(exc, Exception):  # as the SDK: not CancelledError and its kin
            self.error = f"{kind.__name__}: {exc}"
        self.end_ns = time.time_ns()
        if self.sampled:
            self._sink(self)


class AttemptSpan:
    """One CLIENT span per upstream attempt, a child of its request's span; `headers` are
    the trace headers to send with it, so the upstream's server span is its child. Named
    by its method alone, as the semantic conventions name a client span: the instance it
    went to (`instance`: its `id`, `address` and `port`) is in its attributes."""

    __slots__ = (
        "end_ns",
        "error",
        "headers",
        "instance",
        "method",
        "number",
        "outcome",
        "parent",
        "span_id",
        "start_ns",
        "status",
        "target",  # what was asked of the instance: its path and query
    )

    def __init__(self, parent: ServerSpan, instance, number, method, target):
        self.parent, self.instance, self.number = parent, instance, number
        self.method, self.target = method, target
        self.span_id = getrandbits(64) or _nonzero(64)
        self.outcome = self.status = self.error = self.end_ns = None
        self.headers = [
            (
                "traceparent",
                f"00-{parent.trace_hex}-{self.span_id:016x}-{parent.flags:02x}",
            )
        ]
        if parent.trace_state:
            self.headers.append(("tracestate", parent.trace_state))
        self.start_ns = time.time_ns()

    def finish(self, outcome: str, status: int | None = None) -> None:
        """How the attempt ended: `outcome` ("ok", "connect_failed", "timeout", ...) and the
        upstream's HTTP status when one came back. A 5xx or no answer is an error span."""
        self.outcome, self.status = outcome, status
        if status is None or status >= 500:
            self.error = outcome

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind, exc, traceback) -> None:
        if isinstance(exc, Exception):
            self.error = f"{kind.__name__}: {exc}"
        self.end_ns = time.time_ns()
        if self.parent.sampled:
            self.parent._sink(self)


class SpanRecorder:
    """Makes a request's server span from its headers; ended sampled spans go to `sink`."""

    def __init__(self, sampling: Sampling, sink: Callable[[object], None]):
        self.sampling = sampling
        self.sink = sink

    def server_span(
        self,
        headers: Mapping[str, str],
        method: str,
        path: str,
        request_id: str | None,
        lines: Sequence[tuple[str, str]] = (),
    ) -> ServerSpan:
        """The span of a request: `headers` with lower-case names (traceparent and
        tracestate are read), `request_id` its X-Request-ID (recorded when there is one);
        `lines`, the request's header lines, are read for a tracestate sent in several, or
        a traceparent (which makes it invalid)."""
        trace_id, parent_id, parent_flags, trace_state = _parent(headers, lines)
        if parent_flags is None:
            flags = RANDOM_TRACE_ID  # RandomIdGenerator's trace ids are random
        else:
            flags = parent_flags & RANDOM_TRACE_ID
        sampled = self.sampling.sampled(trace_id, parent_flags)
        if sampled:
            flags |= SAMPLED
        span = ServerSpan(self.sink, trace_id, parent_id, flags, trace_state, sampled)
        span.method, span.path, span.request_id = method, path, request_id
        return span


def known_method(method: str) -> str:
    """The `http.request.method` of a request: its method when the semantic conventions know
    it (case-sensitively, as they ask), else `_OTHER`. A method a client makes up must not
    become a span name or an attribute value of its own in a backend's lists; the caller
    records the original in `http.request.method_original`."""
    return method if method in KNOWN_METHODS else OTHER_METHOD


def method_in_name(known: str) -> str:
    """The `{method}` of a span name, for a known_method(): `HTTP` in place of `_OTHER`."""
    return "HTTP" if known == OTHER_METHOD else known


def name_route(route: str) -> None:
    """Give the current request span the route it matched, a template such as
    `/api/users/*`: its name is then `<method> <route>` (just `<method>` with none), as the
    semantic conventions name a server span -- never by its path, whose ids would make a
    name per user in a backend's list of operations. Call it inside server_span's block."""
    _current.get().route = route


def attempt_span(instance, number: int, method: str, target: str) -> AttemptSpan:
    """Attempt `number` of the current request span: `method` and `target` (path and query)
    sent to `instance` (a discovery Instance: its `id`, `address`, `port`). Only a request
    starts a trace: call it inside SpanRecorder.server_span's block."""
    parent = _current.get()
    if parent is None:
        raise RuntimeError("attempt_span outside a request's server_span")
    return AttemptSpan(parent, instance, number, method, target)


def parse_traceparent(header: str | None) -> tuple[str, str, str] | None:
    """(trace id, parent span id, trace flags), in hex, of a traceparent the SDK's
    TraceContextTextMapPropagator accepts -- a later version is read as version 00, as W3C
    asks -- else None. The untraced gateway (gateway.headers) continues traces by it too."""
    match = _TRACEPARENT.search(header) if header else None
    if match is None:
        return None
    version, trace_hex, span_hex, flags, rest = match.groups()
    if (
        trace_hex == "0" * 32
        or span_hex == "0" * 16
        or version == "ff"
        or (version == "00" and rest)
    ):
        return None
    return trace_hex, span_hex, flags


def sole_traceparent(
    names: Mapping[str, str], lines: Sequence[tuple[str, str]]
) -> str | None:
    """The request's traceparent from `names` (lower-case name -> last value, of its header
    `lines`); None when it has none, or more than one. Two are no parent at all: W3C Trace
    Context's test suite expects a new trace of them (test_traceparent_duplicated), and
    RFC 9110 would join them into one value that no version parses (gunicorn does, so the
    services start a new trace too). The lines are read only when some name came twice."""
    value = names.get("traceparent")
    if value is None or len(names) == len(lines):  # nearly always: no name came twice
        return value
    lines_of_it = sum(1 for name, _ in lines if name.lower() == "traceparent")
    return None if lines_of_it > 1 else value


def _parent(
    headers: Mapping[str, str], lines: Sequence[tuple[str, str]]
) -> tuple[int, int, int | None, str]:
    """(trace id, parent span id, parent's trace flags, tracestate) from a valid incoming
    traceparent; otherwise a new trace: (new trace id, 0, None, "")."""
    parsed = parse_traceparent(sole_traceparent(headers, lines))
    if parsed is not None:
        trace_hex, span_hex, flags = parsed
        state = ""
        if "tracestate" in headers:
            state = _trace_state(headers["tracestate"], lines)
        return int(trace_hex, 16), int(span_hex, 16), int(flags, 16), state
    return getrandbits(128) or _nonzero(128), 0, None, ""


def _trace_state(last: str, lines: Sequence[tuple[str, str]]) -> str:
    """The tracestate the SDK would keep and pass on: its own parser's, rarely needed, over
    every tracestate line in order, as one list (W3C; the SDK's propagator joins them)."""
    header = ",".join(v for n, v in lines if n.lower() == "tracestate") or last
    if len(header) > _MAX_TRACESTATE:
        return ""
    from opentelemetry.trace.span import TraceState

    return TraceState.from_header([header]).to_header()


def _nonzero(bits: int) -> int:
    """Random bits that are not all zero (an all-zero id is invalid), as RandomIdGenerator
    draws them: again, from the same generator."""
    value = getrandbits(bits)
    while not value:
        value = getrandbits(bits)
    return value
