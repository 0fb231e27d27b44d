import json
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from functools import partial

import pytest
import requests

from chassis.inputs import PageRequest
from chassis.pages import page_statements
from tests.support.plans import BULK_ROWS, bulk_insert, query_plan
from tests.support.services import json_error, start_instances, start_service, stop_now
from tests.support.stress import all_at_once, rows_after_crash, sigkill_during_writes
from tests.user_service.conftest import INSTANCE_ID
from user_service.models import db
from user_service.users import USERS

ADA = {"name": "Ada Lovelace", "email": "ada@example.com"}


def create(client, name="Ada Lovelace", email="ada@example.com"):
    response = client.post("/users", json={"name": name, "email": email})
    assert response.status_code == 201, response.json
    return response.json


error_of = partial(json_error, served_by=INSTANCE_ID)


def test_create_returns_201_location_and_the_normalized_user(client):
    response = client.post(
        "/users", json={"name": "Ada", "email": "  Ada@Example.COM "}
    )
    assert response.status_code == 201
    user = response.json
    assert response.headers["Location"] == f"/users/{user['id']}"
    assert response.headers["X-Served-By"] == INSTANCE_ID
    assert (user["name"], user["email"]) == ("Ada", "ada@example.com")
    assert user["created_at"].endswith("Z")
    assert client.get(response.headers["Location"]).json == user


def test_location_carries_the_gateway_prefix(client):
    response = client.post("/users", json=ADA, headers={"X-Forwarded-Prefix": "/api"})
    assert response.status_code == 201
    assert response.headers["Location"] == f"/api/users/{response.json['id']}"


@pytest.mark.parametrize(
    "second_email", ["ada@example.com", "ADA@EXAMPLE.COM", " Ada@example.com\t"]
)
def test_duplicate_email_is_409_case_insensitively(client, second_email):
    create(client)
    error = error_of(
        client.post("/users", json={"name": "Other", "email": second_email}), 409
    )
    assert error["code"] == "email_taken"
    assert error["details"] == {"email": "already registered"}
    assert client.get("/users").json["total"] == 1


def test_list_is_paginated_in_id_order(client):
    ids = [create(client, f"user {i}", f"u{i}@example.com")["id"] for i in range(5)]
    page = client.get("/users?limit=2&offset=1").json
    assert [u["id"] for u in page["items"]] == ids[1:3]
    assert (page["total"], page["limit"], page["offset"]) == (5, 2, 1)
    assert page["next"] == f"/users?limit=2&after={ids[2]}"  # continues by keyset
    default = client.get("/users").json
    assert (len(default["items"]), default["limit"], default["offset"]) == (5, 50, 0)
    assert default["next"] is None
    assert client.get("/users?offset=10").json["items"] == []


def test_keyset_pages_follow_next_to_the_end_without_a_count(client):
    ids = [create(client, f"user {i}", f"u{i}@example.com")["id"] for i in range(5)]
    first = client.get("/users?limit=2").json
    assert ([u["id"] for u in first["items"]], first["total"]) == (ids[:2], 5)
    second = client.get(first["next"]).json
    assert [u["id"] for u in second["items"]] == ids[2:4]
    assert (second["total"], second["after"], second["offset"]) == (None, ids[1], 0)
    last = client.get(second["next"]).json
    assert ([u["id"] for u in last["items"]], last["next"]) == (ids[4:], None)
    assert client.get(f"/users?after={ids[-1]}").json["items"] == []
    skipping = client.get(f"/users?after={ids[0]}&offset=2&limit=1").json
    assert ([u["id"] for u in skipping["items"]], skipping["offset"]) == (ids[3:4], 2)
    assert skipping["next"] == f"/users?limit=1&after={ids[3]}"  # no offset after that


def test_next_carries_the_gateway_prefix(client):
    for i in range(3):
        create(client, f"user {i}", f"u{i}@example.com")
    page = client.get("/users?limit=2", headers={"X-Forwarded-Prefix": "/api"}).json
    assert page["next"].startswith("/api/users?")


def test_keyset_pages_cover_every_user_once_in_order_while_users_are_added(app):
    """Users added while a client pages get larger ids, so they land after the pages
    already read: no page repeats a user or skips one that existed."""
    client = app.test_client()
    existing = [
        create(client, f"user {i}", f"u{i}@example.com")["id"] for i in range(30)
    ]

    def add_users():
        writer = app.test_client()
        for i in range(30):
            create(writer, f"late {i}", f"late{i}@example.com")

    with ThreadPoolExecutor(max_workers=1) as pool:
        adding = pool.submit(add_users)
        seen, path = [], "/users?limit=3"
        while path is not None:
            page = client.get(path).json
            seen += [u["id"] for u in page["items"]]
            path = page["next"]
        adding.result()
    assert seen == sorted(set(seen))  # in id order, each once
    assert set(existing) <= set(seen)


