"""OpenTelemetry tracing for every Switchyard process, configured by the standard OTEL_* variables.

| variable | meaning |
|---|---|
| OTEL_EXPORTER_OTLP_ENDPOINT (or _TRACES_ENDPOINT) | OTLP/HTTP collector; unset: tracing off |
| OTEL_SDK_DISABLED | `true`: tracing off whatever else is set |
| OTEL_TRACES_EXPORTER | `otlp` (the default) or `none` (tracing off); another is refused at boot |
| OTEL_EXPORTER_OTLP_(TRACES_)PROTOCOL | `http/protobuf`, the only one spoken; another is refused |
| OTEL_TRACES_SAMPLER / OTEL_TRACES_SAMPLER_ARG | sampler (default parentbased_always_on) and its ratio |
| OTEL_RESOURCE_ATTRIBUTES | extra resource attributes (service.* come from the instance) |
| OTEL_BSP_MAX_QUEUE_SIZE, _SCHEDULE_DELAY, _MAX_EXPORT_BATCH_SIZE | the bounded queue, its delay and batch |
| OTEL_PYTHON_FLASK_EXCLUDED_URLS | paths not traced (default: /health, /openapi.json) |

Tracing off costs nothing: no SDK provider is set up and no instrumentation is installed, so
every OpenTelemetry call in the process is the API's no-op. Tracing on, an exporter that is
down or slow never touches a request: ended spans go to a bounded queue that a background
thread exports; what cannot be queued or exported is counted (`dropped_spans()`), not waited for.

The services (Flask) are traced by the SDK and the official instrumentations (Flask,
requests, SQLAlchemy): `instrument_service_app`. Only requests start traces
(RequestRootSampler): a span with no parent that is not a SERVER span is never recorded, so
Consul calls from the watcher and registration threads, and the health check's database
ping, never make traces of their own nor join a request's. The SDK is set up in the serving
process itself -- on a service's first request -- never in a gunicorn master before it
forks: the batch processor's export thread does not survive a fork.

The gateway (an asyncio server of its own, which no instrumentation fits) makes its spans by
hand, and without SDK spans, which would cost it more than the rest of a request:
`span_recorder` sets up chassis.spans (light records of its server and attempt spans, the
same sampling and W3C propagation) and chassis.spanexport (the batch queue and thread, OTLP
encoding, the SDK exporter's HTTP client) in its worker, after the fork:

    recorder = span_recorder("gateway", instance_id, version)   # None: tracing off
    with recorder.server_span(lower_case_headers, method, path, request_id) as span:
        with attempt_span(instance, number, method, target) as attempt:   # chassis.spans
            ...send, with attempt.headers (its traceparent)...
            attempt.finish(outcome, status)
        span.finish(status)

`dropped_spans()` counts for both, and is on the gateway's /metrics; every process logs the
count as drops begin, at most once a minute after, and the total at exit. Failing exports
are told alike (ExportFailures), in place of the SDK exporter's line per retry and batch.
"""

import atexit
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping, MutableMapping

from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind

from chassis.env import ConfigError
from chassis.spans import (
    REQUEST_ID_ATTRIBUTE,
    Sampling,
    SpanRecorder,
    known_method,
    method_in_name,
    sampler_setting,
)

__all__ = [
    "REQUEST_ID_ATTRIBUTE",
    "RequestRootSampler",
    "check_exporter",
    "check_settings",
    "configure_tracing",
    "dropped_spans",
    "instrument_service_app",
    "record_request_id",
    "sampler_from_env",
    "span_recorder",
    "trace_ids",
    "tracing_enabled",
]

log = logging.getLogger("tracing")

ENDPOINT_VARIABLES = (
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
)
# Health checks hit /health every second and nobody reads their traces.
DEFAULT_EXCLUDED_URLS = r"/health(\?|$),/openapi\.json"
# The propagators the gateway honours (see check_settings).
GATEWAY_PROPAGATORS = frozenset({"tracecontext", "baggage"})
# At exit, pending spans get this long to leave; an exporter that hangs must not hold the
# process (gunicorn would wait for the worker until its graceful timeout).
EXIT_FLUSH_SECONDS = 2.0
# WSGI environ keys the server span's ids are left under, for the access log.
ENVIRON_TRACE_ID = "switchyard.trace_id"
ENVIRON_SPAN_ID = "switchyard.span_id"

