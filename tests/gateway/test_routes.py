import pytest

from discovery.instances import Instance
from gateway.routes import build_table, claimed_prefixes, valid_prefix

TABLE = build_table(
    {
        "user-service": {"/users"},
        "order-service": {"/orders"},
        "report-service": {"/orders/reports"},
        "gateway": set(),
    }
)


@pytest.mark.parametrize(
    ("path", "service"),
    [
        ("/users", "user-service"),
        ("/users/", "user-service"),
        ("/users/42", "user-service"),
        ("/users/42/orders", "user-service"),
        ("/orders", "order-service"),
        ("/orders/7", "order-service"),
        ("/orders/reports", "report-service"),
        ("/orders/reports/2024", "report-service"),
        ("/orders/reportsX", "order-service"),
        ("/usersX", None),
        ("/user", None),
        ("/", None),
        ("", None),
        ("/views/users/1", None),
    ],
)
def test_longest_whole_segment_prefix_wins(path, service):
    route = TABLE.match(path)
    assert (route.service if route else None) == service


def test_conflicting_claims_resolve_alphabetically_and_are_reported():
    table = build_table({"b-service": ["/x"], "a-service": ["/x"]})
    assert table.match("/x/1").service == "a-service"
    assert table.conflicts == {"/x": ("a-service", "b-service")}


def test_prefix_of():
    assert TABLE.prefix_of("order-service") == "/orders"
    assert TABLE.prefix_of("gateway") is None


@pytest.mark.parametrize(
    ("prefix", "ok"),
    [
        ("/users", True),
        ("/v2/users", True),
        ("/a.b", True),
        ("users", False),
        ("/", False),
        ("", False),
        ("/users/..", False),
        ("/.hidden", False),
        ("//users", False),
        ("/us ers", False),
        ("/us%2Fers", False),
    ],
)
def test_valid_prefix(prefix, ok):
    assert valid_prefix(prefix) is ok


def test_claims_come_from_instance_meta():
    instances = [
        Instance("a", "s", "127.0.0.1", 1, meta={"gateway_prefix": "/users/"}),
        Instance("b", "s", "127.0.0.1", 2, meta={"gateway_prefix": "bad"}),
        Instance("c", "s", "127.0.0.1", 3),
    ]
    assert claimed_prefixes(instances) == {"/users"}
