"""Idempotency keys expire: a key past IDEMPOTENCY_KEY_TTL makes a new order, and the sweep
deletes expired keys in bounded batches, after an answer (order_service.idempotency)."""

import logging
from datetime import UTC, datetime, timedelta
from functools import partial

import pytest
import requests
from sqlalchemy import create_engine, select, update

from order_service.idempotency import (
    EXTENSION,
    KEYS,
    IdempotencyKeys,
    forget,
    oldest_keys,
)
from order_service.models import db
from order_service.openapi import DOCUMENT
from order_service.orders import ORDERS
from tests.order_service.conftest import (
    error_of,
    insert_keyed_order,
    insert_orders,
    keyed_order,
    make_app,
    order_count,
    post_order,
)
from tests.support.clock import Clock
from tests.support.openapi import conforming_client
from tests.support.plans import BULK_ROWS, bulk_insert, query_plan
from tests.support.processes import wait_until
from tests.support.services import dispose, start_service, stop_now
from tests.support.stress import all_at_once

TTL = 86400.0  # the default
post_keyed = partial(post_order, key="k")


def age(engine, order_id: int, seconds: float) -> None:
    """Make order `order_id` (and so its key) `seconds` old."""
    with engine.begin() as connection:
        connection.execute(
            update(ORDERS)
            .where(ORDERS.c.id == order_id)
            .values(created_at=datetime.now(UTC) - timedelta(seconds=seconds))
        )


def key_rows(engine) -> dict[str, int]:
    with engine.connect() as connection:
        return dict(connection.execute(select(KEYS.c.key, KEYS.c.order_id)).all())


@pytest.fixture
def engine(app):
    with app.app_context():
        yield db.engine


def test_a_key_past_its_ttl_makes_a_new_order_which_it_then_replays(
    client, engine, new_user
):
    user_id = new_user()
    first = post_keyed(client, user_id)
    age(engine, first.json["id"], TTL + 1)
    again = post_keyed(client, user_id)
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json["id"] != first.json["id"]
    assert "Idempotent-Replayed" not in again.headers
    replayed = post_keyed(client, user_id)
    assert replayed.status_code == 200
    assert replayed.json == again.json
    assert key_rows(engine) == {"k": again.json["id"]}
    # the first order stays: only its key is free again
    assert client.get(f"/orders/{first.json['id']}").json["total_amount"] == "12.50"


def test_a_key_past_its_ttl_may_come_with_another_body(client, engine, new_user):
    user_id = new_user()
    first = post_keyed(client, user_id, "1.00")
    age(engine, first.json["id"], TTL + 1)
    again = post_keyed(client, user_id, "2.00")
    assert again.status_code == 201
    assert again.json["total_amount"] == "2.00"


def test_a_key_within_its_ttl_replays_and_refuses_another_body(
    client, engine, new_user
):
    user_id = new_user()
    first = post_keyed(client, user_id)
    age(engine, first.json["id"], TTL - 60)
    replayed = post_keyed(client, user_id)
    assert (replayed.status_code, replayed.json["id"]) == (200, first.json["id"])
    assert replayed.headers["Idempotent-Replayed"] == "true"
    refused = error_of(post_keyed(client, user_id, "99.00"), 409)
    assert refused["code"] == "idempotency_key_reused"
    assert order_count(client) == 1


def test_with_ttl_0_keys_are_honoured_for_ever_and_never_swept(
    database_url, user_service_url, new_user
):
    app = make_app(database_url, user_service_url, idempotency_key_ttl=0)
    try:
        client = conforming_client(app, DOCUMENT)
        user_id = new_user()
        first = post_keyed(client, user_id)
        with app.app_context():
            engine = db.engine
            age(engine, first.json["id"], 10 * 365 * TTL)
            assert post_keyed(client, user_id).status_code == 200
            assert app.extensions[EXTENSION].sweep(engine) == 0
            assert key_rows(engine) == {"k": first.json["id"]}
    finally:
        dispose(app, db)


def keyed_orders(client, engine, user_id, ages) -> list[int]:
    """One keyed order per entry of `ages` (seconds; keys k0, k1, ...), in that order."""
    ids = []
    for i, seconds in enumerate(ages):
        order_id = post_keyed(client, user_id, key=f"k{i}").json["id"]
        age(engine, order_id, seconds)
        ids.append(order_id)
    return ids


def test_the_sweep_deletes_the_expired_among_the_oldest_keys_a_batch_at_a_time(
    client, engine, new_user
):
    """Oldest first, at most a batch, and only those expired; the orders all stay. An
    expired key behind a live one waits: the sweep looks at the oldest batch only."""
    ids = keyed_orders(client, engine, new_user(), [2 * TTL] * 3 + [60, TTL + 1])
    keys = IdempotencyKeys(TTL, batch=2)
    assert keys.sweep(engine) == 2
    assert set(key_rows(engine)) == {"k2", "k3", "k4"}
    assert keys.sweep(engine) == 1  # k2; k3 is live
    assert IdempotencyKeys(TTL, batch=1).sweep(engine) == 0  # k4 waits behind k3
    assert set(key_rows(engine)) == {"k3", "k4"}
    assert order_count(client) == len(ids)
    assert IdempotencyKeys(TTL, batch=10).sweep(engine) == 1
    assert set(key_rows(engine)) == {"k3"}