_TRACER = "switchyard"
_configured_pid: int | None = None
_configure_lock = threading.Lock()
_dropped = 0
_dropped_lock = threading.Lock()
# Drops are told in the log as they begin, then at most this often, and at exit: a collector
# down is noticed, in every process (the services have no /metrics), without a line a span.
DROPPED_LOG_SECONDS = 60.0
_clock = time.monotonic
_dropped_logged_at = -float("inf")  # by _clock


def tracing_enabled(environ: Mapping[str, str] | None = None) -> bool:
    """True when an OTLP endpoint is set, OTEL_SDK_DISABLED is not `true` and
    OTEL_TRACES_EXPORTER is not `none`."""
    environ = os.environ if environ is None else environ
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    if _names(environ, "OTEL_TRACES_EXPORTER") == {"none"}:
        return False
    return any(environ.get(name, "").strip() for name in ENDPOINT_VARIABLES)


def check_exporter(environ: Mapping[str, str] | None = None) -> None:
    """Spans leave over OTLP/HTTP in protobuf, and only so: asked for another exporter
    (console, zipkin) or protocol (grpc, http/json), the set-up would silently not do it --
    spans sent as HTTP to a gRPC port are all lost -- so the boot stops instead."""
    environ = os.environ if environ is None else environ
    other = sorted(_names(environ, "OTEL_TRACES_EXPORTER") - {"otlp"})
    if other:
        raise ConfigError(
            f"OTEL_TRACES_EXPORTER: spans are exported over OTLP (otlp) or not at all"
            f" (none), not {', '.join(other)}"
        )
    # The signal's own variable wins over the general one, as the SDK reads endpoints.
    for variable in (
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
        "OTEL_EXPORTER_OTLP_PROTOCOL",
    ):
        protocol = environ.get(variable, "").strip()
        if protocol:
            if protocol != "http/protobuf":
                raise ConfigError(
                    f"{variable}: only http/protobuf is spoken (OTLP/HTTP, a collector's"
                    f" port 4318), not {protocol}"
                )
            return


def _names(environ: Mapping[str, str], variable: str) -> set[str]:
    """The comma-separated names of a list variable, lower-cased."""
    return {
        name.strip().lower()
        for name in environ.get(variable, "").split(",")
        if name.strip()
    }


def sampler_from_env(environ: Mapping[str, str] | None = None):
    """The SDK sampler OTEL_TRACES_SAMPLER (+ _ARG) names, checked: a typo is a ConfigError
    at boot rather than the SDK's silent fall-back to sampling everything."""
    from opentelemetry.sdk.trace import sampling

    name, ratio = sampler_setting(environ)
    if name.endswith("traceidratio"):
        root = sampling.TraceIdRatioBased(ratio)
    else:
        root = (
            sampling.ALWAYS_OFF if name.endswith("always_off") else sampling.ALWAYS_ON
        )
    return sampling.ParentBased(root) if name.startswith("parentbased") else root


def check_settings(environ: Mapping[str, str] | None = None) -> None:
    """The gateway's tracing settings, checked in its master: a bad OTEL_TRACES_SAMPLER or
    OTEL_BSP_*, or an exporter, protocol or OTEL_PROPAGATORS it does not speak, stops the
    boot."""
    from chassis.spanexport import settings_from_env

    sampler_setting(environ)
    settings_from_env(environ)
    check_exporter(environ)
    _check_propagators(os.environ if environ is None else environ)


