"""Flask helpers every Switchyard HTTP service shares: JSON errors, X-Served-By, health, bodies.

Errors always leave as `{"error": {"code": ..., "message": ..., "details": ...}}` -- never an HTML
page and never a traceback; unexpected exceptions are logged here and answered with a bare 500.
"""

import json
import logging
import os
import sys
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal

from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException

from discovery.env import ConfigError, env_int, env_str
from discovery.identity import default_advertise_address, instance_id

__all__ = [
    "APIError",
    "api_error",
    "configure_logging",
    "exec_gunicorn",
    "gunicorn_argv",
    "health_body",
    "init_service_app",
    "install_health",
    "install_openapi",
    "instance_id_from_env",
    "json_body",
    "log_level_from_env",
    "page_params",
    "require_fields",
    "validation_failed",
]

log = logging.getLogger("web")

LOG_FORMAT = "%(levelname)s %(name)s: %(message)s"
LOG_LEVELS = ("CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG")
MAX_LIMIT = 500
DEFAULT_LIMIT = 50


class APIError(Exception):
    """Raise from a view to answer with the shared error shape."""

    def __init__(
        self, status: int, code: str, message: str, details=None, headers=None
    ):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.headers = dict(headers or {})


def api_error(
    status: int, code: str, message: str, details=None, headers=None
) -> Response:
    """The error response itself, for callers that answer instead of raising."""
    body = {"error": {"code": code, "message": message, "details": details}}
    response = Response(json.dumps(body), status=status, mimetype="application/json")
    response.headers.update(headers or {})
    return response


def health_body(
    ok: bool, checks: Mapping[str, str], service: str | None = None
) -> tuple[bytes, int]:
    """Byte-stable health JSON: Consul stores check output, and a changing body wakes every watcher."""
    body = {"status": "ok" if ok else "unavailable", "checks": dict(checks)}
    if service is not None:
        body["service"] = service
    encoded = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    return encoded, 200 if ok else 503


def log_level_from_env(environ: Mapping[str, str] | None = None) -> str:
    """LOG_LEVEL (default INFO), any case: CRITICAL, ERROR, WARNING, INFO or DEBUG."""
    level = env_str("LOG_LEVEL", "INFO", environ).upper()
    if level not in LOG_LEVELS:
        raise ConfigError(
            f"LOG_LEVEL: unknown value {level!r}; valid: {', '.join(LOG_LEVELS)}"
        )
    return level


def configure_logging(level: str = "INFO") -> None:
    """`LEVEL subsystem: message` lines on stderr, unless the host process configured logging first."""
    logging.basicConfig(level=level, format=LOG_FORMAT)


def init_service_app(app: Flask, service_name: str) -> None:
    """Install JSON errors and the X-Served-By header on `app`."""
    served_by = app.config.get("INSTANCE_ID") or instance_id_from_env(service_name)
    app.config["INSTANCE_ID"] = served_by

    @app.after_request
    def add_served_by(response: Response) -> Response:
        response.headers["X-Served-By"] = served_by
        return response

    app.register_error_handler(APIError, _api_error_response)
    app.register_error_handler(HTTPException, _http_error_response)
    app.register_error_handler(Exception, _unexpected_error_response)


def instance_id_from_env(service_name: str, default_port: int = 0, environ=None) -> str:
    """`<service>-<SERVICE_ADDRESS>-<PORT>`, the id registration gives this instance in Consul."""
    host = env_str("SERVICE_ADDRESS", "", environ) or default_advertise_address()
    port = env_int("PORT", default_port, minimum=0, maximum=65535, environ=environ)
    return instance_id(service_name, host, port)


def exec_gunicorn(package: str) -> None:
    """Replace this process with gunicorn serving `<package>.wsgi:app` with its gunicorn_conf.

    `python -m <package>` then runs exactly what production runs, extra arguments passed on.
    """
    os.execv(sys.executable, [*gunicorn_argv(package), *sys.argv[1:]])


