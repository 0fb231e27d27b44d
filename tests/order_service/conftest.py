"""Fixtures for order-service tests: a real user-service process (gunicorn on a loopback port)
and an order-service app on a fresh SQLite or PostgreSQL database that asks it about users."""

import uuid

import pytest
import requests

from order_service import create_app
from order_service.models import db
from order_service.openapi import DOCUMENT
from order_service.settings import Settings
from tests.support.openapi import conforming_client
from tests.support.services import (
    DATABASE_KINDS,
    dispose,
    fresh_database,
    start_service,
    stop_now,
)

INSTANCE_ID = "order-service-test-1"


@pytest.fixture(scope="session")
def user_service_url(tmp_path_factory):
    with fresh_database(
        "sqlite", tmp_path_factory.mktemp("users"), "user-service"
    ) as url:
        process, base_url = start_service("user_service", url, workers=1, threads=4)
        yield base_url
        stop_now(process)


@pytest.fixture
def new_user(user_service_url):
    """Create a user in the real user-service; returns its id."""

    def create() -> int:
        email = f"buyer-{uuid.uuid4().hex}@example.com"
        response = requests.post(
            f"{user_service_url}/users",
            json={"name": "Buyer", "email": email},
            timeout=10,
        )
        assert response.status_code == 201, response.text
        return response.json()["id"]

    return create


def keyed_order(url: str, body: dict, key: str = "same") -> tuple[int, int]:
    """POST `body` with an Idempotency-Key to the order-service at `url`: (status, order id)."""
    response = requests.post(
        f"{url}/orders", json=body, headers={"Idempotency-Key": key}, timeout=60
    )
    return response.status_code, response.json()["id"]


@pytest.fixture(params=DATABASE_KINDS)
def database_url(request, tmp_path):
    with fresh_database(request.param, tmp_path, "order-service") as url:
        yield url


def make_app(database_url: str, user_service_url: str):
    return create_app(
        Settings(
            database_url=database_url,
            user_service_url=user_service_url,
            instance_id=INSTANCE_ID,
        )
    )


@pytest.fixture
def app(database_url, user_service_url):
    app = make_app(database_url, user_service_url)
    yield app
    dispose(app, db)


@pytest.fixture
def client(app):
    """A test client whose every response is checked against the OpenAPI document."""
    return conforming_client(app, DOCUMENT)