def _check_propagators(environ: Mapping[str, str]) -> None:
    """The gateway writes W3C `traceparent`/`tracestate` itself (chassis.spans) and passes
    a client's `baggage` on like any header; asked for another propagation (b3, jaeger,
    none), it would silently not do it, so it refuses to start instead."""
    unsupported = sorted(_names(environ, "OTEL_PROPAGATORS") - GATEWAY_PROPAGATORS)
    if unsupported:
        raise ConfigError(
            f"OTEL_PROPAGATORS: the gateway propagates tracecontext (and passes baggage"
            f" on), not {', '.join(unsupported)}"
        )


class RequestRootSampler:
    """Drops every span that would start a trace without being a request's SERVER span;
    everything else is the delegate's decision (see the module docstring for why)."""

    def __init__(self, delegate):
        self.delegate = delegate

    def should_sample(
        self,
        parent_context,
        trace_id,
        name,
        kind=None,
        attributes=None,
        links=None,
        trace_state=None,
    ):
        from opentelemetry.sdk.trace.sampling import Decision, SamplingResult

        parent = trace.get_current_span(parent_context).get_span_context()
        if not parent.is_valid and kind is not SpanKind.SERVER:
            return SamplingResult(Decision.DROP)
        return self.delegate.should_sample(
            parent_context, trace_id, name, kind, attributes, links, trace_state
        )

    def get_description(self) -> str:
        return f"RequestRoot{{{self.delegate.get_description()}}}"


# -- dropped spans ---------------------------------------------------------------------


def dropped_spans() -> int:
    """Spans this process ended but could not send: its queue was full, the export failed,
    or the exit came first."""
    return _dropped


def count_dropped(count: int) -> None:
    global _dropped, _dropped_logged_at
    with _dropped_lock:
        _dropped += count
        now = _clock()
        if now - _dropped_logged_at < DROPPED_LOG_SECONDS:
            return
        _dropped_logged_at = now
        total = _dropped
    log.warning(
        "spans dropped so far: %d (the export queue was full or the export failed:"
        " is the collector down or slow?)",
        total,
    )


def _at_exit() -> None:
    """From now on drops are only counted: the exit's one line tells them all."""
    global _dropped_logged_at
    with _dropped_lock:
        _dropped_logged_at = float("inf")


def _log_dropped_at_exit() -> None:
    if _dropped:
        log.warning("spans dropped in all: %d, never exported", _dropped)


# -- failing exports ---------------------------------------------------------------------

# The logger the SDK's OTLP/HTTP span exporter, and its client, log each failure on.
EXPORTER_LOGGER = "opentelemetry.exporter.otlp.proto.http.trace_exporter"
FAILING_LOG_SECONDS = 60.0


class ExportFailures(logging.Filter):
    """Tells the log of failing exports once as they begin, with the exporter's reason; then
    at most once a minute, with the batches that failed since; and once as they succeed
    again. In place of the exporter client's own lines -- a warning per retry and an error
    per batch, which with a collector down come several a second from every process. Only
    what it logs during an export of ours (`watched`) is held back: its first and last
    lines are the reason told of a failed one (a retried export that succeeds is no
    failure); anything else the exporter says passes."""

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        super().__init__()
        self._clock = clock
        self._held = threading.local()  # .lines: the current export's, in this thread
        self._lock = threading.Lock()
        self._since: float | None = None  # failing since, by clock; None: not failing
        self._failed = 0  # batches failed since the last line told
        self._total = 0  # batches failed since the failures began
        self._told_at = 0.0

    def filter(self, record: logging.LogRecord) -> bool:
        lines = getattr(self._held, "lines", None)
        if lines is None:
            return True
        lines.append(record.getMessage())
        return False

    def watched(self, export: Callable[..., bool]) -> Callable[..., bool]:
        """`export(...) -> delivered`, its exporter's lines held back and told as above."""

        def watched_export(*args) -> bool:
            self._held.lines = lines = []
            try:
                delivered = export(*args)
            finally:
                self._held.lines = None
            if delivered:
                self._succeeded()
            else:
                self._failed_with(_reason(lines))
            return delivered

        return watched_export

    def _failed_with(self, reason: str) -> None:
        with self._lock:
            now = self._clock()
            self._total += 1
            if self._since is None:
                self._since = self._told_at = now
                log.warning("span export failing: %s", reason)
                return
            self._failed += 1
            if now - self._told_at >= FAILING_LOG_SECONDS:
                log.warning(
                    "span export still failing: %d more batches failed in the last"
                    " %.0f s (the latest: %s)",
                    self._failed,
                    now - self._told_at,
                    reason,
                )
                self._told_at, self._failed = now, 0

    def _succeeded(self) -> None:
        if self._since is None:  # nearly always: no lock taken
            return
        with self._lock:
            if self._since is not None:
                log.info(
                    "span export succeeds again, after %d failed batches in %.0f s",
                    self._total,
                    self._clock() - self._since,
                )
                self._since, self._failed, self._total = None, 0, 0


