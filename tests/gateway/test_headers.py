import re

import pytest
from opentelemetry.trace import get_current_span
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from gateway.headers import (
    downstream_response_headers,
    end_to_end,
    request_id,
    traceparent,
    upstream_request_headers,
)

TRACE = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


@pytest.mark.parametrize(
    ("headers", "kept"),
    [
        ([("Accept", "a/b"), ("Connection", "keep-alive")], ["Accept"]),
        (
            [("Connection", "close, X-Secret"), ("X-Secret", "1"), ("X-Ok", "1")],
            ["X-Ok"],
        ),
        ([("Keep-Alive", "5"), ("TE", "trailers"), ("Trailer", "X")], []),
        ([("Transfer-Encoding", "chunked"), ("Upgrade", "h2c")], []),
        (
            [("Proxy-Authorization", "x"), ("Proxy-Foo", "y"), ("Authorization", "z")],
            ["Authorization"],
        ),
        ([("Cookie", "a=1"), ("Idempotency-Key", "k")], ["Cookie", "Idempotency-Key"]),
    ],
)
def test_hop_by_hop_headers_are_stripped(headers, kept):
    assert [name for name, _ in end_to_end(headers)] == kept


@pytest.mark.parametrize(
    ("incoming", "kept"),
    [
        ("abc-123", True),
        ("a" * 128, True),
        ("a" * 129, False),
        ("x y", False),
        ("", False),
        (None, False),
    ],
)
def test_request_id_kept_only_when_sane(incoming, kept):
    rid = request_id(incoming)
    assert (rid == incoming) is kept
    assert re.fullmatch(r"[A-Za-z0-9._:-]+", rid)


def sent_on(lines) -> str:
    """traceparent() of a request of these header lines."""
    return traceparent({name.lower(): value for name, value in lines}, lines)


def sent_for(incoming: str | None) -> str:
    """traceparent() of a request with this one traceparent, or none."""
    return sent_on([] if incoming is None else [("traceparent", incoming)])


@pytest.mark.parametrize(
    ("incoming", "same_trace"),
    [
        (TRACE, True),
        ("00-00000000000000000000000000000000-00f067aa0ba902b7-01", False),
        ("4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", False),
        ("00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", False),
        ("ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", False),
        ("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x", False),
        # W3C: a later version is read as version 00, its extra fields ignored.
        ("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", True),
        ("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x", True),
        ("garbage", False),
        (None, False),
    ],
)
def test_traceparent_keeps_the_trace_and_makes_a_new_span(incoming, same_trace):
    out = sent_for(incoming)
    assert re.fullmatch(r"00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}", out)
    assert (out.split("-")[1] == TRACE.split("-")[1]) is same_trace
    assert out.split("-")[2] != "00f067aa0ba902b7"


@pytest.mark.parametrize(
    "incoming",
    [
        TRACE,
        f" {TRACE}\t",
        TRACE.upper(),
        TRACE[:-2] + "00",
        "01" + TRACE[2:] + "-future",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
        "ff" + TRACE[2:],
        TRACE + "-extra",
        "00-xyz-abc-01",
    ],
)
def test_traceparent_continues_a_trace_exactly_when_the_sdk_does(incoming):
    # Untraced, the gateway must keep the same traces as the traced gateway and the
    # services, which read traceparent with the SDK's propagator.
    context = TraceContextTextMapPropagator().extract({"traceparent": incoming})
    parent = get_current_span(context).get_span_context()
    continued = sent_for(incoming).split("-")[1] == f"{parent.trace_id:032x}"
    assert continued is parent.is_valid


