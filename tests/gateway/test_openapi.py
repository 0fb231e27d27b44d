"""The gateway's OpenAPI document: served, complete, and true under schemathesis fuzzing."""

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from gateway import views
from gateway.app import create_app
from gateway.openapi import openapi_document
from gateway.settings import GatewaySettings

FUZZ = settings(
    max_examples=25,
    derandomize=True,  # a fixed seed: the same examples on every run
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)


def test_document_loads_and_lists_every_operation():
    loaded = schemathesis.openapi.from_dict(openapi_document())
    # health, metrics, admin, openapi-less view, and seven proxy methods
    assert loaded.statistic.operations.total == 11


def test_every_route_served_is_documented_and_nothing_else():
    app = create_app(GatewaySettings(), instance_id="gateway-doc")
    served = set(app._own) | {"/api/views/users/{user_id}", "/api/{prefix}/{rest}"}
    # The document leaves itself out, as is usual.
    assert set(openapi_document()["paths"]) == served - {"/openapi.json"}


def test_the_proxied_operations_document_what_the_gateway_refuses_itself():
    proxied = openapi_document()["paths"]["/api/{prefix}/{rest}"]
    assert len(proxied) == 7  # every method the gateway proxies
    for operation in proxied.values():
        refusals = {"400", "404", "408", "413", "414", "431"}
        assert refusals <= set(operation["responses"])


def test_the_views_503_documents_retry_after_and_its_200_the_page_of_orders():
    view = openapi_document()["paths"]["/api/views/users/{user_id}"]["get"]
    assert view["responses"]["503"]["headers"]["Retry-After"]["required"]
    schema = view["responses"]["200"]["content"]["application/json"]["schema"]
    assert {"orders", "orders_total", "orders_next"} <= set(schema["required"])


def test_the_views_page_of_orders_is_documented_with_the_limit_it_asks_for(monkeypatch):
    monkeypatch.setattr(views, "ORDERS_LIMIT", 7)
    view = openapi_document()["paths"]["/api/views/users/{user_id}"]["get"]
    schema = view["responses"]["200"]["content"]["application/json"]["schema"]
    assert schema["properties"]["orders"]["description"].endswith("at most 7")
    assert "?limit=7&after=" in schema["properties"]["orders_next"]["description"]


fuzzed = schemathesis.openapi.from_dict(openapi_document())


@pytest.mark.integration
@fuzzed.parametrize()
@FUZZ
def test_fuzzed_requests_get_documented_answers_and_no_500(case, served_gateway):
    case.call_and_validate(base_url=served_gateway.url)
    assert "Traceback" not in served_gateway.process.output()
