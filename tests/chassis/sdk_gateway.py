"""The gateway's spans as the OpenTelemetry SDK makes them -- the way the gateway made them
before chassis.spans: the reference that test_spans.py and test_spanexport.py hold the
hand-made spans to. Ids come from `random` in both, in the same order, so with the same seed
both make the same ids."""

import random
from dataclasses import dataclass, field
from typing import NamedTuple

from opentelemetry import context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
    InMemorySpanExporter,
)
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import (
    TraceContextTextMapPropagator,
)

from chassis import tracing
from chassis.spans import (
    Sampling,
    SpanRecorder,
    attempt_span,
    known_method,
    method_in_name,
    name_route,
)

PROPAGATOR = TraceContextTextMapPropagator()


class Upstream(NamedTuple):
    """An instance attempts go to (as a discovery Instance has them)."""

    id: str
    address: str = "10.0.0.7"
    port: int = 8001


@dataclass
class Request:
    """One request through the gateway: what came in, its attempts, its answer."""

    headers: dict  # lower-case names; a list of values: a header sent in several lines
    method: str = "GET"
    path: str = "/api/users/1"
    route: str | None = "/api/users/*"  # the route it matched, if one did
    upstream_target: str = "/users/1?expand=1"  # what its attempts ask of an instance
    request_id: str | None = "req-1"
    attempts: list = field(default_factory=lambda: [("user-service-h-1", "ok", 200)])
    answer: int = 200
    escapes: Exception | None = (
        None  # raised inside the server span, after the attempts
    )


@dataclass
class Made:
    spans: list  # ended and sampled, children first
    sent: list  # the trace headers each attempt sent, as a dict
    ids: tuple  # (trace id, span id) of the server span, in hex


def sdk_spans(request: Request, environ: dict, seed: int, resource=None) -> Made:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(
        sampler=tracing.RequestRootSampler(tracing.sampler_from_env(environ)),
        resource=resource or Resource.create({}),
        shutdown_on_exit=False,
    )
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("switchyard")
    random.seed(seed)
    sent = []
    method = known_method(request.method)
    original = {"http.request.method_original": request.method}
    try:
        with tracer.start_as_current_span(
            method_in_name(method),  # the route is not known yet
            context=PROPAGATOR.extract(request.headers),
            kind=SpanKind.SERVER,
            attributes={
                "http.request.method": method,
                **(original if method != request.method else {}),
                "url.path": request.path,
            },
        ) as server:
            if request.route:  # chassis.spanexport writes it beside the path
                server.update_name(f"{method_in_name(method)} {request.route}")
                server.set_attribute("http.route", request.route)
            if request.request_id:
                server.set_attribute(
                    "http.request.header.x-request-id", (request.request_id,)
                )
            for number, (instance, outcome, status) in enumerate(request.attempts, 1):
                upstream = Upstream(instance)
                resend = {"http.request.resend_count": number - 1}
                with tracer.start_as_current_span(
                    method_in_name(method),
                    kind=SpanKind.CLIENT,
                    attributes={
                        "http.request.method": method,
                        "server.address": upstream.address,
                        "server.port": upstream.port,
                        "switchyard.instance.id": instance,
                        "switchyard.attempt": number,
                        **(resend if number > 1 else {}),
                        "url.full": f"http://10.0.0.7:8001{request.upstream_target}",
                    },
                    record_exception=False,
                ) as attempt:
                    headers = {}
                    PROPAGATOR.inject(headers, context=context.get_current())
                    sent.append(headers)
                    attempt.set_attribute("switchyard.outcome", outcome)
                    if status is not None:
                        attempt.set_attribute("http.response.status_code", status)
                    if status is None or status >= 500:
                        attempt.set_status(Status(StatusCode.ERROR, outcome))
            if request.escapes is not None:
                raise request.escapes
            server.set_attribute("http.response.status_code", request.answer)
            if request.answer >= 500:
                server.set_status(Status(StatusCode.ERROR))
    except Exception as exc:
        if exc is not request.escapes:
            raise
    ids = server.get_span_context()
    return Made(
        list(exporter.get_finished_spans()),
        sent,
        (f"{ids.trace_id:032x}", f"{ids.span_id:016x}"),
    )


def light_spans(request: Request, environ: dict, seed: int) -> Made:
    ended = []
    recorder = SpanRecorder(Sampling.from_env(environ), ended.append)
    random.seed(seed)
    sent = []
    # As the gateway's server has them: the last value of each name, and every line.
    lines = [
        (name, value)
        for name, values in request.headers.items()
        for value in (values if isinstance(values, list) else [values])
    ]
    names = dict(lines)
    try:
        with recorder.server_span(
            names, request.method, request.path, request.request_id, lines
        ) as server:
            if request.route:
                name_route(request.route)
            for number, (instance, outcome, status) in enumerate(request.attempts, 1):
                upstream = Upstream(instance)
                with attempt_span(
                    upstream, number, request.method, request.upstream_target
                ) as attempt:
                    sent.append(dict(attempt.headers))
                    attempt.finish(outcome, status)
            if request.escapes is not None:
                raise request.escapes
            server.finish(request.answer)
    except Exception as exc:
        if exc is not request.escapes:
            raise
    return Made(ended, sent, (server.trace_hex, server.span_hex))
