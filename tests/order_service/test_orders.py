import contextlib
import json
from decimal import Decimal

import pytest
import requests
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from chassis import storage
from chassis.inputs import PageRequest
from chassis.pages import page_statements
from order_service.models import db
from order_service.openapi import DOCUMENT
from order_service.orders import ORDERS, order_conditions
from tests.order_service.conftest import (
    INSTANCE_ID,
    error_of,
    insert_keyed_order,
    insert_orders,
    keyed_order,
    make_app,
    order_count,
    post_order,
    raw_post,
)
from tests.support.openapi import conforming_client
from tests.support.plans import BULK_ROWS, assert_served_by, query_plan
from tests.support.processes import free_port
from tests.support.services import dispose, start_service, stop_now
from tests.support.stress import all_at_once, rows_after_crash, sigkill_during_writes


def test_create_returns_201_location_and_a_pending_order(client, new_user):
    user_id = new_user()
    response = post_order(client, user_id, "12.5")
    assert response.status_code == 201
    order = response.json
    assert response.headers["Location"] == f"/orders/{order['id']}"
    assert response.headers["X-Served-By"] == INSTANCE_ID
    assert (order["user_id"], order["total_amount"], order["status"]) == (
        user_id,
        "12.50",
        "pending",
    )
    assert client.get(f"/orders/{order['id']}").json == order


def test_location_carries_the_gateway_prefix(client, new_user):
    response = client.post(
        "/orders",
        json={"user_id": new_user(), "total_amount": "1.00"},
        headers={"X-Forwarded-Prefix": "/api"},
    )
    assert response.status_code == 201
    assert response.headers["Location"] == f"/api/orders/{response.json['id']}"


@pytest.mark.parametrize(
    ("literal", "stored"),
    [
        ("12.5", "12.50"),
        ("0.01", "0.01"),
        ("7", "7.00"),
        ("1000000000", "1000000000.00"),
        ("999999999.99", "999999999.99"),
        ("0.29", "0.29"),  # 0.29 is not exact in binary floating point
        ('"0.10"', "0.10"),
        ('"999999999.99"', "999999999.99"),
        ('"1000000000.00"', "1000000000.00"),
    ],
)
def test_amounts_are_exact(client, new_user, literal, stored):
    response = raw_post(
        client, f'{{"user_id": {new_user()}, "total_amount": {literal}}}'
    )
    assert response.status_code == 201, response.json
    assert response.json["total_amount"] == stored
    assert client.get(response.headers["Location"]).json["total_amount"] == stored


@pytest.mark.parametrize(
    "literal",
    [
        "0",
        "-1",
        "0.001",
        "1000000000.01",
        "1e10",
        '"12.345"',
        '"abc"',
        '"1e3"',
        '" 5"',
        "true",
        "null",
        '["1"]',
    ],
)
def test_bad_amounts_are_400_naming_the_field(client, new_user, literal):
    response = raw_post(
        client, f'{{"user_id": {new_user()}, "total_amount": {literal}}}'
    )
    assert list(error_of(response, 400)["details"]) == ["total_amount"]
    assert order_count(client) == 0


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ("{}", {"user_id", "total_amount"}),
        ('{"user_id": "1", "total_amount": "1.00"}', {"user_id"}),
        ('{"user_id": 0, "total_amount": "1.00"}', {"user_id"}),
        ('{"user_id": 1.5, "total_amount": "1.00"}', {"user_id"}),
        ('{"user_id": 1, "total_amount": "1.00", "status": "paid"}', {"status"}),
    ],
)
def test_bad_order_bodies_name_each_field(client, body, fields):
    assert set(error_of(raw_post(client, body), 400)["details"]) == fields


def test_unknown_user_is_422_and_nothing_is_stored(client):
    error = error_of(post_order(client, 2_000_000_000), 422)
    assert error["code"] == "unknown_user"
    assert order_count(client) == 0


def test_user_service_down_is_503_and_nothing_is_stored(database_url):
    # Nothing listens at the user-service address.
    app = make_app(database_url, f"http://127.0.0.1:{free_port()}")
    try:
        client = conforming_client(app, DOCUMENT)
        response = post_order(client, 1)
        assert error_of(response, 503)["code"] == "user_service_unavailable"
        assert response.headers["Retry-After"] == "1"
        assert order_count(client) == 0
    finally:
        dispose(app, db)


def test_same_key_and_body_replays_the_original_order(client, new_user):
    user_id = new_user()
    first = raw_post(
        client, f'{{"user_id": {user_id}, "total_amount": 12.5}}', key="order-abc"
    )
    again = raw_post(
        client, f'{{"total_amount": "12.50", "user_id": {user_id}}}', key="order-abc"
    )
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json == first.json
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.headers["Location"] == first.headers["Location"]
    assert order_count(client) == 1


