"""/v1/catalog/*."""

import pytest

import consul

pytestmark = pytest.mark.integration


def test_builtin_consul_service_and_node(api):
    r = api.get("/v1/catalog/services")
    assert r.json() == {"consul": []}
    assert int(r.headers["X-Consul-Index"]) >= 1
    (node,) = api.get("/v1/catalog/nodes").json()
    assert set(node) == {
        "ID",
        "Node",
        "Address",
        "Datacenter",
        "TaggedAddresses",
        "Meta",
        "CreateIndex",
        "ModifyIndex",
    }
    assert (node["Node"], node["Address"], node["Datacenter"]) == (
        "test-node",
        "127.0.0.1",
        "dc1",
    )
    assert node["TaggedAddresses"]["lan"] == "127.0.0.1"
    (consul_service,) = api.get("/v1/catalog/service/consul").json()
    assert (consul_service["ServiceID"], consul_service["ServicePort"]) == (
        "consul",
        8300,
    )
    assert api.get("/v1/catalog/datacenters").json() == ["dc1"]
    assert "X-Consul-Index" not in api.get("/v1/catalog/datacenters").headers


def test_services_union_of_tags_and_service_nodes(api):
    api.register(
        {
            "ID": "a",
            "Name": "web",
            "Tags": ["v1", "x"],
            "Address": "10.0.0.1",
            "Port": 80,
            "Meta": {"k": "v"},
        }
    )
    api.register({"ID": "b", "Name": "web", "Tags": ["v2", "x"], "Port": 81})
    assert api.get("/v1/catalog/services").json() == {
        "consul": [],
        "web": ["v1", "x", "v2"],
    }
    rows = api.get("/v1/catalog/service/web").json()
    assert [r["ServiceID"] for r in rows] == ["a", "b"]
    a = rows[0]
    assert (
        a["ServiceAddress"],
        a["ServicePort"],
        a["ServiceMeta"],
        a["ServiceTags"],
    ) == ("10.0.0.1", 80, {"k": "v"}, ["v1", "x"])
    assert a["ServiceWeights"] == {"Passing": 1, "Warning": 1}
    assert a["NodeMeta"] == {"consul-network-segment": ""}
    assert a["CreateIndex"] == a["ModifyIndex"] > 0
    assert [
        r["ServiceID"] for r in api.get("/v1/catalog/service/web?tag=x&tag=v2").json()
    ] == ["b"]
    assert api.get("/v1/catalog/service/none").json() == []
    node = api.get("/v1/catalog/node/test-node").json()
    assert set(node["Services"]) == {"consul", "a", "b"}
    r = api.get("/v1/catalog/node/nope")
    assert (r.status_code, r.text) == (200, "null")


def test_catalog_register_and_deregister_external_node(api):
    r = api.put(
        "/v1/catalog/register",
        json={
            "Node": "ext",
            "Address": "10.1.1.1",
            "Service": {"Service": "db", "Port": 5432},
            "Check": {
                "CheckID": "db-ok",
                "Name": "db",
                "Status": "passing",
                "ServiceID": "db",
            },
        },
    )
    assert (r.status_code, r.json()) == (200, True)
    (entry,) = api.get("/v1/health/service/db?passing").json()
    assert entry["Node"]["Address"] == "10.1.1.1"
    assert "db" not in api.get("/v1/agent/services").json()
    assert api.put("/v1/catalog/deregister", json={"Node": "ext"}).json() is True
    assert [n["Node"] for n in api.get("/v1/catalog/nodes").json()] == ["test-node"]
    r = api.put("/v1/catalog/register", json={"Node": "ext"})
    assert r.status_code == 400


def test_catalog_register_keeps_the_whole_node_service(api):
    """Catalog entries take the same service fields as agent registrations."""
    service = {
        "ID": "cache-1",
        "Service": "cache",
        "Tags": ["a"],
        "Meta": {"tier": "hot"},
        "Port": 6379,
        "TaggedAddresses": {"wan": {"Address": "198.51.100.7", "Port": 16379}},
        "Weights": {"Passing": 4},
    }
    r = api.put(
        "/v1/catalog/register",
        json={"Node": "ext", "Address": "10.1.1.2", "Service": service},
    )
    assert r.status_code == 200, r.text
    (row,) = api.get("/v1/catalog/service/cache").json()
    assert row["ServiceTaggedAddresses"] == {
        "wan": {"Address": "198.51.100.7", "Port": 16379}
    }
    assert row["ServiceWeights"] == {"Passing": 4, "Warning": 1}
    assert (row["ServiceMeta"], row["ServiceTags"]) == ({"tier": "hot"}, ["a"])


