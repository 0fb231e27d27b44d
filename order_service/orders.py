"""The /orders resource."""

import logging

from flask import Blueprint, current_app, jsonify, request, url_for
from sqlalchemy import ColumnElement, UnaryExpression, bindparam, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql.operators import custom_op

from chassis.errors import APIError
from chassis.inputs import json_body, page_params
from chassis.pages import read_page
from chassis.storage import MAX_ID, read_by_id, utcnow
from order_service.idempotency import EXTENSION as KEYS_EXTENSION
from order_service.idempotency import IdempotencyKeys
from order_service.lifecycle import can_move
from order_service.models import IdempotencyKey, Order, db
from order_service.users import UserServiceUnavailable
from order_service.validation import (
    clean_filters,
    clean_idempotency_key,
    clean_new_order,
    clean_status_change,
    request_fingerprint,
)

log = logging.getLogger("orders")

orders = Blueprint("orders", __name__, url_prefix="/orders")

# Reads are Core statements on the model's table, outside the ORM session (chassis.storage:
# read_by_id compiles it once per app; lists: chassis.pages; keys: order_service.idempotency).
ORDERS = Order.__table__
ORDER_BY_ID = select(ORDERS).where(ORDERS.c.id == bindparam("id"))


@orders.get("")
def list_orders():
    return order_page(clean_filters(request.args))


@orders.get("/user/<int:user_id>")
def list_user_orders(user_id: int):
    if not 1 <= user_id <= MAX_ID:  # no user can have such an id (fuzzing finding)
        raise APIError(404, "not_found", f"user {user_id} cannot exist")
    return order_page({"user_id": user_id})


@orders.get("/<int:order_id>")
def get_order(order_id: int):
    row = read_by_id(ORDER_BY_ID, order_id)
    if row is None:
        raise not_found(order_id)
    return Order.to_json(row)


@orders.post("")
def create_order():
    key = clean_idempotency_key(request.headers.get("Idempotency-Key"))
    user_id, amount = clean_new_order(json_body())
    fingerprint = request_fingerprint(user_id, amount)
    keys: IdempotencyKeys = current_app.extensions[KEYS_EXTENSION]
    earlier = keys.find(key) if key is not None else None
    if earlier is not None and keys.live(earlier):
        return replay(earlier, fingerprint)
    require_user(user_id)
    order = Order(user_id=user_id, total_amount=amount, status="pending")
    db.session.add(order)
    try:
        if key is not None:
            db.session.flush()  # assigns order.id for the idempotency record
            if earlier is not None:  # expired: the key is free for this order
                keys.release(earlier)
            db.session.add(
                IdempotencyKey(key=key, request_hash=fingerprint, order_id=order.id)
            )
        db.session.commit()  # the order and its key together, or neither
    except IntegrityError:
        db.session.rollback()
        # Only the key's primary key can collide: a concurrent request with the same key won.
        original = keys.find(key) if key is not None else None
        if original is None or not keys.live(original):
            raise
        return replay(original, fingerprint)
    response = order_response(order, 201)
    if key is not None:
        keys.sweep_after(response)
    return response


@orders.patch("/<int:order_id>")
def change_status(order_id: int):
    target = clean_status_change(json_body())
    order = find_order(order_id)
    current = order.status
    if not can_move(current, target):
        raise transition_conflict(current, target)
    # Conditional on the status we checked, so two concurrent moves cannot both succeed.
    moved = db.session.execute(
        update(Order)
        .where(Order.id == order_id, Order.status == current)
        .values(status=target, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    if moved.rowcount != 1:
        db.session.rollback()
        raise APIError(
            409, "conflict", "the order changed concurrently; read it and retry"
        )
    db.session.commit()
    db.session.refresh(order)
    return order.to_json()


def order_page(filters: dict):
    """The orders matching `filters` (column: value), a page in id order (chassis.pages)."""
    conditions = order_conditions(filters, db.engine.dialect.name)
    return read_page(ORDERS, conditions, page_params(), Order.to_json)


def order_conditions(filters: dict, dialect: str) -> list[ColumnElement]:
    """The WHERE terms for `filters` (column: value). The index on (user_id, id) serves a
    user's orders in order, so no statement reads other users' orders; the one on
    (status, id) does the same for a status (order_service.models; tests check the plans).

    Given both filters, SQLite, which keeps no statistics, may take the status index and
    read every order in that status for one user's. There the status term is written
    `+status`, SQLite's own way to keep a term from choosing an index, which leaves the
    user's. PostgreSQL chooses from its statistics (and has no unary + for text)."""
    status = ORDERS.c.status
    if dialect == "sqlite" and "user_id" in filters:
        status = UnaryExpression(status, operator=custom_op("+"), type_=status.type)
    return [
        (status if name == "status" else ORDERS.c[name]) == value
        for name, value in filters.items()
    ]


def find_order(order_id: int) -> Order:
    order = db.session.get(Order, order_id) if order_id <= MAX_ID else None
    if order is None:
        raise not_found(order_id)
    return order


def not_found(order_id: int) -> APIError:
    return APIError(404, "not_found", f"order {order_id} not found")


def replay(record, fingerprint: str):
    """The answer to a live key's retry: its order, or 409 when it came with another body.
    `record`: IdempotencyKeys.find's (the key's request fingerprint, its order's columns)."""
    if record.request_hash != fingerprint:
        raise APIError(
            409,
            "idempotency_key_reused",
            "this Idempotency-Key was used with a different request body",
            {"Idempotency-Key": "already used for another request"},
        )
    return order_response(record, 200, replayed=True)


def require_user(user_id: int) -> None:
    try:
        exists = current_app.extensions["user_directory"].exists(
            user_id, request.headers.get("X-Request-ID")
        )
    except UserServiceUnavailable as exc:
        log.warning("user-service unavailable: %s", exc)
        raise APIError(
            503,
            "user_service_unavailable",
            "cannot check the user now; try again",
            None,
            {"Retry-After": "1"},
        ) from None
    if not exists:
        raise APIError(
            422,
            "unknown_user",
            f"user {user_id} does not exist",
            {"user_id": "no such user"},
        )


def transition_conflict(current: str, target: str) -> APIError:
    return APIError(
        409,
        "invalid_transition",
        f"cannot move an order from {current} to {target}",
        {"status": f"not allowed from {current}"},
    )


def order_response(order, status: int, replayed: bool = False):
    """`order`: an Order, or a record of the orders table's columns (read_row)."""
    response = jsonify(Order.to_json(order))
    response.status_code = status
    response.headers["Location"] = url_for("orders.get_order", order_id=order.id)
    if replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return response
