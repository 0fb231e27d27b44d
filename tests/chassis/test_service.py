from dataclasses import dataclass
from functools import partial

import pytest
from flask import Blueprint
from flask_sqlalchemy import SQLAlchemy
from werkzeug.middleware.proxy_fix import ProxyFix

from chassis.env import ConfigError, env_str
from chassis.openapi import openapi_document
from chassis.service import ForwardedPrefix, ServiceSettings, create_service_app
from tests.support.services import dispose


@dataclass(frozen=True)
class DemoSettings(ServiceSettings):
    service_name = "demo-service"
    default_port = 8009

    colour: str = "blue"

    @classmethod
    def fields_from_env(cls, environ):
        return {
            **super().fields_from_env(environ),
            "colour": env_str("COLOUR", "blue", environ),
        }


def test_settings_from_env_defaults(tmp_path):
    settings = DemoSettings.from_env(
        {"DATA_DIR": str(tmp_path), "SERVICE_ADDRESS": "h"}
    )
    assert settings == DemoSettings(
        database_url=f"sqlite:///{tmp_path}/demo-service.db",
        instance_id="demo-service-h-8009",
    )
    assert (settings.log_level, settings.max_body_bytes) == ("INFO", 1024 * 1024)


def test_settings_a_service_adds_are_read_too(tmp_path):
    env = {"DATA_DIR": str(tmp_path), "COLOUR": "red", "LOG_LEVEL": "debug"}
    settings = DemoSettings.from_env(env)
    assert (settings.colour, settings.log_level) == ("red", "DEBUG")


@pytest.mark.parametrize(
    ("name", "value"), [("MAX_BODY_BYTES", "1"), ("PORT", "x"), ("LOG_LEVEL", "loud")]
)
def test_bad_values_name_the_variable(tmp_path, name, value):
    with pytest.raises(ConfigError, match=f"^{name}: "):
        DemoSettings.from_env({"DATA_DIR": str(tmp_path), name: value})


@pytest.fixture
def app(tmp_path):
    db = SQLAlchemy()
    things = Blueprint("things", __name__, url_prefix="/things")
    things.get("")(lambda: {"things": []})
    document = openapi_document("demo-service", "Demo.", {}, {})
    settings = DemoSettings(
        database_url=f"sqlite:///{tmp_path}/d.db", instance_id="demo-1"
    )
    app = create_service_app(__name__, settings, db, things, document)
    yield app
    dispose(app, db)


def test_app_serves_its_blueprint_health_and_document(app):
    client = app.test_client()
    assert client.get("/things").json == {"things": []}
    health = client.get("/health")
    assert (health.status_code, health.json["checks"]) == (200, {"database": "ok"})
    assert client.get("/openapi.json").json["info"]["title"] == "demo-service"
    assert health.headers["X-Served-By"] == "demo-1"


def test_app_answers_json_and_serves_no_static_files(app):
    response = app.test_client().get("/static/x.css")
    assert (response.status_code, response.mimetype) == (404, "application/json")
    assert app.config["MAX_CONTENT_LENGTH"] == 1024 * 1024


@pytest.mark.parametrize(
    ("header", "script_name"),
    [
        (None, "/mounted"),
        ("/api", "/api"),
        ("/outer, /api", "/api"),  # the last proxy's
        ("/api, ", "/api"),
        ("", "/mounted"),
        (",", "/mounted"),
    ],
)
def test_the_forwarded_prefix_becomes_the_script_name_as_with_proxy_fix(
    header, script_name
):
    """What werkzeug's ProxyFix(x_prefix=1) made of it, without its per-request copy."""
    results = []
    for middleware in (
        ForwardedPrefix,
        partial(ProxyFix, x_for=0, x_proto=0, x_prefix=1),
    ):
        environ = {"SCRIPT_NAME": "/mounted", "REMOTE_ADDR": "10.0.0.1"}
        if header is not None:
            environ["HTTP_X_FORWARDED_PREFIX"] = header
        seen = {}
        middleware(lambda e, _start, seen=seen: seen.update(e) or [])(environ, None)
        results.append((seen["SCRIPT_NAME"], seen["REMOTE_ADDR"]))
    assert results == [(script_name, "10.0.0.1")] * 2