@pytest.mark.parametrize(
    ("query", "bad"),
    [
        ("limit=0", "limit"),
        ("limit=501", "limit"),
        ("limit=abc", "limit"),
        ("offset=-1", "offset"),
        ("limit=1.5", "limit"),
        ("after=abc", "after"),
        ("after=-1", "after"),
        ("after=2147483648", "after"),
    ],
)
def test_bad_pagination_is_400_naming_the_parameter(client, query, bad):
    error = error_of(client.get(f"/users?{query}"), 400)
    assert list(error["details"]) == [bad]


@pytest.mark.parametrize(
    "path",
    [
        "/users/999",
        "/users/99999999999999999999",
        "/users/abc",
        "/users/-1",
        "/nowhere",
    ],
)
def test_unknown_id_or_path_is_404_json(client, path):
    assert error_of(client.get(path), 404)["code"] == "not_found"


def test_put_replaces_every_field(client):
    user = create(client)
    response = client.put(
        f"/users/{user['id']}", json={"name": "Ada King", "email": "King@Example.com"}
    )
    assert response.status_code == 200
    assert (response.json["name"], response.json["email"]) == (
        "Ada King",
        "king@example.com",
    )
    assert response.json["updated_at"] >= user["updated_at"]
    assert client.get(f"/users/{user['id']}").json == response.json


def test_put_requires_every_field(client):
    user = create(client)
    error = error_of(
        client.put(f"/users/{user['id']}", json={"name": "Only name"}), 400
    )
    assert error["details"] == {"email": "required"}


def test_patch_changes_only_given_fields(client):
    user = create(client)
    response = client.patch(f"/users/{user['id']}", json={"name": "Countess"})
    assert response.status_code == 200
    assert (response.json["name"], response.json["email"]) == (
        "Countess",
        user["email"],
    )


@pytest.mark.parametrize("method", ["put", "patch"])
def test_update_to_a_taken_email_is_409_and_changes_nothing(client, method):
    create(client)
    other = create(client, "Bob", "bob@example.com")
    body = {"name": "Bob", "email": "ADA@example.com"}
    assert (
        error_of(getattr(client, method)(f"/users/{other['id']}", json=body), 409)[
            "code"
        ]
        == "email_taken"
    )
    assert client.get(f"/users/{other['id']}").json["email"] == "bob@example.com"


@pytest.mark.parametrize("method", ["put", "patch"])
def test_update_of_unknown_user_is_404(client, method):
    assert (
        error_of(getattr(client, method)("/users/42", json=ADA), 404)["code"]
        == "not_found"
    )


def test_delete_is_204_then_404(client):
    user = create(client)
    response = client.delete(f"/users/{user['id']}")
    assert (response.status_code, response.data) == (204, b"")
    assert response.headers["X-Served-By"] == INSTANCE_ID
    error_of(client.get(f"/users/{user['id']}"), 404)
    error_of(client.delete(f"/users/{user['id']}"), 404)
    create(client)  # the email is free again


def test_a_deleted_users_id_is_never_given_to_another(client):
    """Orders keep a deleted user's id: a new user with that id would own them."""
    create(client, email="first@example.com")
    newest = create(client, email="newest@example.com")
    assert client.delete(f"/users/{newest['id']}").status_code == 204
    assert create(client, email="next@example.com")["id"] > newest["id"]


@pytest.mark.parametrize(
    ("body", "content_type", "status", "code"),
    [
        (b'{"name": "x",', "application/json", 400, "malformed_json"),
        (b"", "application/json", 400, "malformed_json"),
        (
            b'{"name": NaN, "email": "a@b.co"}',
            "application/json",
            400,
            "malformed_json",
        ),
        (b"\xff\xfe\xfd", "application/json", 400, "malformed_json"),
        (b"[" * 100_000 + b"]" * 100_000, "application/json", 400, "malformed_json"),
        (b'["a list"]', "application/json", 400, "validation_failed"),
        (b'"a string"', "application/json", 400, "validation_failed"),
        (json.dumps(ADA).encode(), "text/plain", 415, "unsupported_media_type"),
        (
            json.dumps(ADA).encode(),
            "application/x-www-form-urlencoded",
            415,
            "unsupported_media_type",
        ),
        (json.dumps(ADA).encode(), None, 415, "unsupported_media_type"),
        (
            json.dumps({**ADA, "name": "x" * (1024 * 1024)}).encode(),
            "application/json",
            413,
            "request_entity_too_large",
        ),
    ],
)
def test_bad_bodies_are_json_errors_not_500(client, body, content_type, status, code):
    headers = {"Content-Type": content_type} if content_type else {}
    assert (
        error_of(client.post("/users", data=body, headers=headers), status)["code"]
        == code
    )


def test_json_with_charset_is_accepted(client):
    response = client.post(
        "/users",
        data=json.dumps(ADA),
        headers={"Content-Type": "application/json; charset=utf-8"},
    )
    assert response.status_code == 201


