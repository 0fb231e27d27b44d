"""Fixtures for order-service tests: a real user-service process (gunicorn on a loopback port)
and an order-service app on a fresh SQLite or PostgreSQL database that asks it about users;
and the helpers the order tests share (requests, and rows written without the app)."""

import uuid
from datetime import UTC, datetime
from decimal import Decimal
from functools import partial

import pytest
import requests

from order_service import create_app
from order_service.idempotency import KEYS
from order_service.models import db
from order_service.openapi import DOCUMENT
from order_service.orders import ORDERS
from order_service.settings import Settings
from order_service.validation import request_fingerprint
from tests.support.openapi import conforming_client
from tests.support.plans import BULK_ROWS, bulk_insert
from tests.support.services import (
    DATABASE_KINDS,
    dispose,
    fresh_database,
    json_error,
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


error_of = partial(json_error, served_by=INSTANCE_ID)


def post_order(client, user_id, amount="12.50", key=None):
    headers = {"Idempotency-Key": key} if key else {}
    return client.post(
        "/orders", json={"user_id": user_id, "total_amount": amount}, headers=headers
    )


def raw_post(client, body: str, key=None):
    headers = {
        "Content-Type": "application/json",
        **({"Idempotency-Key": key} if key else {}),
    }
    return client.post("/orders", data=body, headers=headers)


def order_count(client) -> int:
    return client.get("/orders").json["total"]


def insert_orders(connection, status_of=lambda i: "pending") -> None:
    """BULK_ROWS orders of 100 users in turn (ids 1, 101, ... are user 1's); the i-th
    (from 0) in status `status_of(i)`."""
    now = datetime.now(UTC)
    rows = (
        {
            "user_id": i % 100 + 1,
            "total_amount": Decimal("12.50"),
            "status": status_of(i),
            "created_at": now,
            "updated_at": now,
        }
        for i in range(BULK_ROWS)
    )
    bulk_insert(connection, ORDERS, rows)


def insert_keyed_order(
    connection, user_id: int, key: str, made: datetime | None = None
) -> int:
    """An order of 1.00 and its key, written as POST /orders writes them (Core, in
    `connection`'s transaction); `made`: its creation time, now by default. Its id."""
    amount, made = Decimal("1.00"), made or datetime.now(UTC)
    order_id = connection.scalar(
        ORDERS.insert()
        .values(user_id=user_id, total_amount=amount, created_at=made, updated_at=made)
        .returning(ORDERS.c.id)
    )
    connection.execute(
        KEYS.insert().values(
            key=key,
            request_hash=request_fingerprint(user_id, amount),
            order_id=order_id,
        )
    )
    return order_id


@pytest.fixture(params=DATABASE_KINDS)
def database_url(request, tmp_path):
    with fresh_database(request.param, tmp_path, "order-service") as url:
        yield url


def make_app(database_url: str, user_service_url: str, **settings):
    return create_app(
        Settings(
            database_url=database_url,
            user_service_url=user_service_url,
            instance_id=INSTANCE_ID,
            **settings,
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
