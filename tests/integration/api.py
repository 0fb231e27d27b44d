"""Small helpers to create things through the gateway."""

import uuid

import requests

TIMEOUT = 10


def create_user(gateway: str, name: str = "Ada") -> dict:
    email = f"{uuid.uuid4().hex[:12]}@example.com"
    resp = requests.post(
        f"{gateway}/api/users", json={"name": name, "email": email}, timeout=TIMEOUT
    )
    assert resp.status_code == 201, resp.text
    return resp.json()


def create_order(
    gateway: str, user_id: int, amount: str = "12.50", key: str | None = None
):
    headers = {"Idempotency-Key": key} if key else {}
    return requests.post(
        f"{gateway}/api/orders",
        json={"user_id": user_id, "total_amount": amount},
        headers=headers,
        timeout=TIMEOUT,
    )


def order_page(gateway: str, user_id: int) -> dict:
    resp = requests.get(
        f"{gateway}/api/orders", params={"user_id": user_id}, timeout=TIMEOUT
    )
    assert resp.status_code == 200, resp.text
    return resp.json()


def orders_of(gateway: str, user_id: int) -> list[dict]:
    """The first page: enough for tests that create a handful."""
    return order_page(gateway, user_id)["items"]


def orders_total(gateway: str, user_id: int) -> int:
    return order_page(gateway, user_id)["total"]