def post_and_close(client, *args, **kwargs):
    """POST, then close the response as a server does once it is sent (call_on_close)."""
    response = post_keyed(client, *args, **kwargs)
    response.close()
    return response


def test_a_keyed_order_sweeps_after_its_answer_once_per_interval(
    app, client, engine, new_user
):
    clock = Clock()
    app.extensions[EXTENSION] = IdempotencyKeys(TTL, sweep_every=60, clock=clock)
    user_id = new_user()
    keyed_orders(client, engine, user_id, [TTL + 1] * 2)  # the first one swept nothing
    assert set(key_rows(engine)) == {"k0", "k1"}
    clock.now += 59
    post_and_close(client, user_id, key="a")
    assert set(key_rows(engine)) == {"k0", "k1", "a"}  # not its turn yet
    clock.now += 1
    post_and_close(client, user_id, key="b")
    assert set(key_rows(engine)) == {"a", "b"}
    age(engine, key_rows(engine)["a"], TTL + 1)
    post_and_close(client, user_id, key="c")  # swept 60 s ago
    post_and_close(client, user_id)  # an order without a key sweeps nothing
    assert "a" in key_rows(engine)


def test_a_full_sweep_makes_the_next_keyed_order_sweep_again(
    app, client, engine, new_user
):
    clock = Clock()
    app.extensions[EXTENSION] = IdempotencyKeys(TTL, batch=1, clock=clock)
    user_id = new_user()
    keyed_orders(client, engine, user_id, [TTL + 1] * 3)  # k0 swept nothing
    clock.now += 60
    post_and_close(client, user_id, key="a")  # its turn: deletes k0, a full batch
    assert set(key_rows(engine)) == {"k1", "k2", "a"}
    post_and_close(client, user_id, key="b")  # at once, the same second
    assert set(key_rows(engine)) == {"k2", "a", "b"}


def test_a_failed_sweep_is_logged_and_leaves_the_keys(caplog, engine):
    unreachable = create_engine("sqlite:////nonexistent/dir/orders.db")
    with caplog.at_level(logging.WARNING, "orders.idempotency"):
        assert IdempotencyKeys(TTL).sweep(unreachable) == 0
    assert "sweeping expired idempotency keys failed" in caplog.text


def test_the_sweep_reads_the_oldest_keys_from_the_order_id_index_at_100k_keys(
    app, engine
):
    """The sweep's cost is its batch's, not the table's: 100,000 keyed orders, none
    expired. It reads the key index in order and the orders by their primary key."""
    with engine.begin() as connection:
        insert_orders(connection)
        bulk_insert(
            connection,
            KEYS,
            (
                {"key": f"k{i}", "request_hash": "h", "order_id": i}
                for i in range(1, BULK_ROWS + 1)
            ),
        )
        plans = [
            query_plan(connection, oldest_keys(1000)),
            query_plan(connection, forget(list(range(1, 1001)))),
        ]
    for plan in plans:
        assert "ix_idempotency_keys_order_id" in plan, plan
        assert "Seq Scan" not in plan, plan
        assert not {"SCAN idempotency_keys", "SCAN orders"} & set(plan.splitlines())
        assert "TEMP B-TREE" not in plan and "Sort" not in plan, plan
    assert IdempotencyKeys(TTL).sweep(engine) == 0


@pytest.mark.integration
def test_under_gunicorn_a_key_past_its_ttl_makes_one_new_order_and_is_swept(
    database_url, user_service_url, new_user
):
    """A real server: its first keyed order sweeps an expired key once answered; then 20
    POSTs at once with a key past its TTL make one new order (201) and 19 replays of it,
    and the old order stays."""
    service, url = start_service(
        "order_service", database_url, env={"USER_SERVICE_URL": user_service_url}
    )
    engine = create_engine(database_url)
    try:
        body = {"user_id": new_user(), "total_amount": "42.00"}
        with engine.begin() as connection:  # as if by an earlier process
            made = datetime.now(UTC) - timedelta(seconds=2 * TTL)
            insert_keyed_order(connection, body["user_id"], "left-behind", made)

        first = keyed_order(url, body)
        wait_until(lambda: "left-behind" not in key_rows(engine), what="the sweep")
        age(engine, first[1], TTL + 1)
        results = all_at_once(lambda _: keyed_order(url, body), 20)
        assert sorted(status for status, _ in results) == [200] * 19 + [201]
        [new_id] = {order_id for _, order_id in results}
        assert new_id != first[1]
        assert key_rows(engine) == {"same": new_id}
        assert requests.get(f"{url}/orders", timeout=10).json()["total"] == 3
    finally:
        engine.dispose()
        stop_now(service)
    assert "Traceback" not in service.output()
