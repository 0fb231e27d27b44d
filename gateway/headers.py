"""Header rules of the proxy: hop-by-hop stripping, forwarding headers, request identity.

Pure functions over lists of (name, value) pairs so they are table-tested without a server.
"""

import re
from collections.abc import Iterable, Mapping, Sequence
from random import getrandbits

from chassis.spans import parse_traceparent, sole_traceparent
from gateway.paths import API_PREFIX

__all__ = [
    "HOP_BY_HOP",
    "downstream_response_headers",
    "end_to_end",
    "request_id",
    "traceparent",
    "upstream_request_headers",
]

HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
# Set by the gateway itself or by the server in front of the client; never taken verbatim.
_REPLACED_REQUEST = frozenset(
    {
        "host",
        "content-length",
        "expect",  # the gateway answers 100-continue itself, as it reads the body
        "x-request-id",
        "traceparent",
        "tracestate",  # the client's, passed on only with its trace (W3C)
        "x-gateway-debug",
    }
)
# The client's own forwarding headers: replaced, or extended when trusted.
_FORWARDED = frozenset(
    {"x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "x-forwarded-prefix"}
)
# The gateway's server writes its own Date; the upstream's Server is not the client's business.
_REPLACED_RESPONSE = frozenset({"date", "server"})

_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_HOST = re.compile(r"[A-Za-z0-9.:\[\]-]{1,255}")


def _end_to_end(
    headers: Iterable[tuple[str, str]], drop: frozenset[str] = frozenset()
) -> list[tuple[str, str, str]]:
    """(lower-cased name, name, value) of the headers `end_to_end` keeps, less those named
    in `drop`, in one pass: each name is lower-cased once, the callers match on it."""
    kept, named = [], None
    for name, value in headers:
        lower = name.lower()
        if lower in HOP_BY_HOP or lower.startswith("proxy-"):
            if lower == "connection":  # it may name more (all its lines count)
                for token in value.lower().split(","):
                    token = token.strip()
                    # Nearly always `keep-alive`, dropped anyway: no second pass.
                    if token not in HOP_BY_HOP:
                        named = named or set()
                        named.add(token)
        elif lower not in drop:
            kept.append((lower, name, value))
    if named:
        kept = [item for item in kept if item[0] not in named]
    return kept


def end_to_end(headers: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """Drop hop-by-hop headers: the fixed list, `Proxy-*`, and those `Connection` names."""
    return [(name, value) for _, name, value in _end_to_end(headers)]


def _random_hex128() -> str:
    """Identifiers, not secrets: the `random` generator (reseeded in each forked worker)
    makes them without a getrandom syscall, which would release the GIL on every request."""
    return getrandbits(128).to_bytes(16, "big").hex()  # faster than a format spec


def request_id(incoming: str | None) -> str:
    """The client's X-Request-ID when it is a sane token, else 128 fresh random bits in hex."""
    if incoming and _REQUEST_ID.fullmatch(incoming):
        return incoming
    return _random_hex128()


def traceparent(names: Mapping[str, str], lines: Sequence[tuple[str, str]]) -> str:
    """W3C traceparent for the upstream hop of a request (its header `names` and `lines`,
    as gateway.messages.Request has them): same trace, a new span id for the gateway.
    A trace is continued exactly when the traced gateway would continue it."""
    parsed = parse_traceparent(sole_traceparent(names, lines))
    if parsed is None:
        trace_id, flags = _random_hex128(), "01"
    else:
        trace_id, _, flags = parsed
    return f"00-{trace_id}-{getrandbits(64).to_bytes(8, 'big').hex()}-{flags}"


def _same_trace(headers: Sequence[tuple[str, str]], sent: str) -> bool:
    """Whether the traceparent `sent` continues the one in the client's `headers` (the
    last, as the server keeps it). Only asked when a tracestate came: rarely."""
    incoming = None
    for name, value in headers:
        if name.lower() == "traceparent":
            incoming = value
    parsed = parse_traceparent(incoming)
    return parsed is not None and parsed[0] == sent[3:35]


def upstream_request_headers(
    headers: Sequence[tuple[str, str]],
    *,
    client_addr: str,
    scheme: str,
    request_id: str,
    traceparent: str | None,
    trust_forwarded: bool = False,
) -> list[tuple[str, str]]:
    """End-to-end request headers plus the gateway's X-Forwarded-*, X-Request-ID, traceparent.

    `traceparent` None: the request is traced, and neither traceparent nor the client's
    tracestate is passed on -- each attempt adds its own span's (gateway.proxy). Untraced,
    the client's tracestate goes on with `traceparent` when that continues the client's
    trace; a new trace drops it, as W3C Trace Context asks (it describes another trace)."""
    kept, host, prior, states = [], "", {}, []
    for lower, name, value in _end_to_end(headers):
        if lower == "host":
            host = value
        if lower in _FORWARDED:
            prior.setdefault(lower, value)
        elif lower not in _REPLACED_REQUEST:
            kept.append((name, value))
        elif lower == "tracestate":
            states.append((name, value))
    forwarded_for = client_addr
    if trust_forwarded and prior.get("x-forwarded-for"):
        forwarded_for = f"{prior['x-forwarded-for']}, {client_addr}"
    if trust_forwarded:
        scheme = prior.get("x-forwarded-proto", scheme)
        host = prior.get("x-forwarded-host", host)
    kept += [
        ("X-Forwarded-For", forwarded_for),
        ("X-Forwarded-Proto", scheme),
        ("X-Forwarded-Prefix", API_PREFIX),
        ("X-Request-ID", request_id),
    ]
    if traceparent:
        kept.append(("traceparent", traceparent))
        if states and _same_trace(headers, traceparent):
            kept += states
    if _HOST.fullmatch(host):
        kept.append(("X-Forwarded-Host", host))
    return kept


def downstream_response_headers(
    headers: Iterable[tuple[str, str]],
) -> list[tuple[str, str]]:
    """The upstream's end-to-end response headers, minus those the server sets itself."""
    return [
        (name, value) for _, name, value in _end_to_end(headers, _REPLACED_RESPONSE)
    ]
