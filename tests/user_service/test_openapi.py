"""The OpenAPI document: complete, and true under property-based fuzzing (schemathesis)."""

import pytest
import schemathesis

from tests.support.services import (
    DATABASE_KINDS,
    FUZZ_SETTINGS,
    check_fuzzed_case,
    fresh_database,
    start_service,
    stop_now,
)
from user_service.openapi import DOCUMENT


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
@FUZZ_SETTINGS
def test_fuzzed_requests_get_documented_answers_and_no_500(case, served):
    check_fuzzed_case(case, *served)
