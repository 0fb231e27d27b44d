"""chassis.spans: the gateway's hand-made spans, held to what the SDK makes for the same
request (tests/chassis/sdk_gateway.py) -- ids, parentage, sampling, the headers sent on."""

import itertools

import pytest
from opentelemetry.trace import SpanKind, StatusCode

from chassis.env import ConfigError
from chassis.spans import KNOWN_METHODS, Sampling, attempt_span
from tests.chassis.sdk_gateway import Request, Upstream, light_spans, sdk_spans
from tests.support.tracing import keeping_recorder

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"  # low 64 bits: sampled at ratio 0.5
UNLIKELY = "4bf92f3577b34da6f3ce929d0e0e4736"  # low 64 bits: not sampled at 0.5
PARENT_ID = "00f067aa0ba902b7"

SAMPLERS = [
    {"OTEL_TRACES_SAMPLER": name, "OTEL_TRACES_SAMPLER_ARG": ratio}
    for name, ratio in [
        ("always_on", ""),
        ("always_off", ""),
        ("traceidratio", "0.5"),
        ("traceidratio", "0"),
        ("parentbased_always_on", ""),
        ("parentbased_always_off", ""),
        ("parentbased_traceidratio", "0.5"),
        ("parentbased_traceidratio", "1"),
    ]
]
INCOMING = [
    {},
    {"traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01"},
    {"traceparent": f"00-{UNLIKELY}-{PARENT_ID}-01"},
    {"traceparent": f"00-{TRACE_ID}-{PARENT_ID}-00"},
    {"traceparent": f"00-{UNLIKELY}-{PARENT_ID}-00"},
    {"traceparent": f"00-{TRACE_ID}-{PARENT_ID}-03"},  # sampled, random trace id
    {"traceparent": f"00-{TRACE_ID}-{PARENT_ID}-02"},
    {"traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01", "tracestate": "k=v,a=b"},
    {"traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01", "tracestate": ["k=v", "a=b"]},
    {"traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01", "tracestate": ["k=v", "=bad"]},
    {  # each line fits, together they are over 512 characters
        "traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01",
        "tracestate": ["k=" + "v" * 250, "a=" + "v" * 250, "b=v"],
    },
    {"traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01", "tracestate": "=bad"},
    {"traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01", "tracestate": "k=" + "v" * 600},
    {"traceparent": f" 00-{TRACE_ID}-{PARENT_ID}-01\t"},
    {"traceparent": f"01-{TRACE_ID}-{PARENT_ID}-01-future"},  # a later version's extra
    # invalid: a new trace
    {"traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01-extra", "tracestate": "k=v"},
    {"traceparent": f"ff-{TRACE_ID}-{PARENT_ID}-01"},
    {"traceparent": f"00-{'0' * 32}-{PARENT_ID}-01"},
    {"traceparent": f"00-{TRACE_ID}-{'0' * 16}-01"},
    {"traceparent": f"00-{TRACE_ID.upper()}-{PARENT_ID}-01"},
    {"traceparent": "00-xyz-abc-01"},
    {"traceparent": ""},
]


def summary(made, sdk: bool) -> dict:
    """What a collector and the upstreams see of a request, in one shape for both."""
    if sdk:
        spans = [
            (
                f"{s.context.trace_id:032x}",
                f"{s.context.span_id:016x}",
                s.parent and f"{s.parent.span_id:016x}",
                s.parent is not None and s.parent.is_remote,
            )
            for s in made.spans
        ]
    else:
        spans = []
        for s in made.spans:
            server = getattr(s, "parent", None)
            parent_id = server.span_id if server else s.parent_id
            spans.append(
                (
                    (server or s).trace_hex,
                    f"{s.span_id:016x}",
                    f"{parent_id:016x}" if parent_id else None,
                    server is None and bool(s.parent_id),
                )
            )
    return {"spans": spans, "sent": made.sent, "ids": made.ids}


@pytest.mark.parametrize("environ", SAMPLERS, ids=lambda e: "-".join(e.values()))
@pytest.mark.parametrize("headers", INCOMING, ids=lambda h: repr(h)[:60])
def test_ids_parents_sampling_and_headers_sent_are_the_sdks(environ, headers):
    for seed in range(4):  # new trace ids either side of a ratio's bound
        request = Request(
            headers, attempts=[("a", "connect_failed", None), ("b", "ok", 200)]
        )
        assert summary(light_spans(request, environ, seed), sdk=False) == summary(
            sdk_spans(request, environ, seed), sdk=True
        )


