"""What every Switchyard domain service is made of: settings read from the environment and an
app with JSON errors, X-Served-By, a database, /health and /openapi.json around its blueprint.

A service subclasses ServiceSettings (naming itself and its default port, adding its own
fields) and builds its app with create_service_app, adding only what is its own.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Self

from flask import Blueprint, Flask
from flask_sqlalchemy import SQLAlchemy
from werkzeug.http import parse_list_header
from werkzeug.routing import IntegerConverter

from chassis.env import env_float, env_int
from chassis.health import install_health
from chassis.identity import instance_id_from_env, service_version_from_env
from chassis.logs import configure_logging, log_level_from_env
from chassis.openapi import install_openapi
from chassis.responses import init_service_app
from chassis.storage import (
    IDLE_TRANSACTION_TIMEOUT_S,
    database_url_from_env,
    init_database,
    ping,
)
from chassis.tracing import instrument_service_app

__all__ = ["ServiceSettings", "create_service_app"]


@dataclass(frozen=True)
class ServiceSettings:
    """The settings every service has; checked when read, with an error naming the variable."""

    service_name: ClassVar[str]
    default_port: ClassVar[int]

    database_url: str
    # seconds a PostgreSQL session may idle inside a transaction (chassis.storage)
    idle_transaction_timeout: float = IDLE_TRANSACTION_TIMEOUT_S
    log_level: str = "INFO"
    max_body_bytes: int = 1024 * 1024
    # None: `<name>-<SERVICE_ADDRESS>-<PORT>` at app creation
    instance_id: str | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Self:
        return cls(**cls.fields_from_env(environ))

    @classmethod
    def fields_from_env(cls, environ: Mapping[str, str] | None) -> dict[str, Any]:
        """The fields' values from the environment; a service with more fields extends this."""
        return {
            "database_url": database_url_from_env(cls.service_name, environ),
            "idle_transaction_timeout": env_float(
                "DATABASE_IDLE_TRANSACTION_TIMEOUT",
                IDLE_TRANSACTION_TIMEOUT_S,
                minimum=0.0,
                environ=environ,
            ),
            "log_level": log_level_from_env(environ),
            "max_body_bytes": env_int(
                "MAX_BODY_BYTES", 1024 * 1024, minimum=1024, environ=environ
            ),
            "instance_id": instance_id_from_env(
                cls.service_name, cls.default_port, environ
            ),
        }


class ForwardedPrefix:
    """WSGI middleware: behind the gateway (X-Forwarded-Prefix: /api) url_for, and so every
    Location header, must name the path the client used. Only the prefix is trusted (the
    last one, as werkzeug's ProxyFix(x_prefix=1) reads it): the remote address and scheme
    stay as they are. ProxyFix itself also copies the original environ on every request,
    which no one here reads."""

    def __init__(self, wsgi_app):
        self.wsgi_app = wsgi_app

    def __call__(self, environ, start_response):
        prefix = environ.get("HTTP_X_FORWARDED_PREFIX")
        if prefix and (values := parse_list_header(prefix)) and values[-1]:
            environ["SCRIPT_NAME"] = values[-1]
        return self.wsgi_app(environ, start_response)


class AsciiInteger(IntegerConverter):
    """`<int:...>` takes ASCII digits only. Werkzeug's `\\d+` also matches other scripts'
    digits, which int() reads: /users/ followed by U+FF11 (a full-width 1) was user 1."""

    regex = r"[0-9]+"


def create_service_app(
    import_name: str,
    settings: ServiceSettings,
    db: SQLAlchemy,
    blueprint: Blueprint,
    document: Mapping,
    checks: Mapping[str, Callable[[], bool | str]] | None = None,
) -> Flask:
    """The service's app; creates missing tables. Registration with Consul is not done here.

    /health checks the database, plus `checks` (see chassis.health)."""
    configure_logging(settings.log_level)
    app = Flask(import_name, static_folder=None)  # an API: no static files
    app.url_map.converters["int"] = AsciiInteger  # before the blueprint's rules use it
    app.wsgi_app = ForwardedPrefix(app.wsgi_app)
    app.config.update(
        MAX_CONTENT_LENGTH=settings.max_body_bytes, INSTANCE_ID=settings.instance_id
    )
    init_service_app(app, settings.service_name)
    init_database(app, db, settings.database_url, settings.idle_transaction_timeout)
    app.register_blueprint(blueprint)
    install_health(
        app, settings.service_name, {"database": lambda: ping(db), **(checks or {})}
    )
    install_openapi(app, document)
    # Tracing on (OTEL_EXPORTER_OTLP_ENDPOINT): server, outgoing and database spans.
    instrument_service_app(app, db, settings.service_name, service_version_from_env())
    return app
