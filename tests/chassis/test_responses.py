import json
import logging
from decimal import Decimal

import pytest
from flask import Flask, request

from discovery.env import ConfigError
from discovery.web import (
    APIError,
    health_body,
    init_service_app,
    install_health,
    instance_id_from_env,
    json_body,
    log_level_from_env,
    page_params,
    require_fields,
)

SERVED_BY = "svc-10.0.0.5-8080"


@pytest.fixture
def app():
    app = Flask(__name__, static_folder=None)
    app.config.update(INSTANCE_ID=SERVED_BY, MAX_CONTENT_LENGTH=8192)
    init_service_app(app, "svc")

    @app.get("/ok")
    def ok():
        return {"ok": True}

    @app.get("/boom")
    def boom():
        raise RuntimeError("password=hunter2 in /srv/secret.py")

    @app.get("/teapot")
    def teapot():
        raise APIError(
            418, "teapot", "short and stout", {"spout": "here"}, {"Retry-After": "7"}
        )

    @app.post("/body")
    def body():
        return {"parsed": repr(json_body())}

    @app.post("/werkzeug-json")
    def werkzeug_json():
        return request.get_json()

    @app.get("/page")
    def page():
        return dict(zip(("limit", "offset"), page_params(), strict=True))

    install_health(
        app,
        "svc",
        {
            "database": lambda: True,
            "cache": lambda: request.args.get("cache") != "down",
        },
    )
    return app


@pytest.fixture
def client(app):
    return app.test_client()


def error_of(response, status):
    assert response.status_code == status
    assert response.mimetype == "application/json"
    assert response.headers["X-Served-By"] == SERVED_BY
    assert set(response.json) == {"error"}
    assert set(response.json["error"]) == {"code", "message", "details"}
    return response.json["error"]


def test_success_carries_x_served_by(client):
    response = client.get("/ok")
    assert (response.status_code, response.headers["X-Served-By"]) == (200, SERVED_BY)


def test_unhandled_exception_is_a_bare_500_and_is_logged(client, caplog):
    with caplog.at_level(logging.ERROR, logger="web"):
        response = client.get("/boom")
    assert error_of(response, 500) == {
        "code": "internal_error",
        "message": "internal server error",
        "details": None,
    }
    assert b"hunter2" not in response.data and b"secret.py" not in response.data
    [record] = caplog.records
    assert (
        record.levelname == "ERROR"
        and "RuntimeError" in record.getMessage()
        and record.exc_info
    )


def test_api_error_keeps_status_code_details_and_headers(client):
    response = client.get("/teapot")
    assert error_of(response, 418) == {
        "code": "teapot",
        "message": "short and stout",
        "details": {"spout": "here"},
    }
    assert response.headers["Retry-After"] == "7"


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status", "code"),
    [
        ("get", "/missing", {}, 404, "not_found"),
        ("delete", "/ok", {}, 405, "method_not_allowed"),
        (
            "post",
            "/body",
            {"data": b"{}" + b" " * 9000, "content_type": "application/json"},
            413,
            "request_entity_too_large",
        ),
        (
            "post",
            "/werkzeug-json",
            {"data": b"{", "content_type": "application/json"},
            400,
            "bad_request",
        ),
        (
            "post",
            "/werkzeug-json",
            {"data": b"{}", "content_type": "text/plain"},
            415,
            "unsupported_media_type",
        ),
    ],
)
def test_werkzeug_errors_are_json(client, method, path, kwargs, status, code):
    response = getattr(client, method)(path, **kwargs)
    assert error_of(response, status)["code"] == code
    assert b"<html" not in response.data.lower()


def test_405_keeps_the_allow_header(client):
    assert "GET" in client.delete("/ok").headers["Allow"]


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"SERVICE_ADDRESS": "10.1.2.3", "PORT": "9000"}, "svc-10.1.2.3-9000"),
        ({"SERVICE_ADDRESS": "10.1.2.3"}, "svc-10.1.2.3-8001"),
    ],
)
def test_instance_id_from_env(env, expected):
    assert instance_id_from_env("svc", 8001, env) == expected


def test_instance_id_from_env_when_config_has_none(monkeypatch):
    monkeypatch.setenv("SERVICE_ADDRESS", "192.0.2.7")
    monkeypatch.setenv("PORT", "7000")
    app = Flask(__name__, static_folder=None)
    init_service_app(app, "svc")
    assert (
        app.test_client().get("/nothing").headers["X-Served-By"] == "svc-192.0.2.7-7000"
    )