def _reason(lines: list[str]) -> str:
    """What the exporter said of a failed export: its first line (the cause, as the first
    retry saw it) and its last (how it gave up)."""
    if not lines:
        return "the exporter gave no reason"
    return lines[0] if len(lines) == 1 else f"{lines[0]} ... {lines[-1]}"


export_failures = ExportFailures()


def watch_exports() -> None:
    """Let export_failures hold the exporter's failure lines back (idempotent)."""
    logging.getLogger(EXPORTER_LOGGER).addFilter(export_failures)


class _CountingExporter:
    """The exporter, counting the spans of every batch it fails to deliver, and telling
    failures as export_failures does."""

    def __init__(self, exporter):
        self._exporter = exporter
        self._export = export_failures.watched(self._delivered)
        self.sending = 0  # spans of the batch being exported

    def _delivered(self, spans) -> bool:
        from opentelemetry.sdk.trace.export import SpanExportResult

        return self._exporter.export(spans) is SpanExportResult.SUCCESS

    def export(self, spans):
        from opentelemetry.sdk.trace.export import SpanExportResult

        self.sending = len(spans)
        try:
            delivered = self._export(spans)
        finally:
            self.sending = 0
        if delivered:
            return SpanExportResult.SUCCESS
        count_dropped(len(spans))
        return SpanExportResult.FAILURE

    def shutdown(self):
        return self._exporter.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self._exporter.force_flush(timeout_millis)


class _CountingProcessorMetrics:
    """The batch processor's own metrics hook, counting what it drops on a full queue."""

    def __init__(self, metrics):
        self._metrics = metrics

    def register_queue_size(self, get_queue_size) -> None:
        self._metrics.register_queue_size(get_queue_size)

    def drop_items(self, count: int, error_type: str = "queue_full") -> None:
        count_dropped(count)
        self._metrics.drop_items(count, error_type)

    def finish_items(self, count: int) -> None:
        self._metrics.finish_items(count)


def counting_batch_processor(exporter, **options):
    """A BatchSpanProcessor (bounded queue: OTEL_BSP_MAX_QUEUE_SIZE unless `max_queue_size`)
    whose lost spans add to dropped_spans(), its failing exports told by export_failures."""
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    watch_exports()
    processor = BatchSpanProcessor(_CountingExporter(exporter), **options)
    # The SDK reports queue-full drops only through this internal hook (and a log line).
    batch = getattr(processor, "_batch_processor", None)
    if batch is not None and hasattr(batch, "_metrics"):
        batch._metrics = _CountingProcessorMetrics(batch._metrics)
    else:
        log.warning(
            "this SDK hides its queue: spans dropped on a full queue go uncounted"
        )
    return processor


def _unsent(processor) -> int:
    """The spans a counting_batch_processor holds (queued, or in the batch being exported),
    read from the same SDK internals; 0 where this SDK hides them."""
    batch = getattr(processor, "_batch_processor", None)
    exporter = getattr(batch, "_exporter", None)
    return len(getattr(batch, "_queue", ())) + getattr(exporter, "sending", 0)


# -- set-up ------------------------------------------------------------------------------


