import pytest
import schemathesis

from chassis.openapi import (
    error_responses,
    json_request,
    object_schema,
    ok_response,
    openapi_document,
    page_schema,
)

ITEM = {"type": "object", "properties": {"id": {"type": "integer"}}}
PATHS = {
    "/items": {
        "get": {
            "operationId": "listItems",
            "responses": {
                "200": ok_response("A page", page_schema("Item")),
                **error_responses(400),
            },
        },
        "post": {
            "operationId": "createItem",
            "requestBody": json_request("Item"),
            "responses": {"201": ok_response("Created"), **error_responses(415)},
        },
    }
}


@pytest.fixture
def document():
    return openapi_document("svc", "Items.", PATHS, {"Item": ITEM})


def test_document_loads_with_the_shared_paths(document):
    loaded = schemathesis.openapi.from_dict(document)
    assert loaded.statistic.operations.total == 4  # the 2 given, /health, /openapi.json
    assert set(document["paths"]) == {"/items", "/health", "/openapi.json"}
    assert document["info"]["description"].startswith("Items. Errors are always ")


def test_every_referenced_error_response_exists(document):
    defined = set(document["components"]["responses"])
    for status in (400, 404, 408, 409, 413, 414, 415, 422, 431, 500, 503):
        assert f"Error{status}" in defined
    assert {"Error", "Item"} <= set(document["components"]["schemas"])


@pytest.mark.parametrize(
    ("statuses", "expected"),
    [
        ((), ["408", "414", "431", "500", "503"]),
        ((404,), ["404", "408", "414", "431", "500", "503"]),
    ],
)
def test_error_responses_always_include_server_limits_500_and_503(statuses, expected):
    responses = error_responses(*statuses)
    assert list(responses) == expected
    assert responses["500"] == {"$ref": "#/components/responses/Error500"}


def test_ok_response_always_names_x_served_by():
    assert set(ok_response("x", headers={"Location": {}})["headers"]) == {
        "X-Served-By",
        "Location",
    }
    assert "content" not in ok_response("No body")


@pytest.mark.parametrize(("partial", "required"), [(False, ["a", "b"]), (True, None)])
def test_object_schema_allows_no_other_fields(partial, required):
    schema = object_schema({"a": {}, "b": {}}, partial=partial)
    assert (schema["additionalProperties"], schema.get("required")) == (False, required)
