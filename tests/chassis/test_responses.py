import json
import logging

import pytest

from tests.chassis.conftest import SERVED_BY
from tests.chassis.webapp import error_of


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


def test_error_body_is_plain_json(client):
    assert json.loads(client.get("/missing").data)["error"]["details"] is None