def test_same_key_with_another_body_is_409(client, new_user):
    user_id = new_user()
    assert post_order(client, user_id, "12.50", key="k-1").status_code == 201
    error = error_of(post_order(client, user_id, "13.00", key="k-1"), 409)
    assert error["code"] == "idempotency_key_reused"
    assert order_count(client) == 1


def test_different_keys_make_different_orders(client, new_user):
    user_id = new_user()
    assert post_order(client, user_id, key="k-1").status_code == 201
    assert post_order(client, user_id, key="k-2").status_code == 201
    assert post_order(client, user_id).status_code == 201
    assert order_count(client) == 3


@pytest.mark.parametrize("key", ["", "x" * 256, "has space", "ключ"])
def test_malformed_idempotency_key_is_400(client, new_user, key):
    response = client.post(
        "/orders",
        json={"user_id": new_user(), "total_amount": "1.00"},
        headers={"Idempotency-Key": key.encode().decode("latin-1")},
    )
    assert list(error_of(response, 400)["details"]) == ["Idempotency-Key"]


@pytest.mark.parametrize("joined", ["first-key,second-key", "first-key, second-key"])
def test_two_idempotency_keys_are_400_and_nothing_is_stored(client, new_user, joined):
    """Two Idempotency-Key lines reach the app as one value: gunicorn joins them with ","
    (Werkzeug's own server with ", "). "first-key,second-key" was taken as a key of its own."""
    response = client.post(
        "/orders",
        json={"user_id": new_user(), "total_amount": "1.00"},
        environ_overrides={"HTTP_IDEMPOTENCY_KEY": joined},
    )
    assert error_of(response, 400)["details"] == {
        "Idempotency-Key": "must be sent once, one key without a comma"
    }
    assert order_count(client) == 0


def test_lists_filter_by_user_and_status_and_paginate(client, new_user):
    alice, bob = new_user(), new_user()
    ids = [post_order(client, alice).json["id"] for _ in range(3)] + [
        post_order(client, bob).json["id"]
    ]
    assert client.patch(f"/orders/{ids[0]}", json={"status": "paid"}).status_code == 200
    assert [
        o["id"] for o in client.get(f"/orders?user_id={alice}").json["items"]
    ] == ids[:3]
    assert [
        o["id"]
        for o in client.get(f"/orders?user_id={alice}&status=pending").json["items"]
    ] == ids[1:3]
    assert [o["id"] for o in client.get("/orders?status=paid").json["items"]] == ids[:1]
    page = client.get(f"/orders/user/{alice}?limit=2&offset=1").json
    assert (
        [o["id"] for o in page["items"]],
        page["total"],
        page["limit"],
        page["offset"],
    ) == (ids[1:3], 3, 2, 1)
    assert client.get("/orders?limit=2").json["total"] == 4
    assert client.get("/orders/user/999999").json == {
        "items": [],
        "total": 0,
        "limit": 50,
        "offset": 0,
        "after": None,
        "next": None,
    }


@pytest.mark.parametrize(
    "path", ["/orders?user_id={user}&limit=2", "/orders/user/{user}?limit=2"]
)
def test_a_users_orders_page_by_keyset_through_next(client, new_user, path):
    alice, bob = new_user(), new_user()
    ids = []
    for _ in range(5):
        ids.append(post_order(client, alice).json["id"])
        post_order(client, bob)
    seen, url, totals = [], path.format(user=alice), []
    while url is not None:
        page = client.get(url).json
        seen += [o["id"] for o in page["items"]]
        totals.append(page["total"])
        url = page["next"]
    assert seen == ids
    assert totals == [5, None, None]  # counted once, on the first page
    assert client.get(f"/orders?after={ids[-1]}").json["items"] == [
        client.get(f"/orders/{ids[-1] + 1}").json  # bob's last
    ]


def test_keyset_pages_keep_the_status_filter(client, new_user):
    alice = new_user()
    ids = [post_order(client, alice).json["id"] for _ in range(4)]
    assert client.patch(f"/orders/{ids[1]}", json={"status": "paid"}).status_code == 200
    first = client.get(f"/orders?user_id={alice}&status=pending&limit=2").json
    assert [o["id"] for o in first["items"]] == [ids[0], ids[2]]
    rest = client.get(first["next"]).json
    assert ([o["id"] for o in rest["items"]], rest["next"]) == ([ids[3]], None)


