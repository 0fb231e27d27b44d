"""The OpenAPI document: complete, and true under property-based fuzzing (schemathesis)."""

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from tests.support.services import (
    DATABASE_KINDS,
    fresh_database,
    start_service,
    stop_now,
)
from user_service.openapi import DOCUMENT

FUZZ = settings(
    max_examples=40,
    derandomize=True,  # a fixed seed: the same examples on every run
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)


def test_document_is_served_and_loads(client):
    response = client.get("/openapi.json")
    assert response.status_code == 200
    assert response.json == DOCUMENT
    assert schemathesis.openapi.from_dict(response.json).statistic.operations.total == 8


def test_every_route_is_documented(app):
    documented = {
        (path, method.upper())
        for path, item in DOCUMENT["paths"].items()
        for method in item
        if method != "parameters"
    }
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        path = rule.rule.replace("<int:", "{").replace(">", "}")
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            assert (path, method) in documented


@pytest.fixture(scope="module", params=DATABASE_KINDS)
def served(request, tmp_path_factory):
    """user-service under gunicorn, fuzzed over real HTTP."""
    with fresh_database(
        request.param, tmp_path_factory.mktemp("fuzz"), "user-service"
    ) as url:
        process, base_url = start_service("user_service", url, workers=1, threads=4)
        yield process, base_url
        stop_now(process)


fuzzed = schemathesis.openapi.from_dict(DOCUMENT)


@pytest.mark.integration
@fuzzed.parametrize()
@FUZZ
def test_fuzzed_requests_get_documented_answers_and_no_500(case, served):
    process, base_url = served
    case.call_and_validate(base_url=base_url)
    assert "Traceback" not in process.output(), "an unhandled exception was logged"
