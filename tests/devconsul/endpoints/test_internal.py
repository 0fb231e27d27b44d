"""/v1/internal/*, the endpoints the web UI reads."""

import pytest

pytestmark = pytest.mark.integration


def test_ui_services_summary(module_api):
    module_api.register(
        {
            "ID": "a",
            "Name": "web",
            "Tags": ["v1"],
            "Check": {"TTL": "30s", "Status": "passing"},
        }
    )
    module_api.register({"ID": "b", "Name": "web", "Check": {"TTL": "30s"}})
    r = module_api.get("/v1/internal/ui/services")
    assert int(r.headers["X-Consul-Index"]) > 0
    summaries = {s["Name"]: s for s in r.json()}
    web = summaries["web"]
    assert (web["InstanceCount"], web["Tags"], web["Nodes"]) == (
        2,
        ["v1"],
        ["test-node"],
    )
    # serfHealth counts once per instance, as in Consul.
    assert (web["ChecksPassing"], web["ChecksWarning"], web["ChecksCritical"]) == (
        3,
        0,
        1,
    )
    assert summaries["consul"]["InstanceCount"] == 1


def test_ui_nodes_and_node(api):
    api.register({"Name": "web"})
    (node,) = api.get("/v1/internal/ui/nodes").json()
    assert node["Node"] == "test-node"
    assert sorted(s["ID"] for s in node["Services"]) == ["consul", "web"]
    assert [c["CheckID"] for c in node["Checks"]] == ["serfHealth"]
    assert api.get("/v1/internal/ui/node/test-node").json()["Node"] == "test-node"
    assert api.get("/v1/internal/ui/node/none").text == "null"


def test_acl_authorize_allows_everything(shared_api):
    r = shared_api.request(
        "POST",
        "/v1/internal/acl/authorize",
        json=[{"Resource": "service", "Access": "read"}],
    )
    assert r.json() == [{"Resource": "service", "Access": "read", "Allow": True}]