def test_every_bad_field_is_named(client):
    error = error_of(
        client.post("/users", json={"name": "", "email": 3, "role": "admin"}), 400
    )
    assert set(error["details"]) == {"name", "email", "role"}


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("delete", "/users", "GET, HEAD, OPTIONS, POST"),
        ("post", "/users/1", "DELETE, GET, HEAD, OPTIONS, PATCH, PUT"),
        ("put", "/users", "GET, HEAD, OPTIONS, POST"),
    ],
)
def test_wrong_method_is_405_with_allow_in_one_order(client, method, path, allowed):
    response = getattr(client, method)(path)
    assert error_of(response, 405)["code"] == "method_not_allowed"
    # sorted: werkzeug lists them in a set's order, which changed from process to process
    assert response.headers["Allow"] == allowed


@pytest.mark.integration
def test_50_concurrent_creates_with_one_email_store_one_user(database_url):
    """Two instances of two workers each, sharing the database: the unique index decides."""
    (first, url_a), (second, url_b) = start_instances("user_service", database_url, 2)
    try:

        def post(i: int) -> int:
            body = {
                "name": f"racer {i}",
                "email": "Race@Example.com" if i % 2 else "race@example.COM",
            }
            return requests.post(
                f"{url_a if i % 2 else url_b}/users", json=body, timeout=60
            ).status_code

        statuses = sorted(all_at_once(post, 50))
        assert statuses == [201] + [409] * 49
        assert requests.get(f"{url_a}/users", timeout=10).json()["total"] == 1
    finally:
        stop_now(first, second)
    assert "Traceback" not in first.output() + second.output()


@pytest.mark.integration
def test_sigkill_mid_write_loses_no_acknowledged_user_and_leaves_no_partial_row(
    database_url,
):
    service, url = start_service("user_service", database_url, workers=2, threads=4)
    acknowledged: dict[str, str] = {}  # email -> name, for each 201 received

    def write(writer: int, i: int) -> None:
        email, name = f"w{writer}-{i}@kill.test", f"writer {writer} item {i}"
        response = requests.post(
            f"{url}/users", json={"name": name, "email": email}, timeout=10
        )
        if response.status_code == 201:
            acknowledged[email] = name

    sigkill_during_writes(service, write, acknowledged, at_least=60)
    [rows] = rows_after_crash(
        database_url, "SELECT email, name, created_at, updated_at FROM users"
    )
    stored = {email: name for email, name, *_ in rows}
    assert acknowledged.items() <= stored.items()  # every acknowledged write survived
    for email, name, created_at, updated_at in rows:  # and every stored row is whole
        writer, item = email.removesuffix("@kill.test").removeprefix("w").split("-")
        assert name == f"writer {writer} item {item}"
        assert created_at is not None and updated_at is not None


def test_pages_come_in_primary_key_order_at_100k_users(app, client):
    """A page never sorts the table: the primary key's order serves it (plans, not timings).
    OFFSET still walks the skipped keys: O(offset), see the README; `after` starts at its
    key (a search of the index, not a scan)."""
    now = datetime.now(UTC)
    rows = (
        {
            "name": f"user {i}",
            "email": f"u{i}@example.com",
            "created_at": now,
            "updated_at": now,
        }
        for i in range(BULK_ROWS)
    )
    with app.app_context(), db.engine.begin() as connection:
        bulk_insert(connection, USERS, rows)
        _, by_offset = page_statements(USERS, [], PageRequest(50, offset=99_950))
        _, by_key = page_statements(USERS, [], PageRequest(50, after=99_950))
        offset_plan = query_plan(connection, by_offset)
        key_plan = query_plan(connection, by_key)
    if connection.dialect.name == "sqlite":  # the rowid is the id
        assert offset_plan == "SCAN users", offset_plan
        assert key_plan == "SEARCH users USING INTEGER PRIMARY KEY (rowid>?)", key_plan
    else:
        for plan in (offset_plan, key_plan):
            assert "Sort" not in plan and "Index Scan users_pkey users" in plan, plan
        assert "Seq Scan" not in key_plan, key_plan
    page = client.get("/users?limit=50&offset=99950").json
    assert page["total"] == BULK_ROWS
    assert [u["id"] for u in page["items"]] == list(range(99_951, 100_001))
    page = client.get("/users?limit=50&after=99950").json
    assert (page["total"], page["next"]) == (None, None)
    assert [u["id"] for u in page["items"]] == list(range(99_951, 100_001))


@pytest.mark.parametrize("path", ["/users/\uff11", "/users/\u0661", "/users/1\u0662"])
def test_ids_in_paths_are_ascii_digits_only(client, path):
    """Other scripts' digits read as numbers would give one user a second path."""
    create(client)
    assert error_of(client.get(path), 404)["code"] == "not_found"


def test_bodiless_answers_name_no_content_type(client):
    user = create(client)
    deleted = client.delete(f"/users/{user['id']}")
    options = client.options("/users")
    assert (deleted.status_code, options.status_code) == (204, 200)
    assert "Content-Type" not in deleted.headers
    assert "Content-Type" not in options.headers and options.data == b""
    assert set(options.headers["Allow"].split(", ")) >= {"GET", "POST", "OPTIONS"}