@pytest.mark.parametrize(
    "second", [TRACE, "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"]
)
def test_two_traceparent_lines_are_no_parent_and_start_a_new_trace(second):
    """W3C Trace Context's test suite (test_traceparent_duplicated): a request with two
    traceparent headers gets a new trace id, neither of theirs -- as the services do."""
    lines = [("traceparent", TRACE), ("Accept", "*/*"), ("TraceParent", second)]
    out = sent_on(lines)
    assert out.split("-")[1] not in (TRACE.split("-")[1], second.split("-")[1])
    sent = upstream_request_headers(
        [*lines, ("tracestate", "a=1")],
        client_addr="10.0.0.9",
        scheme="http",
        request_id="rid",
        traceparent=out,
    )
    assert [n for n, _ in sent if n.lower() == "tracestate"] == []  # another trace's


@pytest.mark.parametrize(
    ("incoming", "states_sent"),
    [
        # continued: every tracestate line goes on, in order
        ({"traceparent": TRACE}, [("tracestate", "a=1"), ("TraceState", "b=2")]),
        (
            {"traceparent": "01" + TRACE[2:] + "-future"},
            [("tracestate", "a=1"), ("TraceState", "b=2")],
        ),
        # a new trace: the client's tracestate describes another one (W3C: discarded)
        ({}, []),
        ({"traceparent": "garbage"}, []),
        ({"traceparent": TRACE.upper()}, []),
    ],
    ids=["valid", "later-version", "none", "malformed", "upper-case"],
)
def test_untraced_the_client_s_tracestate_goes_on_only_with_its_trace(
    incoming, states_sent
):
    headers = [
        ("tracestate", "a=1"),
        *incoming.items(),
        ("Accept", "*/*"),
        ("TraceState", "b=2"),
    ]
    sent = upstream_request_headers(
        headers,
        client_addr="10.0.0.9",
        scheme="http",
        request_id="rid",
        traceparent=sent_on(headers),
    )
    assert [(n, v) for n, v in sent if n.lower() == "tracestate"] == states_sent


def _upstream(headers, trust=False):
    return dict(
        upstream_request_headers(
            headers,
            client_addr="10.0.0.9",
            scheme="http",
            request_id="rid",
            traceparent=TRACE,
            trust_forwarded=trust,
        )
    )


def test_upstream_headers_set_forwarding_and_identity():
    out = _upstream(
        [
            ("Host", "gw.example:8000"),
            ("Content-Length", "3"),
            ("Expect", "100-continue"),
            ("X-Request-ID", "client"),
            ("X-Forwarded-For", "6.6.6.6"),
            ("X-Forwarded-Host", "spoofed"),
            ("Accept", "application/json"),
        ]
    )
    assert out == {
        "Accept": "application/json",
        "X-Forwarded-For": "10.0.0.9",
        "X-Forwarded-Proto": "http",
        "X-Forwarded-Prefix": "/api",
        "X-Forwarded-Host": "gw.example:8000",
        "X-Request-ID": "rid",
        "traceparent": TRACE,
    }


def test_trusted_forwarding_headers_are_extended():
    out = _upstream(
        [
            ("Host", "gw"),
            ("X-Forwarded-For", "1.2.3.4"),
            ("X-Forwarded-Proto", "https"),
        ],
        trust=True,
    )
    assert out["X-Forwarded-For"] == "1.2.3.4, 10.0.0.9"
    assert out["X-Forwarded-Proto"] == "https"


def test_a_host_that_is_not_a_host_is_not_forwarded():
    assert "X-Forwarded-Host" not in _upstream([("Host", "evil<script>")])


def test_response_headers_lose_hop_by_hop_and_server_set_ones():
    headers = [
        ("Content-Type", "text/plain"),
        ("X-Served-By", "svc-1"),
        ("Connection", "close"),
        ("Transfer-Encoding", "chunked"),
        ("Date", "x"),
        ("Server", "y"),
        ("Set-Cookie", "a=1"),
        ("Set-Cookie", "b=2"),
    ]
    assert downstream_response_headers(headers) == [
        ("Content-Type", "text/plain"),
        ("X-Served-By", "svc-1"),
        ("Set-Cookie", "a=1"),
        ("Set-Cookie", "b=2"),
    ]
