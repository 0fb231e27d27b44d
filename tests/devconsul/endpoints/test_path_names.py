"""The names in catalog and health paths: refused when empty, and looked up
case-insensitively, as Consul's state store indexes them lowercased
(agent/consul/state/catalog_schema.go), while answers keep the names as
registered."""

import pytest

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(
    "path, text",
    [
        ("/v1/health/service/", "Missing service name"),
        ("/v1/health/checks/", "Missing service name"),
        ("/v1/health/connect/", "Missing service name"),
        ("/v1/health/state/", "Missing check state"),
        ("/v1/health/node/", "Missing node name"),
        ("/v1/catalog/service/", "Missing service name"),
        ("/v1/catalog/connect/", "Missing service name"),
        ("/v1/catalog/node/", "Missing node name"),
        ("/v1/catalog/node-services/", "Missing node name"),
    ],
)
def test_empty_name_is_refused(shared_api, path, text):
    """agent/health_endpoint.go and agent/catalog_endpoint.go answer 400
    before asking the state store."""
    r = shared_api.get(path)
    assert (r.status_code, r.text) == (400, text)


def _register_web(api):
    api.register(
        {
            "ID": "web-1",
            "Name": "Web",
            "Tags": ["Primary"],
            "Port": 80,
            "Check": {"TTL": "30s", "Status": "passing"},
        }
    )


def test_service_names_and_tags(api):
    _register_web(api)
    for path in ("/v1/health/service/web", "/v1/health/service/WEB?tag=primary"):
        (entry,) = api.get(path).json()
        assert (entry["Service"]["Service"], entry["Service"]["Tags"]) == (
            "Web",
            ["Primary"],
        )
    (row,) = api.get("/v1/catalog/service/wEb?tag=PRIMARY").json()
    assert row["ServiceName"] == "Web"
    assert api.get("/v1/catalog/service/web?tag=secondary").json() == []
    (check,) = api.get("/v1/health/checks/WEB").json()
    assert (check["CheckID"], check["ServiceName"]) == ("service:web-1", "Web")


def test_connect_names(api):
    api.register_web_with_sidecar()
    for path in ("/v1/health/connect/WEB", "/v1/catalog/connect/Web"):
        assert len(api.get(path).json()) == 1, path


def test_node_names(api):
    node = api.get("/v1/catalog/node/TEST-Node").json()
    assert node["Node"]["Node"] == "test-node"
    assert "consul" in node["Services"]
    listed = api.get("/v1/catalog/node-services/Test-Node").json()
    assert listed["Node"]["Node"] == "test-node"
    checks = api.get("/v1/health/node/TEST-NODE").json()
    assert [(c["CheckID"], c["Node"]) for c in checks] == [("serfHealth", "test-node")]
    assert api.get("/v1/internal/ui/node/Test-Node").json()["Node"] == "test-node"


def test_check_states(api):
    _register_web(api)
    passing = api.get("/v1/health/state/PASSING").json()
    assert {c["CheckID"] for c in passing} == {"serfHealth", "service:web-1"}
    # "any" alone is compared as sent (state.checksInStateTxn); "ANY" is
    # looked up as a status nothing has.
    assert api.get("/v1/health/state/ANY").json() == []


@pytest.mark.parametrize("path", ["/v1/health/service/WEB", "/v1/catalog/service/WEB"])
def test_watch_on_other_case_wakes(module_api, path):
    """Consul's per-service index entries are keyed lowercased too, so a
    watch on one spelling wakes when the service changes under another."""
    module_api.register({"ID": "w", "Name": "web", "Port": 1})
    index = module_api.get(path).headers["X-Consul-Index"]
    pending = module_api.block(path, index)
    assert pending.still_waiting(0.3)
    module_api.register({"ID": "w", "Name": "web", "Port": 2})
    woken = pending.response()
    assert int(woken.headers["X-Consul-Index"]) > int(index)
    (found,) = woken.json()
    assert found.get("ServicePort", found.get("Service", {}).get("Port")) == 2
