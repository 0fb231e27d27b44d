"""bench.upstream: the plain Flask app the proxies are measured against."""

from bench.upstream import ITEM, SERVED_BY, app


def test_item_is_json_and_names_its_instance():
    answer = app.test_client().get("/bench/item")
    assert answer.status_code == 200
    assert answer.get_json() == ITEM
    assert answer.headers["X-Served-By"] == SERVED_BY


def test_health_passes():
    assert app.test_client().get("/health").status_code == 200
