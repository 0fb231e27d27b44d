"""GET /health for a service: one byte-stable JSON body naming each check's result."""

import json
from collections.abc import Callable, Mapping

from flask import Flask, Response

__all__ = ["health_body", "install_health"]


def health_body(
    ok: bool, checks: Mapping[str, str], service: str | None = None
) -> tuple[bytes, int]:
    """Byte-stable health JSON: Consul stores check output, and a changing body wakes every watcher."""
    body = {"status": "ok" if ok else "unavailable", "checks": dict(checks)}
    if service is not None:
        body["service"] = service
    encoded = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    return encoded, 200 if ok else 503


def install_health(
    app: Flask, service: str, checks: Mapping[str, Callable[[], bool]]
) -> None:
    """GET /health: 200 when every check passes, else 503; the body names each check's result."""

    def health() -> Response:
        results = {
            name: "ok" if check() else "unavailable" for name, check in checks.items()
        }
        body, status = health_body(
            all(v == "ok" for v in results.values()), results, service
        )
        return Response(body, status=status, mimetype="application/json")

    app.add_url_rule("/health", "health", health, methods=["GET"])