@pytest.mark.parametrize(
    ("query", "bad"),
    [
        ("user_id=abc", "user_id"),
        ("user_id=0", "user_id"),
        ("status=lost", "status"),
        ("limit=501", "limit"),
        ("after=x", "after"),
        ("after=2147483648", "after"),
    ],
)
def test_bad_filters_are_400(client, query, bad):
    assert list(error_of(client.get(f"/orders?{query}"), 400)["details"]) == [bad]


# Found by fuzzing.
@pytest.mark.parametrize("path", ["/orders/user/0", "/orders/user/2147483648"])
def test_user_ids_that_cannot_exist_are_404(client, path):
    assert error_of(client.get(path), 404)["code"] == "not_found"


@pytest.mark.parametrize("path", ["/orders/999", "/orders/99999999999", "/orders/x"])
def test_unknown_order_is_404(client, path):
    assert error_of(client.get(path), 404)["code"] == "not_found"
    assert (
        error_of(client.patch(path, json={"status": "paid"}), 404)["code"]
        == "not_found"
    )


@pytest.mark.parametrize(
    "path",
    [["paid", "shipped", "delivered"], ["cancelled"], ["paid", "cancelled"]],
)
def test_allowed_status_moves(client, new_user, path):
    order = post_order(client, new_user()).json
    for status in path:
        response = client.patch(f"/orders/{order['id']}", json={"status": status})
        assert (response.status_code, response.json["status"]) == (200, status)
    assert client.get(f"/orders/{order['id']}").json["status"] == path[-1]


@pytest.mark.parametrize(
    ("history", "target"),
    [
        ([], "pending"),
        ([], "shipped"),
        ([], "delivered"),
        (["paid"], "pending"),
        (["paid", "shipped"], "cancelled"),
        (["paid", "shipped", "delivered"], "shipped"),
        (["cancelled"], "paid"),
    ],
)
def test_forbidden_status_moves_are_409(client, new_user, history, target):
    order = post_order(client, new_user()).json
    for status in history:
        assert (
            client.patch(f"/orders/{order['id']}", json={"status": status}).status_code
            == 200
        )
    error = error_of(
        client.patch(f"/orders/{order['id']}", json={"status": target}), 409
    )
    assert error["code"] == "invalid_transition"
    assert client.get(f"/orders/{order['id']}").json["status"] == (
        history[-1] if history else "pending"
    )


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"status": "lost"}, {"status"}),
        ({}, {"status"}),
        ({"status": "paid", "x": 1}, {"x"}),
    ],
)
def test_bad_status_bodies_are_400(client, new_user, body, fields):
    order = post_order(client, new_user()).json
    assert (
        set(error_of(client.patch(f"/orders/{order['id']}", json=body), 400)["details"])
        == fields
    )


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status"),
    [
        ("post", "/orders", {"data": "{oops", "content_type": "application/json"}, 400),
        ("post", "/orders", {"data": "[]", "content_type": "application/json"}, 400),
        ("post", "/orders", {"data": "{}", "content_type": "text/plain"}, 415),
        (
            "post",
            "/orders",
            {
                "data": '{"a": "' + "x" * (1024 * 1024) + '"}',
                "content_type": "application/json",
            },
            413,
        ),
        ("delete", "/orders/1", {}, 405),
        ("put", "/orders", {}, 405),
    ],
)
def test_protocol_errors_are_json(client, method, path, kwargs, status):
    error_of(getattr(client, method)(path, **kwargs), status)


def test_deleting_a_user_keeps_their_orders_and_refuses_new_ones(
    client, new_user, user_service_url
):
    """The documented decision: user-service allows the delete (it cannot see orders);
    existing orders keep their user_id and stay readable and movable; new orders get 422."""
    user_id = new_user()
    order = post_order(client, user_id, key="before-delete").json
    assert (
        requests.delete(f"{user_service_url}/users/{user_id}", timeout=10).status_code
        == 204
    )
    assert client.get(f"/orders/{order['id']}").json == order
    assert [o["id"] for o in client.get(f"/orders/user/{user_id}").json["items"]] == [
        order["id"]
    ]
    assert (
        client.patch(f"/orders/{order['id']}", json={"status": "cancelled"}).status_code
        == 200
    )
    assert error_of(post_order(client, user_id), 422)["code"] == "unknown_user"
    # a retry of the request made before the delete still gets its original order
    assert post_order(client, user_id, key="before-delete").status_code == 200


