"""Support for the user-service and order-service tests: a fresh database of either kind,
gunicorn processes of a service, and checks every service answers alike (JSON errors, health,
no side effects on import, 503 without a database)."""

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from chassis.launch import gunicorn_argv
from tests.support.processes import REPO, ManagedProcess, free_port

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
        argv = [*gunicorn_argv(package), "--bind", f"127.0.0.1:{port}"]
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
        process.wait_listening(url)
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


def stop_stack_now(stack) -> None:
    """End a switchyard Stack at the end of a test run: the gateways and services get
    gunicorn's quick shutdown (SIGINT: no drain, which only delays a stop nobody is sending
    requests through; on_exit deregisters), then `stack.stop()` stops the agent and clears
    up as `switchyard down` would. Its graceful path is tested in tests/switchyard."""
    running = [p for name, p in stack.processes.items() if name != "consul"]
    for process in running:
        process.signal(signal.SIGINT)
    deadline = time.monotonic() + 10
    for process in running:
        process.wait_stopped(deadline)  # kills what is left of the group after it
    stack.stop()


def json_error(response, status: int, served_by: str) -> dict:
    """The error object of `response`, which must be a JSON error with `status` from `served_by`."""
    assert response.status_code == status, (response.status_code, response.data)
    assert response.mimetype == "application/json"
    assert response.headers["X-Served-By"] == served_by
    return response.json["error"]


def check_health_is_200_and_byte_stable(client, body: bytes, served_by: str) -> None:
    first, second = client.get("/health"), client.get("/health")
    assert (first.status_code, first.data, first.mimetype) == (
        200,
        body,
        "application/json",
    )
    assert second.data == first.data
    assert first.headers["X-Served-By"] == served_by


def files_left_by_importing(
    package: str, submodules: Iterable[str], directory: Path
) -> list[Path]:
    """Import `package` and its `submodules` in a fresh interpreter working in `directory`;
    what that left there."""
    modules = [package, *(f"{package}.{name}" for name in submodules)]
    subprocess.run(
        [sys.executable, "-c", f"import {', '.join(modules)}"],
        cwd=directory,
        check=True,
        env={"PYTHONPATH": str(REPO)},
    )
    return list(directory.iterdir())


def app_without_its_database(directory: Path, build: Callable[[str], Flask]) -> Flask:
    """An app `build` made on a SQLite file whose folder is then removed, so that no new
    connection can open it: the database is gone."""
    (directory / "data").mkdir()
    app = build(f"sqlite:///{directory}/data/service.db")
    dispose(app, app.extensions["sqlalchemy"])
    shutil.rmtree(directory / "data")
    return app
