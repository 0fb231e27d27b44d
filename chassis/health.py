"""GET /health for a service: one byte-stable JSON body naming each check's result.

A check answers True ("ok"), False ("unavailable") or one of the words in CHECK_RESULTS.
"stale" is for a dependency the service still serves with on what it last knew (Consul
away): the service stays in rotation (200) and says so ("degraded").
"""

import json
from collections.abc import Callable, Mapping

from flask import Flask, Response

__all__ = ["CHECK_RESULTS", "health_body", "install_health"]

CHECK_RESULTS = ("ok", "stale", "unavailable")


def health_body(
    ok: bool, checks: Mapping[str, str], service: str | None = None
) -> tuple[bytes, int]:
    """Byte-stable health JSON: Consul stores check output, and a changing body wakes every watcher."""
    status = "ok" if ok else "unavailable"
    if ok and any(result != "ok" for result in checks.values()):
        status = "degraded"
    body = {"status": status, "checks": dict(checks)}
    if service is not None:
        body["service"] = service
    encoded = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    return encoded, 200 if ok else 503


def install_health(
    app: Flask, service: str, checks: Mapping[str, Callable[[], bool | str]]
) -> None:
    """GET /health: 200 unless a check is unavailable, then 503; the body names each result."""

    def health() -> Response:
        results = {name: check_result(check()) for name, check in checks.items()}
        body, status = health_body(
            all(v != "unavailable" for v in results.values()), results, service
        )
        return Response(body, status=status, mimetype="application/json")

    app.add_url_rule("/health", "health", health, methods=["GET"])


def check_result(value: bool | str) -> str:
    if isinstance(value, bool):
        return "ok" if value else "unavailable"
    if value not in CHECK_RESULTS:
        raise ValueError(f"a health check answered {value!r}; expected {CHECK_RESULTS}")
    return value