@pytest.mark.integration
def test_concurrent_requests_on_one_order_make_one_order_and_one_move(
    database_url, user_service_url, new_user
):
    """20 POSTs with one Idempotency-Key give one order; then 20 concurrent cancels of it
    give one 200 and 409s (the status update is conditional on the status read)."""
    service, url = start_service(
        "order_service", database_url, env={"USER_SERVICE_URL": user_service_url}
    )
    try:
        body = {"user_id": new_user(), "total_amount": "42.00"}

        results = all_at_once(lambda _: keyed_order(url, body), 20)
        assert sorted(status for status, _ in results) == [200] * 19 + [201]
        assert len({order_id for _, order_id in results}) == 1
        assert requests.get(f"{url}/orders", timeout=10).json()["total"] == 1

        order_url = f"{url}/orders/{results[0][1]}"

        def cancel(_):
            return requests.patch(order_url, json={"status": "cancelled"}, timeout=60)

        statuses = sorted(response.status_code for response in all_at_once(cancel, 20))
        assert statuses == [200] + [409] * 19
        assert requests.get(order_url, timeout=10).json()["status"] == "cancelled"
    finally:
        stop_now(service)
    assert "Traceback" not in service.output()


@pytest.mark.integration
def test_sigkill_mid_write_leaves_each_order_with_its_key_and_loses_no_acknowledged_one(
    database_url, user_service_url, new_user
):
    """Each order is written with its idempotency record in one transaction: after a SIGKILL
    during a stream of writes, every stored order has its key, every key its order, and every
    acknowledged order is there."""
    service, url = start_service(
        "order_service", database_url, env={"USER_SERVICE_URL": user_service_url}
    )
    user_id = new_user()
    # idempotency key -> order id, for each 201 received
    acknowledged: dict[str, int] = {}

    def write(writer: int, i: int) -> None:
        key = f"w{writer}-{i}"
        body = {"user_id": user_id, "total_amount": f"{writer + 1}.{i % 100:02d}"}
        response = requests.post(
            f"{url}/orders", json=body, headers={"Idempotency-Key": key}, timeout=10
        )
        if response.status_code == 201:
            acknowledged[key] = response.json()["id"]

    sigkill_during_writes(service, write, acknowledged, at_least=40)
    orders, keys = map(
        dict,
        rows_after_crash(
            database_url,
            "SELECT id, total_amount FROM orders",
            "SELECT key, order_id FROM idempotency_keys",
        ),
    )
    assert acknowledged.items() <= keys.items()
    # One key per order, one order per key.
    assert sorted(keys.values()) == sorted(orders)
    for key, order_id in keys.items():
        writer, i = (int(n) for n in key.removeprefix("w").split("-"))
        # The row is whole.
        assert Decimal(str(orders[order_id])) == Decimal(f"{writer + 1}.{i % 100:02d}")


ON_POSTGRESQL = pytest.mark.parametrize(
    "database_url",
    [pytest.param("postgresql", marks=pytest.mark.postgres)],
    indirect=True,
)


@pytest.fixture
def waiting_client(database_url, user_service_url):
    """A client of an order-service whose statements wait for a lock at most 2 s (then
    503), so a test that would otherwise hang fails instead."""
    url = make_url(database_url)
    options = f"{url.query['options']} -clock_timeout=2s"
    app = make_app(
        url.update_query_dict({"options": options}).render_as_string(False),
        user_service_url,
    )
    yield conforming_client(app, DOCUMENT)
    dispose(app, db)


@contextlib.contextmanager
def frozen_writer(database_url: str, user_id: int, key: str, idle: float):
    """What an instance frozen inside its write transaction leaves behind (README: When an
    instance freezes): an open transaction that wrote an order and its key. `idle`: the
    services' idle-transaction timeout in seconds, as chassis.storage sets it (0: never)."""
    engine = create_engine(database_url)
    storage.install_session_settings(engine, idle_transaction_timeout=idle)
    try:
        with engine.connect() as connection:
            transaction = connection.begin()
            insert_keyed_order(connection, user_id, key)
            yield transaction
    finally:
        engine.dispose()


@ON_POSTGRESQL
def test_on_postgresql_a_writer_frozen_mid_transaction_holds_up_only_its_own_key(
    database_url, waiting_client, new_user
):
    """Other orders are written beside the frozen transaction; its own key waits for it
    (here until the lock timeout: 503). On SQLite every write would wait for its lock."""
    user_id = new_user()
    with frozen_writer(database_url, user_id, "frozen", idle=0) as transaction:
        another = post_order(waiting_client, user_id, "1.00", key="another")
        assert another.status_code == 201
        waited = post_order(waiting_client, user_id, "1.00", key="frozen")
        assert waited.status_code == 503, waited.json
        transaction.rollback()  # the instance killed: its write never happened
    assert post_order(waiting_client, user_id, "1.00", key="frozen").status_code == 201


