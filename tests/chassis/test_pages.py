"""chassis.pages on a small table of its own: what a page holds, its count and its `next`
link. The services' tests check the same against their own tables at 100,000 rows, with
the query plans."""

from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import Column, Integer, MetaData, String, Table, insert

from chassis.inputs import PageRequest, page_params
from chassis.pages import page_statements, read_page
from chassis.service import ForwardedPrefix
from chassis.storage import init_database
from tests.support.services import DATABASE_KINDS, fresh_database

ITEMS = Table(
    "items",
    MetaData(),
    Column("id", Integer, primary_key=True),
    Column("colour", String(10), nullable=False),
)


@pytest.fixture(params=DATABASE_KINDS)
def client(request, tmp_path):
    """An app listing items (ids 1..7, red when odd) at /items and /colours/<colour>."""
    with fresh_database(request.param, tmp_path, "pages") as url:
        app = Flask(__name__, static_folder=None)
        app.wsgi_app = ForwardedPrefix(app.wsgi_app)
        db = SQLAlchemy()
        init_database(app, db, url)
        with app.app_context(), db.engine.begin() as connection:
            ITEMS.create(connection)
            connection.execute(
                insert(ITEMS),
                [{"id": i, "colour": "red" if i % 2 else "blue"} for i in range(1, 8)],
            )

        def as_json(row):
            return {"id": row.id}

        @app.get("/items")
        def items():
            return read_page(ITEMS, [], page_params(), as_json)

        @app.get("/colours/<colour>")
        def colour(colour):
            return read_page(ITEMS, [ITEMS.c.colour == colour], page_params(), as_json)

        yield app.test_client()
        with app.app_context():
            db.engine.dispose()


def ids(page: dict) -> list[int]:
    return [item["id"] for item in page["items"]]


def test_a_first_page_counts_and_links_the_next_by_keyset(client):
    page = client.get("/items?limit=3").json
    assert (ids(page), page["total"], page["offset"], page["after"]) == (
        [1, 2, 3],
        7,
        0,
        None,
    )
    assert page["next"] == "/items?limit=3&after=3"


def test_keyset_pages_leave_the_count_out_and_end_with_no_next(client):
    page = client.get("/items?limit=3&after=3").json
    assert (ids(page), page["total"], page["after"]) == ([4, 5, 6], None, 3)
    last = client.get(page["next"]).json
    assert (ids(last), last["next"]) == ([7], None)


def test_a_full_last_page_has_no_next(client):
    page = client.get("/items?limit=7").json
    assert (ids(page), page["next"]) == (list(range(1, 8)), None)


def test_offset_counts_from_after_and_next_drops_it(client):
    page = client.get("/items?offset=1&after=2&limit=2").json
    assert ids(page) == [4, 5]
    assert page["next"] == "/items?limit=2&after=5"


def test_next_keeps_the_filters_the_path_and_the_gateway_prefix(client):
    page = client.get(
        "/colours/red?limit=2&extra=kept", headers={"X-Forwarded-Prefix": "/api"}
    ).json
    assert ids(page) == [1, 3]
    link = urlsplit(page["next"])
    assert link.path == "/api/colours/red"
    assert parse_qs(link.query) == {"limit": ["2"], "extra": ["kept"], "after": ["3"]}
    following = page["next"].removeprefix("/api")  # as the gateway forwards it
    assert ids(client.get(following).json) == [5, 7]


@pytest.mark.parametrize(("after", "counted"), [(None, True), (0, False), (5, False)])
def test_only_pages_without_after_are_counted(after, counted):
    count, _ = page_statements(ITEMS, [], PageRequest(10, after=after))
    assert (count is not None) == counted
