"""The OpenAPI document: complete, and true under property-based fuzzing (schemathesis)."""

import pytest

from order_service.openapi import DOCUMENT
from tests.support import openapi
from tests.support.services import DATABASE_KINDS


@pytest.fixture(scope="module", params=DATABASE_KINDS)
def served(request, tmp_path_factory, user_service_url):
    """order-service under gunicorn, asking the real user-service, fuzzed over real HTTP."""
    env = {"USER_SERVICE_URL": user_service_url}
    yield from openapi.serve_for_fuzzing(
        request, tmp_path_factory, "order_service", env
    )


def test_document_is_served_and_loads(client):
    openapi.check_document_is_served(client, DOCUMENT, operations=7)


def test_every_route_is_documented(app):
    openapi.check_every_route_is_documented(app, DOCUMENT)


# Random user ids rarely exist, so schema-valid orders are mostly refused with 422 (unknown
# user): that is the documented answer, not a rejection of valid data.
CREATE_ORDER_ACCEPTS = {
    "include-operation-id": "createOrder",
    "checks": {
        "positive_data_acceptance": {"expected-statuses": ["2xx", "409", "422", "503"]}
    },
}
fuzzed = openapi.fuzzing_schema(DOCUMENT, [CREATE_ORDER_ACCEPTS])


@pytest.mark.integration
@fuzzed.parametrize()
@openapi.FUZZ_SETTINGS
def test_fuzzed_requests_get_documented_answers_and_no_500(case, served):
    openapi.check_fuzzed_case(case, *served)
