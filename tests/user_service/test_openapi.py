"""The OpenAPI document: complete, and true under property-based fuzzing (schemathesis)."""

import pytest

from tests.support import openapi
from tests.support.services import DATABASE_KINDS
from user_service.openapi import DOCUMENT


@pytest.fixture(scope="module", params=DATABASE_KINDS)
def served(request, tmp_path_factory):
    """user-service under gunicorn, fuzzed over real HTTP."""
    yield from openapi.serve_for_fuzzing(request, tmp_path_factory, "user_service")


def test_document_is_served_and_loads(client):
    openapi.check_document_is_served(client, DOCUMENT, operations=8)


def test_every_route_is_documented(app):
    openapi.check_every_route_is_documented(app, DOCUMENT)


fuzzed = openapi.fuzzing_schema(DOCUMENT)


@pytest.mark.integration
@fuzzed.parametrize()
@openapi.FUZZ_SETTINGS
def test_fuzzed_requests_get_documented_answers_and_no_500(case, served):
    openapi.check_fuzzed_case(case, *served)