def configure_tracing(service_name: str, instance_id: str, version: str) -> bool:
    """Set up the SDK for this process when tracing is on; True if it is. Idempotent.

    service.name, service.instance.id and service.version are the instance's Consul name,
    ID and version (they win over OTEL_RESOURCE_ATTRIBUTES, whose other attributes are kept).
    Call it in the process that serves (after gunicorn forks), not in a master.
    """
    if not tracing_enabled():
        return False
    # Threads of a worker may all arrive here with its first requests: they wait for the
    # one that sets up, rather than serve (with no-op spans) before it is done.
    with _configure_lock:
        if _configured_pid is None:
            _set_up_sdk(service_name, instance_id, version)
    return True


def _set_up_sdk(service_name: str, instance_id: str, version: str) -> None:
    global _configured_pid
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace import TracerProvider

    provider = TracerProvider(
        resource=_resource(service_name, instance_id, version),
        sampler=RequestRootSampler(sampler_from_env()),
        shutdown_on_exit=False,  # ours below is bounded; the SDK's waits up to 30 s
    )
    processor = counting_batch_processor(OTLPSpanExporter())
    provider.add_span_processor(processor)
    trace.set_tracer_provider(provider)
    atexit.register(_shutdown_within, provider, processor, EXIT_FLUSH_SECONDS)
    _configured_pid = os.getpid()
    log.info("exporting traces of %s as %s", service_name, instance_id)


def _resource(service_name: str, instance_id: str, version: str):
    """The SDK's Resource: OTEL_RESOURCE_ATTRIBUTES and the SDK's own telemetry.sdk.*, under
    the instance's Consul name, ID and version."""
    from opentelemetry.sdk.resources import Resource

    return Resource.create(
        {
            "service.name": service_name,
            "service.instance.id": instance_id,
            "service.version": version,
        }
    )


def span_recorder(
    service_name: str, instance_id: str, version: str
) -> SpanRecorder | None:
    """The gateway's spans when tracing is on (None when off): a recorder whose ended spans
    an export thread of this process sends. Call it in the process that serves."""
    if not tracing_enabled():
        return None
    from chassis.spanexport import (
        OTLPEncoder,
        SpanExport,
        otlp_sender,
        queue_encoded,
        settings_from_env,
    )

    resource = _resource(service_name, instance_id, version)
    encoder = OTLPEncoder(resource.attributes, _TRACER)
    watch_exports()
    send = export_failures.watched(otlp_sender())
    export = SpanExport(
        encoder.request, send, count_dropped, **settings_from_env()
    ).start()
    atexit.register(_stop_export, export, EXIT_FLUSH_SECONDS)
    log.info("exporting traces of %s as %s", service_name, instance_id)
    return SpanRecorder(Sampling.from_env(), queue_encoded(encoder, export))


def _stop_export(export, seconds: float) -> None:
    _at_exit()
    export.shutdown(seconds)  # counts what did not leave in time
    _log_dropped_at_exit()


def _shutdown_within(provider, processor, seconds: float) -> None:
    """The provider's shutdown (a last export), for at most `seconds`; the spans that did
    not leave by then never will, and are counted as dropped."""
    _at_exit()
    flusher = threading.Thread(target=provider.shutdown, daemon=True)
    flusher.start()
    flusher.join(seconds)
    if flusher.is_alive():
        count_dropped(_unsent(processor))
    _log_dropped_at_exit()


def instrument_service_app(app, db, service_name: str, version: str) -> None:
    """Trace a service when tracing is on: its server spans (Flask), its outgoing calls
    (requests) and its database statements (SQLAlchemy on `db`'s engine); the SDK is set
    up on the first request, in the serving process. Tracing off: nothing is installed."""
    if not tracing_enabled():
        return
    # A bad OTEL_TRACES_SAMPLER or exporter stops the boot, not the first request.
    sampler_from_env()
    check_exporter()
    # Here, not at the top: the gateway uses this module and has no Flask or SQLAlchemy.
    from opentelemetry.instrumentation.flask import FlaskInstrumentor
    from opentelemetry.instrumentation.requests import RequestsInstrumentor

    from chassis.storage import READS

    FlaskInstrumentor.instrument_app(
        app,
        request_hook=_on_server_request,
        excluded_urls=os.environ.get(
            "OTEL_PYTHON_FLASK_EXCLUDED_URLS", DEFAULT_EXCLUDED_URLS
        ),
    )
    with app.app_context():
        # Writes go through the session's engine, reads through storage.reading()'s own
        # (on PostgreSQL a separate autocommit pool): both carry the statements' spans.
        for engine in {db.engine, app.extensions[READS].engine}:
            _trace_statements(engine)
    RequestsInstrumentor().instrument()  # global; no-op when already installed
    instance_id = app.config["INSTANCE_ID"]
    app.wsgi_app = _ConfigureOnFirstRequest(
        app.wsgi_app, lambda: configure_tracing(service_name, instance_id, version)
    )


