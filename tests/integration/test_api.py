"""Users, orders, idempotency and the aggregation view, all through the gateway."""

import http.client
import json
import uuid
from urllib.parse import urlsplit

import pytest
import requests

from tests.integration.api import (
    TIMEOUT,
    create_order,
    create_user,
    orders_of,
    orders_total,
)

pytestmark = pytest.mark.integration


def test_create_and_read_a_user(gateway):
    user = create_user(gateway, "Grace")
    resp = requests.get(f"{gateway}/api/users/{user['id']}", timeout=TIMEOUT)
    assert resp.status_code == 200
    assert resp.json()["name"] == "Grace"
    assert resp.headers["X-Served-By"].startswith("user-service-127.0.0.1-")


def test_create_an_order_for_a_user(gateway):
    user = create_user(gateway)
    resp = create_order(gateway, user["id"], "12.50")
    assert resp.status_code == 201, resp.text
    order = resp.json()
    assert (order["user_id"], order["total_amount"]) == (user["id"], "12.50")
    assert resp.headers["X-Served-By"].startswith("order-service-127.0.0.1-")


def test_an_order_for_an_unknown_user_is_refused(gateway):
    resp = create_order(gateway, 2_000_000_000)
    assert resp.status_code == 422, resp.text
    assert resp.json()["error"]["code"] == "unknown_user"


def test_a_retried_post_with_one_idempotency_key_creates_one_order(gateway):
    user = create_user(gateway)
    key = str(uuid.uuid4())
    first = create_order(gateway, user["id"], "7.00", key=key)
    again = create_order(gateway, user["id"], "7.00", key=key)
    assert first.status_code == 201, first.text
    assert again.status_code == 200, again.text
    assert again.json()["id"] == first.json()["id"]
    assert [o["id"] for o in orders_of(gateway, user["id"])] == [first.json()["id"]]


def test_a_post_with_two_idempotency_keys_is_refused_and_stores_nothing(gateway):
    """The gateway passes both header lines on; the order-service gets them joined, and
    refuses them instead of taking "a,b" for a key of its own."""
    user = create_user(gateway)
    body = json.dumps({"user_id": user["id"], "total_amount": "3.00"}).encode()
    connection = http.client.HTTPConnection(urlsplit(gateway).netloc, timeout=TIMEOUT)
    try:
        connection.putrequest("POST", "/api/orders")
        for name, value in [
            ("Idempotency-Key", str(uuid.uuid4())),
            ("Idempotency-Key", str(uuid.uuid4())),
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(body))),
        ]:
            connection.putheader(name, value)
        connection.endheaders(body)
        resp = connection.getresponse()
        error = json.loads(resp.read())["error"]
    finally:
        connection.close()
    assert resp.status == 400, error
    assert resp.headers["X-Served-By"].startswith("order-service-127.0.0.1-")
    assert (error["code"], list(error["details"])) == (
        "validation_failed",
        ["Idempotency-Key"],
    )
    assert orders_total(gateway, user["id"]) == 0


def test_the_aggregation_view_joins_a_user_and_their_orders(gateway):
    user = create_user(gateway)
    ids = {
        create_order(gateway, user["id"], amount).json()["id"]
        for amount in ("1.00", "2.00")
    }
    resp = requests.get(f"{gateway}/api/views/users/{user['id']}", timeout=TIMEOUT)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["user"]["id"] == user["id"]
    orders = (
        body["orders"]["items"] if isinstance(body["orders"], dict) else body["orders"]
    )
    assert {o["id"] for o in orders} == ids


def test_the_aggregation_view_of_an_unknown_user_is_404(gateway):
    resp = requests.get(f"{gateway}/api/views/users/2000000000", timeout=TIMEOUT)
    assert resp.status_code == 404
    assert resp.json()["error"]["code"]