@pytest.mark.parametrize(
    "name, ratio",
    list(
        itertools.product(
            ["traceidratio", "parentbased_traceidratio"], [0.0, 1e-9, 0.25, 0.5, 1.0]
        )
    ),
)
def test_the_ratio_decision_is_the_sdks_at_its_bound(name, ratio):
    from opentelemetry.sdk.trace.sampling import TraceIdRatioBased

    bound = TraceIdRatioBased(ratio).bound
    sampling = Sampling(name, ratio)
    for trace_id in {0, 1, max(bound - 1, 0), bound, bound + 1, (1 << 64) - 1}:
        trace_id |= 0xABC << 64  # the high bits do not count
        expected = TraceIdRatioBased(ratio).should_sample(None, trace_id, "s")
        assert sampling.sampled(trace_id, None) is expected.decision.is_sampled()


def test_a_bad_sampler_setting_is_a_config_error():
    with pytest.raises(ConfigError, match="^OTEL_TRACES_SAMPLER: "):
        Sampling.from_env({"OTEL_TRACES_SAMPLER": "sometimes"})


def test_the_records_carry_what_the_sdk_spans_do():
    request = Request(
        {"traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01"},
        method="POST",
        path="/api/orders",
        request_id="req-9",
        attempts=[("o-1", "unavailable", 503), ("o-2", "ok", 201)],
        answer=201,
    )
    environ = {}
    light = light_spans(request, environ, 7).spans
    sdk = sdk_spans(request, environ, 7).spans
    first, second, server = light
    sdk_first, sdk_second, sdk_server = sdk
    assert sdk_server.kind is SpanKind.SERVER and sdk_first.kind is SpanKind.CLIENT
    assert (server.method, server.path, server.request_id, server.status) == (
        "POST",
        "/api/orders",
        "req-9",
        201,
    )
    assert sdk_server.attributes["http.request.header.x-request-id"] == ("req-9",)
    assert (first.instance.id, first.number, first.outcome, first.status) == (
        "o-1",
        1,
        "unavailable",
        503,
    )
    assert first.error == sdk_first.status.description == "unavailable"
    assert sdk_first.status.status_code is StatusCode.ERROR
    assert second.error is None and sdk_second.status.status_code is StatusCode.UNSET
    assert server.error is None


def test_an_exception_escaping_the_request_marks_its_span_an_error():
    request = Request({}, escapes=ValueError("boom"))
    [_, server] = light_spans(request, {}, 1).spans
    [_, sdk_server] = sdk_spans(request, {}, 1).spans
    assert server.error == sdk_server.status.description == "ValueError: boom"
    assert server.status is None  # no answer recorded


def test_a_sampled_out_request_records_nothing_and_still_sends_its_trace_on():
    recorder, ended = keeping_recorder("parentbased_always_on")
    incoming = {"traceparent": f"00-{TRACE_ID}-{PARENT_ID}-00"}
    with recorder.server_span(incoming, "GET", "/api/x", "r") as span:
        with attempt_span(Upstream("a"), 1, "GET", "/x") as attempt:
            attempt.finish("ok", 200)
        span.finish(200)
    assert ended == []
    [(name, value)] = attempt.headers
    assert name == "traceparent"
    assert value == f"00-{TRACE_ID}-{attempt.span_id:016x}-00"


def test_an_attempt_outside_a_request_span_is_refused():
    with pytest.raises(RuntimeError):
        attempt_span(Upstream("a"), 1, "GET", "/x")


def test_the_known_methods_are_those_the_services_instrumentations_know(monkeypatch):
    """The services' Flask spans say `_OTHER` by opentelemetry-util-http's list; the
    gateway's by KNOWN_METHODS: the same methods."""
    from opentelemetry.util.http import sanitize_method

    monkeypatch.delenv("OTEL_PYTHON_INSTRUMENTATION_HTTP_CAPTURE_ALL_METHODS", False)
    candidates = KNOWN_METHODS | {"PROPFIND", "PURGE", "LINK", "M-SEARCH", "FOO"}
    assert {m for m in candidates if sanitize_method(m) == m} == KNOWN_METHODS