def gunicorn_argv(package: str) -> list[str]:
    """The command line that serves `<package>.wsgi:app` under gunicorn with its gunicorn_conf;
    gunicorn options may follow it."""
    return [
        sys.executable,
        "-m",
        "gunicorn",
        "-c",
        f"python:{package}.gunicorn_conf",
        f"{package}.wsgi:app",
    ]


def _api_error_response(exc: APIError) -> Response:
    return api_error(exc.status, exc.code, exc.message, exc.details, exc.headers)


def _http_error_response(exc: HTTPException) -> Response:
    # Keep werkzeug's headers that matter to clients (Allow on 405, Retry-After), drop its HTML type.
    headers = {k: v for k, v in exc.get_headers() if k.lower() != "content-type"}
    code = (exc.name or "error").lower().replace(" ", "_")
    return api_error(exc.code or 500, code, exc.description or exc.name, None, headers)


def _unexpected_error_response(exc: Exception) -> Response:
    log.error(
        "unhandled %s on %s %s",
        type(exc).__name__,
        request.method,
        request.path,
        exc_info=exc,
    )
    return api_error(500, "internal_error", "internal server error")


def _reject_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


def json_body(parse_float=Decimal) -> dict:
    """The request's JSON object, or an APIError: 415 unless JSON, 400 when malformed or not an object.

    Parses the raw bytes itself so numbers keep their exact decimal value (no float round trip),
    and NaN/Infinity -- which Python's json accepts but JSON does not -- are rejected.
    """
    is_json = request.mimetype == "application/json" or request.mimetype.endswith(
        "+json"
    )
    if not is_json:
        raise APIError(
            415, "unsupported_media_type", "Content-Type must be application/json"
        )
    raw = request.get_data(cache=True)
    try:
        value = json.loads(
            raw, parse_float=parse_float, parse_constant=_reject_constant
        )
    except (ValueError, RecursionError) as exc:
        raise APIError(
            400, "malformed_json", "request body is not valid JSON", {"body": str(exc)}
        ) from None
    if not isinstance(value, dict):
        raise APIError(
            400,
            "validation_failed",
            "request body must be a JSON object",
            {"body": "expected an object"},
        )
    return value


def page_params(args: Mapping[str, str] | None = None) -> tuple[int, int]:
    """(`limit`, `offset`) from the query string: limit 1..500 (default 50), offset >= 0."""
    args = request.args if args is None else args
    problems = {}
    limit = _int_param(args, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT, problems)
    offset = _int_param(args, "offset", 0, 0, 2**62, problems)
    if problems:
        raise APIError(400, "validation_failed", "invalid query parameters", problems)
    return limit, offset


def _int_param(
    args: Mapping[str, str],
    name: str,
    default: int,
    low: int,
    high: int,
    problems: dict,
) -> int:
    raw = args.get(name)
    if raw is None:
        return default
    if raw.isascii() and raw.isdigit() and len(raw) <= 19 and low <= int(raw) <= high:
        return int(raw)
    problems[name] = f"must be an integer from {low} to {high}"
    return default


def require_fields(
    payload: Mapping, required: Iterable[str], allowed: Iterable[str]
) -> dict[str, str]:
    """Problems with the field set of a request object: each unknown field and each missing one."""
    allowed = set(allowed)
    problems = {name: "unknown field" for name in payload if name not in allowed}
    problems.update({name: "required" for name in required if name not in payload})
    return problems


def validation_failed(problems: Mapping[str, str]) -> APIError:
    return APIError(
        400, "validation_failed", "request is invalid", dict(sorted(problems.items()))
    )


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


def install_openapi(app: Flask, document: Mapping) -> None:
    """GET /openapi.json serving the service's hand-written OpenAPI document."""
    body = json.dumps(document, sort_keys=True)
    app.add_url_rule(
        "/openapi.json",
        "openapi",
        lambda: Response(body, mimetype="application/json"),
        methods=["GET"],
    )