def test_blocking_catalog_services(module_api):
    index = module_api.get("/v1/catalog/services").headers["X-Consul-Index"]
    pending = module_api.block("/v1/catalog/services", index)
    assert pending.still_waiting(0.3)
    module_api.register({"Name": "new"})
    assert "new" in pending.response().json()


def test_py_consul_catalog(devconsul):
    c = consul.Consul(host="127.0.0.1", port=devconsul.port)
    c.agent.service.register("cat", service_id="cat-1", port=9, tags=["t"])
    index, services = c.catalog.services()
    assert int(index) > 0
    assert services == {"cat": ["t"], "consul": []}
    _, nodes = c.catalog.service("cat")
    assert nodes[0]["ServiceID"] == "cat-1"
    _, nodes = c.catalog.nodes()
    assert nodes[0]["Node"] == "test-node"


@pytest.mark.parametrize(
    "path",
    [
        "/v1/catalog/services",
        "/v1/catalog/nodes",
        "/v1/catalog/service/consul",
        "/v1/catalog/node/test-node",
        "/v1/catalog/connect/consul",
    ],
)
def test_foreign_datacenter(shared_api, path):
    r = shared_api.get(path, params={"dc": "elsewhere"})
    assert (r.status_code, r.text) == (500, "No path to datacenter")
    assert shared_api.get(path, params={"dc": "dc1"}).status_code == 200


def test_register_in_another_datacenter_has_no_path(api):
    """py-consul puts ``dc`` in the body's Datacenter, the field Consul routes
    catalog writes by (agent/catalog_endpoint.go, CatalogRegister)."""
    c = consul.Consul(host="127.0.0.1", port=api.agent.port)
    with pytest.raises(consul.ConsulException, match="No path to datacenter"):
        c.catalog.register("ext", "10.0.0.9", service={"service": "db"}, dc="dc2")
    with pytest.raises(consul.ConsulException, match="No path to datacenter"):
        c.catalog.deregister("test-node", service_id="consul", dc="dc2")
    assert c.catalog.register("ext", "10.0.0.9", dc="dc1") is True
    elsewhere = consul.Consul(host="127.0.0.1", port=api.agent.port, dc="dc2")
    with pytest.raises(consul.ConsulException, match="No path to datacenter"):
        elsewhere.health.service("ext")
    assert [n["Node"] for n in c.catalog.nodes()[1]] == ["ext", "test-node"]
    r = api.put(
        "/v1/catalog/register",
        json={"Node": "x", "Address": "10.0.0.1", "Datacenter": "dc2"},
    )
    assert (r.status_code, r.text) == (500, "No path to datacenter")


def test_catalog_writes_read_no_dc_query(api):
    """CatalogRegister/CatalogDeregister never call parseDC: a ?dc= is not read
    and the write lands in the body's (default: the agent's) datacenter
    (agent/catalog_endpoint.go)."""
    body = {"Node": "ext", "Address": "10.0.0.1"}
    r = api.put("/v1/catalog/register", json=body, params={"dc": "dc2"})
    assert (r.status_code, r.json()) == (200, True)
    assert api.get("/v1/catalog/node/ext").json()["Node"]["Datacenter"] == "dc1"


def test_node_filter_narrows_its_services(api):
    """?filter on /v1/catalog/node/:node selects among the node's services
    (structs.NodeService selectors, as documented for that endpoint)."""
    api.register({"ID": "w1", "Name": "web", "Tags": ["v1"]})
    api.register({"ID": "d1", "Name": "db"})
    r = api.get("/v1/catalog/node/test-node", params={"filter": "Service == web"})
    assert set(r.json()["Services"]) == {"w1"}
    assert int(r.headers["X-Consul-Index"]) > 0
    c = consul.Consul(host="127.0.0.1", port=api.agent.port)
    _, node = c.catalog.node("test-node", filter_expr='"v1" not in Tags')
    assert set(node["Services"]) == {"consul", "d1"}
    bad = api.get("/v1/catalog/node/test-node", params={"filter": "Nope == 1"})
    assert bad.status_code == 500
    assert 'Selector "Nope" is not valid' in bad.text