@pytest.mark.parametrize(
    ("ok", "checks", "service", "body", "status"),
    [
        (
            True,
            {"database": "ok"},
            "svc",
            b'{"checks":{"database":"ok"},"service":"svc","status":"ok"}',
            200,
        ),
        (
            False,
            {"db": "unavailable", "a": "ok"},
            None,
            b'{"checks":{"a":"ok","db":"unavailable"},"status":"unavailable"}',
            503,
        ),
    ],
)
def test_health_body_is_byte_stable(ok, checks, service, body, status):
    assert health_body(ok, checks, service) == (body, status)
    assert health_body(ok, dict(reversed(checks.items())), service) == (body, status)


def test_install_health_reports_each_check(client):
    healthy = client.get("/health")
    assert (healthy.status_code, healthy.json["checks"]) == (
        200,
        {"cache": "ok", "database": "ok"},
    )
    assert client.get("/health").data == healthy.data  # byte-stable across calls
    sick = client.get("/health?cache=down")
    assert (sick.status_code, sick.json["status"], sick.json["checks"]["cache"]) == (
        503,
        "unavailable",
        "unavailable",
    )
    assert sick.headers["X-Served-By"] == SERVED_BY


@pytest.mark.parametrize(
    ("body", "content_type", "parsed"),
    [
        (b'{"a": 0.1}', "application/json", {"a": Decimal("0.1")}),
        (
            b'{"a": 12345678901234567890.12}',
            "application/json",
            {"a": Decimal("12345678901234567890.12")},
        ),
        (b'{"a": 1}', "application/json; charset=utf-8", {"a": 1}),
        (b'{"a": "x"}', "application/merge-patch+json", {"a": "x"}),
    ],
)
def test_json_body_parses_numbers_exactly(client, body, content_type, parsed):
    response = client.post("/body", data=body, content_type=content_type)
    assert response.json == {"parsed": repr(parsed)}


@pytest.mark.parametrize(
    ("body", "content_type", "status", "code"),
    [
        (b'{"a": 1}', "text/plain", 415, "unsupported_media_type"),
        (b'{"a": 1}', "", 415, "unsupported_media_type"),
        (b"{", "application/json", 400, "malformed_json"),
        (b'{"a": NaN}', "application/json", 400, "malformed_json"),
        (b'{"a": -Infinity}', "application/json", 400, "malformed_json"),
        (b'{"a": ' + b"9" * 5000 + b"}", "application/json", 400, "malformed_json"),
        (b"[" * 3000 + b"]" * 3000, "application/json", 400, "malformed_json"),
        (b"\xc3\x28", "application/json", 400, "malformed_json"),
        (b"[1]", "application/json", 400, "validation_failed"),
        (b"null", "application/json", 400, "validation_failed"),
    ],
)
def test_json_body_rejections(client, body, content_type, status, code):
    response = client.post(
        "/body",
        data=body,
        headers={"Content-Type": content_type} if content_type else {},
    )
    assert error_of(response, status)["code"] == code


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", (50, 0)),
        ("?limit=1", (1, 0)),
        ("?limit=500&offset=7", (500, 7)),
        ("?offset=0", (50, 0)),
    ],
)
def test_page_params(client, query, expected):
    assert client.get(f"/page{query}").json == dict(
        zip(("limit", "offset"), expected, strict=True)
    )


@pytest.mark.parametrize(
    ("query", "bad"),
    [
        ("?limit=0", {"limit"}),
        ("?limit=501", {"limit"}),
        ("?limit=%EF%BC%91", {"limit"}),  # a full-width digit: isdigit() but not ASCII
        ("?limit=-1&offset=x", {"limit", "offset"}),
        ("?offset=99999999999999999999999", {"offset"}),
        ("?limit=", {"limit"}),
    ],
)
def test_page_params_errors_name_each_parameter(client, query, bad):
    assert set(error_of(client.get(f"/page{query}"), 400)["details"]) == bad


@pytest.mark.parametrize(
    ("payload", "required", "allowed", "problems"),
    [
        ({"a": 1}, ["a"], ["a"], {}),
        ({}, ["a", "b"], ["a", "b"], {"a": "required", "b": "required"}),
        ({"a": 1, "z": 2}, [], ["a"], {"z": "unknown field"}),
        ({"z": 2}, ["a"], ["a"], {"a": "required", "z": "unknown field"}),
    ],
)
def test_require_fields(payload, required, allowed, problems):
    assert require_fields(payload, required, allowed) == problems


def test_error_body_is_plain_json(client):
    assert json.loads(client.get("/missing").data)["error"]["details"] is None


@pytest.mark.parametrize(
    ("env", "level"),
    [
        ({}, "INFO"),
        ({"LOG_LEVEL": "debug"}, "DEBUG"),
        ({"LOG_LEVEL": " Warning "}, "WARNING"),
    ],
)
def test_log_level_from_env_any_case(env, level):
    assert log_level_from_env(env) == level


def test_unknown_log_level_names_the_variable():
    with pytest.raises(ConfigError, match="^LOG_LEVEL: "):
        log_level_from_env({"LOG_LEVEL": "loud"})