def _trace_statements(engine) -> None:
    """The SQLAlchemy instrumentation's EngineTracer on this one engine: what
    SQLAlchemyInstrumentor().instrument(engine=...) does, without the rest of that call --
    it refuses SQLAlchemy 2.1 (0.66b1 declares "< 2.1"; the engine events it uses are
    unchanged, and the integration test sees the statements' spans), and it patches
    create_async_engine, whose import needs greenlet."""
    from opentelemetry.instrumentation.sqlalchemy import __version__
    from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer
    from opentelemetry.metrics import get_meter

    scope = "opentelemetry.instrumentation.sqlalchemy"
    connections = get_meter(scope, __version__).create_up_down_counter(
        "db.client.connections.usage", unit="connections"
    )
    EngineTracer(trace.get_tracer(scope, __version__), engine, connections)


class _ConfigureOnFirstRequest:
    """WSGI middleware, outermost: sets the SDK up before the first request's span starts.
    Until then the instrumentation's tracers are the API's proxies, which then delegate."""

    def __init__(self, wsgi_app, configure):
        self.wsgi_app = wsgi_app
        self._configure = configure
        self._pid: int | None = None

    def __call__(self, environ, start_response):
        if self._pid != os.getpid():
            try:
                self._configure()
            except Exception:  # tracing must never fail a request
                log.exception("set-up failed; this process runs without tracing")
            # Only now: a request arriving meanwhile waits in configure_tracing.
            self._pid = os.getpid()
        return self.wsgi_app(environ, start_response)


def _on_server_request(span: Span, environ: MutableMapping) -> None:
    record_request_id(span, environ.get("HTTP_X_REQUEST_ID"))
    method = environ.get("REQUEST_METHOD", "")
    known = known_method(method)
    if known != method:
        # `_OTHER` in the instrumentation's attribute and `HTTP` in its span name, as in the
        # gateway's spans; the original beside it as the gateway's, which the
        # instrumentation records only with OTEL_SEMCONV_STABILITY_OPT_IN=http.
        span.set_attribute("http.request.method_original", method)
    # Flask's request, which werkzeug leaves in the environ, knows the route it matched.
    request = environ.get("werkzeug.request")
    if request is not None and request.url_rule is None:
        # No route (a 404, or a 405 before routing): the instrumentation names the span by
        # its path ("GET /orders/123"), a name per id in a backend's list of operations;
        # the conventions name a span without a route by its method.
        span.update_name(method_in_name(known))
    environ[ENVIRON_TRACE_ID], environ[ENVIRON_SPAN_ID] = trace_ids(span)


# -- the services' server spans ----------------------------------------------------------


def record_request_id(span: Span, request_id: str | None) -> None:
    """Put the request's X-Request-ID on `span`, so `switchyard traces <request id>` and any
    backend's search by attribute find the trace."""
    if request_id:
        span.set_attribute(REQUEST_ID_ATTRIBUTE, (request_id,))


def trace_ids(span: Span) -> tuple[str, str]:
    """(trace_id, span_id) in hex, as access logs print them; ("-", "-") when not traced."""
    ids = span.get_span_context()
    if not ids.is_valid:
        return "-", "-"
    return format(ids.trace_id, "032x"), format(ids.span_id, "016x")