@ON_POSTGRESQL
def test_on_postgresql_the_server_ends_a_frozen_writers_session_and_frees_its_key(
    database_url, waiting_client, new_user
):
    """The services' connections ask PostgreSQL to end a session idle inside a transaction
    (5 s; 0.3 s here): a retry of the frozen writer's key then goes through within the
    lock timeout, once, and the frozen writer, back, finds its work undone (its service
    answers that with a 503: tests/chassis/test_storage.py)."""
    user_id = new_user()
    with frozen_writer(database_url, user_id, "frozen", idle=0.3) as transaction:
        retried = post_order(waiting_client, user_id, "1.00", key="frozen")
        assert retried.status_code == 201, retried.json
        with pytest.raises(DBAPIError, match="idle-in-transaction timeout"):
            transaction.commit()
    orders = waiting_client.get(f"/orders?user_id={user_id}").json
    assert [o["id"] for o in orders["items"]] == [retried.json["id"]]


def first_page_plans(connection, *filter_sets) -> list[str]:
    """The plans of the count and first page, and of a keyset page from the middle, of
    the orders matching each of `filter_sets`, in GET /orders' terms."""
    return [
        query_plan(connection, statement)
        for filters in filter_sets
        for page in (PageRequest(50), PageRequest(50, after=50_000))
        for statement in page_statements(
            ORDERS, order_conditions(filters, connection.dialect.name), page
        )
        if statement is not None
    ]


def test_a_rare_status_comes_from_the_status_index_at_100k_orders(app, client):
    """Paging and counting the orders in one status read that status's index entries only,
    in id order, with no sort: 100,000 orders, 1% of them cancelled. Without the index, a
    page of a rare status walked the primary key through the other statuses' orders (the
    whole table, for a status no order has)."""
    with app.app_context(), db.engine.begin() as connection:
        insert_orders(connection, lambda i: "cancelled" if i % 100 == 99 else "pending")
        plans = first_page_plans(connection, {"status": "cancelled"})
    for plan in plans:
        assert_served_by(plan, "ix_orders_status_id")
    page = client.get("/orders?status=cancelled&limit=50").json
    assert page["total"] == BULK_ROWS // 100
    assert [o["id"] for o in page["items"]] == list(range(100, 5_001, 100))
    assert page["next"] == "/orders?status=cancelled&limit=50&after=5000"
    page = client.get(page["next"]).json
    assert [o["id"] for o in page["items"]] == list(range(5_100, 10_001, 100))


def test_order_json_is_what_the_document_says(client, new_user):
    order = post_order(client, new_user(), "3.10").json
    assert set(order) == set(DOCUMENT["components"]["schemas"]["Order"]["properties"])
    assert json.dumps(order)  # plain JSON types only


def test_a_users_orders_come_from_the_user_id_index_at_100k_orders(app, client):
    """Counting and paging one user's orders read that user's index entries only, in id
    order, with no sort (plans, not timings): 100,000 orders of 100 users. A keyset page
    starts at its key in the index; near the end of a user's orders PostgreSQL may fetch
    the few left (about a page) by bitmap and sort them, still reading no other entries.
    That last page is a close call: with statistics from ANALYZE's usual sample (30,000
    rows), about one sample in 60 makes PostgreSQL walk the primary key from `after`
    instead, reading the other users' ~5,000 newer orders (a few ms). bulk_insert takes
    the statistics from every row, so this test sees the plan the table's real figures give."""
    with app.app_context(), db.engine.begin() as connection:
        insert_orders(connection)
        plans = first_page_plans(
            connection, {"user_id": 7}, {"user_id": 7, "status": "pending"}
        )
        _, near_the_end = page_statements(
            ORDERS,
            order_conditions({"user_id": 7}, connection.dialect.name),
            PageRequest(50, after=95_000),
        )
        last_plan = query_plan(connection, near_the_end)
    for plan in plans:
        assert_served_by(plan, "ix_orders_user_id_id")
    assert "ix_orders_user_id_id" in last_plan and "Seq Scan" not in last_plan
    page = client.get("/orders?user_id=7&limit=50&offset=950").json
    assert page["total"] == BULK_ROWS // 100
    assert [o["id"] for o in page["items"]] == list(range(95_007, 100_001, 100))
    page = client.get("/orders/user/7?limit=50&after=94907").json
    assert (page["total"], page["next"]) == (None, None)
    assert [o["id"] for o in page["items"]] == list(range(95_007, 100_001, 100))
    unfiltered = client.get("/orders?limit=50&after=99950").json
    assert [o["id"] for o in unfiltered["items"]] == list(range(99_951, 100_001))
