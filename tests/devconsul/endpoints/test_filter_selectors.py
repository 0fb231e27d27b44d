"""`filter` validates selectors per endpoint against the Go type Consul filters
there: a known field filters, an unknown one is a 500 with go-bexpr's text."""

import pytest

pytestmark = pytest.mark.integration

PREFIX = "Failed to create boolean expression evaluator: "

# (path, valid expression matching the "sel" instance, invalid selector, its message)
CASES = [
    (
        "/v1/agent/services",
        'Meta.team == "sel" and Weights.Passing == 3',
        "Datacenter == dc1",  # api.AgentService: bexpr:"-"
        'Selector "Datacenter" is not valid',
    ),
    (
        "/v1/agent/checks",
        'ServiceName == "sel-svc" and Type == ttl',
        "Definition.HTTP is empty",  # structs.HealthCheck: bexpr:"-"
        'Selector "Definition" is not valid',
    ),
    (
        "/v1/catalog/services",
        'ServiceMeta.team == "sel"',
        "Service == x",
        'Selector "Service" is not valid',
    ),
    (
        "/v1/catalog/service/sel-svc",
        '"blue" in ServiceTags and NodeMeta["consul-network-segment"] == ""',
        "ServiceMeta.team.x == a",
        'Selector "ServiceMeta.team.x" is not valid',
    ),
    (
        "/v1/catalog/nodes",
        'Node == "test-node" and TaggedAddresses.lan is not empty',
        "Services is empty",
        'Selector "Services" is not valid',
    ),
    (
        "/v1/health/service/sel-svc",
        'Service.Meta.team == "sel" and Checks.CheckID == serfHealth',
        "Service.Bogus==1",
        'Selector "Service.Bogus" is not valid',
    ),
    (
        "/v1/health/checks/sel-svc",
        '"blue" in ServiceTags',
        "Checks.Status == passing",
        'Selector "Checks" is not valid',
    ),
    (
        "/v1/health/state/any",
        'ServiceID == "sel"',
        "Service.ID == sel",
        'Selector "Service" is not valid',
    ),
    (
        "/v1/health/node/test-node",
        'ServiceName == "sel-svc"',
        "Datacenter == dc1",
        'Selector "Datacenter" is not valid',
    ),
    (
        "/v1/catalog/connect/sel-svc",
        "ServiceConnect.Native == true and ServicePort == 0",
        "Service == x",
        'Selector "Service" is not valid',
    ),
    (
        "/v1/health/connect/sel-svc",
        "Service.Connect.Native == true and Checks.Status == passing",
        "Service.Bogus==1",
        'Selector "Service.Bogus" is not valid',
    ),
]


@pytest.fixture(scope="module")
def registered(module_api):
    module_api.register(
        {
            "ID": "sel",
            "Name": "sel-svc",
            "Tags": ["blue"],
            "Meta": {"team": "sel"},
            "Weights": {"Passing": 3, "Warning": 1},
            "Connect": {"Native": True},
            "Check": {"TTL": "30s", "Status": "passing"},
        }
    )
    module_api.register({"ID": "other", "Name": "other-svc", "Tags": ["green"]})
    return module_api


@pytest.mark.parametrize(("path", "valid", "invalid", "message"), CASES)
def test_valid_selector_filters(registered, path, valid, invalid, message):
    total = len(registered.get(path).json())
    r = registered.get(path, params={"filter": valid})
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"] == "application/json"
    negated = registered.get(path, params={"filter": f"not ({valid})"})
    assert negated.status_code == 200, negated.text
    # Exactly the "sel" instance (or its check) matches; the rest does not.
    assert len(r.json()) == 1
    assert len(r.json()) + len(negated.json()) == total


@pytest.mark.parametrize(("path", "valid", "invalid", "message"), CASES)
def test_unknown_selector_is_500(registered, path, valid, invalid, message):
    r = registered.get(path, params={"filter": invalid})
    assert r.status_code == 500
    assert r.headers["Content-Type"].startswith("text/plain")
    assert r.text == PREFIX + message
