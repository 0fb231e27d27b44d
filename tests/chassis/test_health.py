import pytest

from chassis.health import check_result, health_body
from tests.chassis.conftest import SERVED_BY


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
            True,
            {"database": "ok", "consul": "stale"},
            "svc",
            (
                b'{"checks":{"consul":"stale","database":"ok"},"service":"svc",'
                b'"status":"degraded"}'
            ),
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
    "value, result", [(True, "ok"), (False, "unavailable"), ("stale", "stale")]
)
def test_a_check_answers_a_bool_or_a_word(value, result):
    assert check_result(value) == result


def test_a_check_answering_anything_else_is_a_bug():
    with pytest.raises(ValueError, match="'fine'"):
        check_result("fine")
