"""Checking a service against its OpenAPI document: a test client that validates every
response, the document's coverage of the app's routes, and property-based fuzzing of a real
gunicorn instance (schemathesis)."""

import pytest
import schemathesis
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, settings

from tests.support.processes import ManagedProcess
from tests.support.services import fresh_database, start_service, stop_now


class ConformingClient(FlaskClient):
    """Every response to a documented operation is validated against the app's OpenAPI
    document, so each endpoint test also checks the document against real responses."""

    schema = None

    def open(self, *args, **kwargs):
        response = super().open(*args, **kwargs)
        request = response.request
        operation = self.schema.find_operation_by_path(request.method, request.path)
        if operation is not None:
            operation.validate_response(response)
        return response


def conforming_client(app: Flask, document: dict) -> FlaskClient:
    app.test_client_class = type(
        "Client",
        (ConformingClient,),
        {"schema": schemathesis.openapi.from_dict(document)},
    )
    return app.test_client()


def check_document_is_served(client: FlaskClient, document: dict, operations: int):
    """GET /openapi.json answers `document`, which loads with `operations` operations."""
    response = client.get("/openapi.json")
    assert response.status_code == 200, response.data
    assert response.json == document
    loaded = schemathesis.openapi.from_dict(response.json)
    assert loaded.statistic.operations.total == operations


def check_every_route_is_documented(app: Flask, document: dict) -> None:
    documented = {
        (path, method.upper())
        for path, item in document["paths"].items()
        for method in item
        if method != "parameters"
    }
    for rule in app.url_map.iter_rules():
        path = rule.rule.replace("<int:", "{").replace(">", "}")
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            assert (path, method) in documented, (path, method)


# Property-based fuzzing from a service's OpenAPI document: the same examples on every run.
FUZZ_SETTINGS = settings(
    max_examples=30,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)


# The HTTP server refuses an oversized request line or header (414, 431) before the app
# sees it: a rejection of invalid data as good as a 400.
REJECTIONS = ["400", "401", "403", "404", "405", "406", "409", "414", "415", "422"]
REJECTIONS += ["428", "429", "431", "5xx"]


def fuzzing_schema(document: dict, operations: list[dict] = ()):
    """`document` loaded for schemathesis, with per-operation settings `operations`."""
    config = {
        "checks": {"negative_data_rejection": {"expected-statuses": REJECTIONS}},
        "operations": list(operations),
    }
    return schemathesis.openapi.from_dict(
        document, config=schemathesis.config.SchemathesisConfig.from_dict(config)
    )


def serve_for_fuzzing(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    package: str,
    env: dict | None = None,
):
    """The body of a module-scoped fixture parametrized by DATABASE_KINDS (`yield from` it):
    (process, base URL) of `package` under gunicorn on a fresh database of that kind."""
    directory = tmp_path_factory.mktemp("fuzz")
    with fresh_database(request.param, directory, package) as url:
        process, base_url = start_service(package, url, workers=1, threads=4, env=env)
        yield process, base_url
        stop_now(process)


def check_fuzzed_case(case, process: ManagedProcess, base_url: str) -> None:
    """Send `case`, validate the answer against the document (no 500, documented status, body,
    headers and content type), and fail if the service logged an unhandled exception."""
    case.call_and_validate(base_url=base_url)
    assert "Traceback" not in process.output(), process.output()[-3000:]
