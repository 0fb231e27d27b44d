"""Support for the user-service and order-service tests: a fresh database of either kind,
gunicorn processes of a service, and a test client that checks every response against the
service's OpenAPI document."""

import contextlib
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import schemathesis
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, settings
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from tests.support.processes import ManagedProcess, free_port

POSTGRES_URL = os.environ.get("SWITCHYARD_TEST_POSTGRES_URL", "")
DATABASE_KINDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


@contextlib.contextmanager
def fresh_database(kind: str, directory: Path, name: str):
    """A DATABASE_URL for an empty database: a new SQLite file, or a new PostgreSQL schema
    (dropped afterwards) selected through the connection's search_path."""
    if kind == "sqlite":
        yield f"sqlite:///{directory / name}.db"
        return
    if not POSTGRES_URL:
        pytest.skip("SWITCHYARD_TEST_POSTGRES_URL is not set")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_URL)
    with admin.begin() as connection:
        connection.execute(text(f"CREATE SCHEMA {schema}"))
    try:
        url = make_url(POSTGRES_URL).update_query_dict(
            {"options": f"-csearch_path={schema}"}
        )
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as connection:
            connection.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


def dispose(app: Flask, db) -> None:
    """Close the app's pooled connections (PostgreSQL cannot drop a schema under open sessions)."""
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def start_service(
    package: str, database_url: str, **options
) -> tuple[ManagedProcess, str]:
    """`package` under gunicorn on a free loopback port, ready; returns (process, base URL)."""
    [started] = start_instances(package, database_url, 1, **options)
    return started


def start_instances(
    package: str,
    database_url: str,
    count: int,
    *,
    workers: int = 2,
    threads: int = 4,
    env: dict | None = None,
) -> list[tuple[ManagedProcess, str]]:
    """`count` instances sharing one database, started together (boot time is the cost)."""
    started = []
    for _ in range(count):
        port = free_port()
        argv = [
            *(
                sys.executable,
                "-m",
                "gunicorn",
                "-c",
                f"python:{package}.gunicorn_conf",
            ),
            *("--bind", f"127.0.0.1:{port}", f"{package}.wsgi:app"),
        ]
        service_env = {
            # Nothing listens there: these instances must not join any Consul that may be
            # running on this machine; registration fails and the service serves regardless.
            "CONSUL_HTTP_ADDR": f"127.0.0.1:{free_port()}",
            "DRAIN_SECONDS": "0",
            "PORT": str(port),
            "SERVICE_ADDRESS": "127.0.0.1",
            "DATABASE_URL": database_url,
            "WEB_CONCURRENCY": str(workers),
            "GUNICORN_THREADS": str(threads),
            **(env or {}),
        }
        process = ManagedProcess(
            argv, env=service_env, name=f"{package}-{port}"
        ).start()
        started.append((process, f"http://127.0.0.1:{port}"))
    for process, url in started:
        process.wait_http(f"{url}/health", status=200)
    return started


def stop_now(*processes: ManagedProcess) -> None:
    """gunicorn's quick shutdown (SIGINT), all at once: tests need no graceful drain."""
    for process in processes:
        process.signal(signal.SIGINT)
    for process in processes:
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            # Nothing to preserve in a test instance: do not wait for a graceful stop too.
            process.signal(signal.SIGKILL)
            process.wait(timeout=5)


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


# Property-based fuzzing from a service's OpenAPI document: the same examples on every run.
FUZZ_SETTINGS = settings(
    max_examples=30,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)


def check_fuzzed_case(case, process: ManagedProcess, base_url: str) -> None:
    """Send `case`, validate the answer against the document (no 500, documented status, body,
    headers and content type), and fail if the service logged an unhandled exception."""
    case.call_and_validate(base_url=base_url)
    assert "Traceback" not in process.output(), process.output()[-3000:]
