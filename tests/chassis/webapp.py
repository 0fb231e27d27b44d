"""Assertions on the shared JSON error shape, for the chassis tests."""

from tests.chassis.conftest import SERVED_BY


def error_of(response, status):
    assert response.status_code == status
    assert response.mimetype == "application/json"
    assert response.headers["X-Served-By"] == SERVED_BY
    assert set(response.json) == {"error"}
    assert set(response.json["error"]) == {"code", "message", "details"}
    return response.json["error"]