def test_connect_lists_proxies_and_native_instances(api):
    """/v1/catalog/connect/:service (agent/catalog_endpoint.go,
    CatalogConnectServiceNodes): sidecar proxies by Proxy.DestinationServiceName
    and Connect-native instances, never the plain service."""
    api.register_web_with_sidecar()
    api.register({"ID": "pay-1", "Name": "pay", "Connect": {"Native": True}})
    r = api.get("/v1/catalog/connect/web")
    assert r.status_code == 200
    assert [(s["ServiceID"], s["ServiceKind"]) for s in r.json()] == [
        ("web-1-sidecar", "connect-proxy")
    ]
    assert r.json()[0]["ServiceProxy"]["DestinationServiceName"] == "web"
    assert int(r.headers["X-Consul-Index"]) > 0
    c = consul.Consul(host="127.0.0.1", port=api.agent.port)
    _, native = c.catalog.connect("pay", merge_central_config=True)
    assert [s["ServiceID"] for s in native] == ["pay-1"]
    empty = api.get("/v1/catalog/connect/nobody")
    assert (empty.status_code, empty.json()) == (200, [])
    assert "X-Consul-Index" in empty.headers
    filtered = api.get("/v1/catalog/connect/web", params={"filter": "ServicePort == 1"})
    assert filtered.json() == []


def test_connect_blocks_until_a_proxy_appears(module_api):
    index = module_api.get("/v1/catalog/connect/late").headers["X-Consul-Index"]
    pending = module_api.block("/v1/catalog/connect/late", index)
    assert pending.still_waiting(0.3)
    module_api.register(
        {
            "Name": "late-proxy",
            "Kind": "connect-proxy",
            "Port": 21001,
            "Proxy": {"DestinationServiceName": "late"},
        }
    )
    r = pending.response()
    assert [s["ServiceName"] for s in r.json()] == ["late-proxy"]
    assert int(r.headers["X-Consul-Index"]) > int(index)


@pytest.mark.parametrize(
    ("path", "empty"),
    [
        ("/v1/catalog/services", {}),
        ("/v1/catalog/nodes", []),
        ("/v1/catalog/service/consul", []),
        ("/v1/catalog/node/test-node", None),
        ("/v1/catalog/node-services/test-node", {"Node": None, "Services": None}),
    ],
)
def test_peer_with_nothing_imported(shared_api, path, empty):
    """?peer=NAME reads what that cluster peer exported; this agent has no
    peerings, so nothing (Consul's state store finds no rows for the PeerName)."""
    r = shared_api.get(path, params={"peer": "elsewhere"})
    assert (r.status_code, r.json()) == (200, empty)
    assert int(r.headers["X-Consul-Index"]) > 0
    assert shared_api.get(path).json() != empty


def test_py_consul_peer(shared_devconsul):
    c = consul.Consul(host="127.0.0.1", port=shared_devconsul.port)
    assert c.catalog.service("consul", peer="elsewhere")[1] == []
    assert len(c.catalog.service("consul")[1]) == 1


def test_node_services_lists_and_filters(api):
    """/v1/catalog/node-services/:node (agent/catalog_endpoint.go,
    CatalogNodeServiceList): services as a list, ?filter with NodeService
    selectors, both fields null for an unknown node."""
    api.register({"ID": "w1", "Name": "web", "Tags": ["v1"]})
    r = api.get("/v1/catalog/node-services/test-node")
    body = r.json()
    assert body["Node"]["Node"] == "test-node"
    assert [s["ID"] for s in body["Services"]] == ["consul", "w1"]
    assert int(r.headers["X-Consul-Index"]) > 0
    r = api.get(
        "/v1/catalog/node-services/test-node",
        params={"filter": '"v1" in Tags', "merge-central-config": ""},
    )
    assert [s["ID"] for s in r.json()["Services"]] == ["w1"]
    r = api.get("/v1/catalog/node-services/nope")
    assert (r.status_code, r.json()) == (200, {"Node": None, "Services": None})
    r = api.get("/v1/catalog/node-services/")
    assert (r.status_code, r.text) == (400, "Missing node name")
    index = api.get("/v1/catalog/node-services/test-node").headers["X-Consul-Index"]
    pending = api.block("/v1/catalog/node-services/test-node", index)
    assert pending.still_waiting(0.3)
    api.register({"ID": "w2", "Name": "web"})
    assert [s["ID"] for s in pending.response().json()["Services"]] == [
        "consul",
        "w1",
        "w2",
    ]
