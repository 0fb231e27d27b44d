"""What every response of a Switchyard service carries: the JSON error shape and X-Served-By.

Errors always leave as `{"error": {"code": ..., "message": ..., "details": ...}}` -- never an HTML
page and never a traceback; unexpected exceptions are logged here and answered with a bare 500.
"""

import json
import logging

from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException

from chassis.errors import APIError
from chassis.identity import instance_id_from_env

__all__ = [
    "ServedBy",
    "ServiceResponse",
    "api_error",
    "init_service_app",
    "unexpected_error_response",
]

log = logging.getLogger("web")


def api_error(
    status: int, code: str, message: str, details=None, headers=None
) -> Response:
    """The error response itself, for callers that answer instead of raising."""
    body = {"error": {"code": code, "message": message, "details": details}}
    response = Response(json.dumps(body), status=status, mimetype="application/json")
    response.headers.update(headers or {})
    return response


class ServiceResponse(Response):
    """A response names a type only when it has a body of one: Flask's default, text/html,
    went out on a JSON API's 204s and on its automatic answers to OPTIONS."""

    default_mimetype = None


def init_service_app(app: Flask, service_name: str) -> None:
    """Install JSON errors and the X-Served-By header on `app`."""
    app.response_class = ServiceResponse
    served_by = app.config.get("INSTANCE_ID") or instance_id_from_env(service_name)
    app.config["INSTANCE_ID"] = served_by
    app.wsgi_app = ServedBy(app.wsgi_app, served_by)
    app.register_error_handler(APIError, _api_error_response)
    app.register_error_handler(HTTPException, _http_error_response)
    app.register_error_handler(Exception, unexpected_error_response)


class ServedBy:
    """WSGI middleware adding `X-Served-By` to every response the app makes, error pages
    included. Here rather than in an after_request hook: Flask's hooks cost a GET more
    than the header does (each is looked up and checked for being a coroutine per request).
    """

    def __init__(self, wsgi_app, served_by: str):
        self.wsgi_app = wsgi_app
        self.header = ("X-Served-By", served_by)

    def __call__(self, environ, start_response):
        def start_served(status, headers, exc_info=None):
            headers.append(self.header)
            return start_response(status, headers, exc_info)

        return self.wsgi_app(environ, start_served)


def _api_error_response(exc: APIError) -> Response:
    return api_error(exc.status, exc.code, exc.message, exc.details, exc.headers)


def _http_error_response(exc: HTTPException) -> Response:
    # Keep werkzeug's headers that matter to clients (Allow on 405, Retry-After), drop its HTML type.
    headers = {k: v for k, v in exc.get_headers() if k.lower() != "content-type"}
    if "Allow" in headers:  # werkzeug lists the methods in a set's order: one order
        headers["Allow"] = ", ".join(sorted(headers["Allow"].split(", ")))
    code = (exc.name or "error").lower().replace(" ", "_")
    return api_error(exc.code or 500, code, exc.description or exc.name, None, headers)


def unexpected_error_response(exc: Exception) -> Response:
    log.error(
        "unhandled %s on %s %s",
        type(exc).__name__,
        request.method,
        request.path,
        exc_info=exc,
    )
    return api_error(500, "internal_error", "internal server error")
