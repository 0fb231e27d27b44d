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


def test_a_register_in_another_case_is_the_same_node(api):
    """Consul's nodes table is keyed by the lowercased name: registering
    "DB-1" beside "db-1" updates that node, which keeps its spelling
    (RegisterRequest.ChangesNode and Node.IsSame compare it with EqualFold),
    and its services and checks hang off it."""
    first = {"Node": "db-1", "Address": "10.0.0.1"}
    assert api.put("/v1/catalog/register", json=first).json() is True
    again = {
        "Node": "DB-1",
        "Address": "10.0.0.2",
        "Service": {"ID": "pg", "Service": "pg"},
        "Check": {"CheckID": "pg-up", "ServiceID": "pg", "Status": "passing"},
    }
    assert api.put("/v1/catalog/register", json=again).json() is True
    nodes = api.get("/v1/catalog/nodes").json()
    assert [(n["Node"], n["Address"]) for n in nodes if n["Node"] != "test-node"] == [
        ("db-1", "10.0.0.2")
    ]
    (entry,) = api.get("/v1/health/service/pg").json()
    assert entry["Node"]["Node"] == "db-1"
    assert [(c["CheckID"], c["Node"]) for c in entry["Checks"]] == [("pg-up", "db-1")]
    assert set(api.get("/v1/catalog/node/Db-1").json()["Services"]) == {"pg"}
    gone = {"Node": "DB-1", "ServiceID": "pg"}
    assert api.put("/v1/catalog/deregister", json=gone).json() is True
    assert api.get("/v1/catalog/service/pg").json() == []
    assert api.put("/v1/catalog/deregister", json={"Node": "dB-1"}).json() is True
    assert api.get("/v1/catalog/node/db-1").json() is None


def test_coordinates_of_a_node_in_any_case(api):
    api.put("/v1/catalog/register", json={"Node": "db-1", "Address": "10.0.0.1"})
    coord = {"Vec": [0.0] * 8, "Error": 1.5, "Adjustment": 0.0, "Height": 1e-5}
    r = api.put("/v1/coordinate/update", json={"Node": "DB-1", "Coord": coord})
    assert r.status_code == 200
    (row,) = api.get("/v1/coordinate/node/Db-1").json()
    assert (row["Node"], row["Coord"]["Error"]) == ("db-1", 1.5)


def test_session_node_names(api):
    """Consul finds a session's node and checks through the lowercased nodes
    and checks indexes and a node's sessions through the lowercased sessions
    node index; the session keeps the name as sent, and a failing check or a
    deleted node still ends it."""
    created = api.put(
        "/v1/session/create", json={"Node": "TEST-NODE", "NodeChecks": ["serfHealth"]}
    )
    assert created.status_code == 200, created.text
    (listed,) = api.get("/v1/session/node/Test-Node").json()
    assert (listed["ID"], listed["Node"]) == (created.json()["ID"], "TEST-NODE")

    def register_db(status):
        check = {"CheckID": "up", "Status": status}
        body = {"Node": "db-1", "Address": "10.0.0.1", "Check": check}
        assert api.put("/v1/catalog/register", json=body).json() is True

    def session_on_db():
        body = {"Node": "DB-1", "NodeChecks": ["up"]}
        r = api.put("/v1/session/create", json=body)
        assert r.status_code == 200, r.text
        (listed,) = api.get("/v1/session/node/db-1").json()
        assert listed["ID"] == r.json()["ID"]

    register_db("passing")
    session_on_db()
    register_db("critical")
    assert api.get("/v1/session/node/db-1").json() == []
    register_db("passing")
    session_on_db()
    api.put("/v1/catalog/deregister", json={"Node": "Db-1"})
    assert api.get("/v1/session/node/db-1").json() == []


def test_service_and_check_ids_in_another_case_are_the_same_records(api):
    """Consul's services and checks tables key the (node, ID) pair lowercased:
    a catalog register of "Web-1" beside "web-1" replaces it (taking the new
    spelling, keeping its CreateIndex), a check's ServiceID finds its service
    in any case, and a deregister in any case removes the service and every
    check of it."""
    node = {"Node": "db-1", "Address": "10.0.0.1"}

    def register(**body):
        assert api.put("/v1/catalog/register", json={**node, **body}).json() is True

    register(Service={"ID": "web-1", "Service": "web", "Port": 1})
    (first,) = api.get("/v1/catalog/service/web").json()
    register(
        Service={"ID": "Web-1", "Service": "web", "Port": 2},
        Checks=[
            {"CheckID": "up", "ServiceID": "WEB-1", "Status": "passing"},
            {"CheckID": "UP", "ServiceID": "web-1", "Status": "warning"},
        ],
    )
    (row,) = api.get("/v1/catalog/service/web").json()
    assert (row["ServiceID"], row["ServicePort"]) == ("Web-1", 2)
    assert row["CreateIndex"] == first["CreateIndex"] < row["ModifyIndex"]
    (entry,) = api.get("/v1/health/service/web").json()
    checks = [(c["CheckID"], c["ServiceID"], c["Status"]) for c in entry["Checks"]]
    assert checks == [("UP", "web-1", "warning")]
    assert set(api.get("/v1/catalog/node/db-1").json()["Services"]) == {"Web-1"}

    gone = {"Node": "db-1", "ServiceID": "wEB-1"}
    assert api.put("/v1/catalog/deregister", json=gone).json() is True
    assert api.get("/v1/catalog/service/web").json() == []
    assert api.get("/v1/health/node/db-1").json() == []

    register(Check={"CheckID": "Disk", "Status": "passing"})
    assert api.put(
        "/v1/catalog/deregister", json={"Node": "db-1", "CheckID": "DISK"}
    ).json()
    assert api.get("/v1/health/node/db-1").json() == []


def test_the_agent_matches_its_own_ids_exactly(api):
    """The agent's local state (agent/local) keys services and checks by the
    exact ID, so the agent endpoints find "web-1" only as "web-1"; a catalog
    deregister finds it in any case."""
    api.register({"ID": "web-1", "Name": "web", "Check": {"TTL": "30s"}})
    assert api.get("/v1/agent/service/WEB-1").status_code == 404
    assert api.get("/v1/agent/health/service/id/WEB-1").status_code == 404
    assert api.put("/v1/agent/check/pass/SERVICE:WEB-1").status_code == 404
    assert api.put("/v1/agent/service/deregister/Web-1").status_code == 404
    check = {"Name": "extra", "TTL": "30s", "ServiceID": "WEB-1"}
    assert api.put("/v1/agent/check/register", json=check).status_code == 404
    assert api.put("/v1/agent/check/pass/service:web-1").status_code == 200

    gone = {"Node": "test-node", "ServiceID": "WEB-1"}
    assert api.put("/v1/catalog/deregister", json=gone).json() is True
    assert api.get("/v1/agent/services").json() == {}
    assert api.get("/v1/agent/checks").json() == {}


def test_agent_checks_whose_ids_differ_in_case_are_two(api):
    """Consul's agent keys its checks by the exact ID: "Disk" beside "disk"
    is a second check, each running on its own. The catalog keys them
    lowercased and holds one, the one registered last; a result of the other
    stays at the agent, and removing the one the catalog holds brings the
    other back (as Consul's next anti-entropy sync would)."""
    check = {"Name": "disk", "TTL": "30s", "Status": "passing"}
    assert api.put("/v1/agent/check/register", json=check).status_code == 200
    again = {"ID": "Disk", "Name": "disk", "TTL": "30s"}
    assert api.put("/v1/agent/check/register", json=again).status_code == 200

    def statuses(path):
        checks = _listed(api.get(path).json())
        return [(c["CheckID"], c["Status"]) for c in checks if c["Type"] == "ttl"]

    agent_view = [("Disk", "critical"), ("disk", "passing")]
    assert statuses("/v1/agent/checks") == agent_view
    assert statuses("/v1/health/state/any") == [("Disk", "critical")]
    assert api.put("/v1/agent/check/warn/disk").status_code == 200
    assert statuses("/v1/agent/checks") == [("Disk", "critical"), ("disk", "warning")]
    assert statuses("/v1/health/state/any") == [("Disk", "critical")]

    assert api.put("/v1/agent/check/deregister/Disk").status_code == 200
    assert statuses("/v1/agent/checks") == [("disk", "warning")]
    assert statuses("/v1/health/state/any") == [("disk", "warning")]


def _listed(answer):
    return list(answer.values()) if isinstance(answer, dict) else answer


def test_session_checks_in_any_case(api):
    """Consul's session_checks table keys the check ID lowercased: a session
    names its check in any case, and that check failing ends it."""
    body = {"Node": "db-1", "Address": "10.0.0.1"}

    def check(status):
        register = {**body, "Check": {"CheckID": "up", "Status": status}}
        assert api.put("/v1/catalog/register", json=register).json() is True

    check("passing")
    created = api.put("/v1/session/create", json={"Node": "db-1", "NodeChecks": ["UP"]})
    assert created.status_code == 200, created.text
    assert len(api.get("/v1/session/node/db-1").json()) == 1
    check("critical")
    assert api.get("/v1/session/node/db-1").json() == []


def test_agent_services_whose_ids_differ_in_case_are_two(api):
    """Consul's agent keys its services by the exact ID (agent/local), so
    "Web-1" beside "web-1" is a second service with a check of its own. The
    catalog keys (node, ID) lowercased and holds one: Consul's anti-entropy
    pushes whichever the catalog lacks at every full sync, so there it
    alternates; here the one registered last stays. Deregistering it brings
    the other back, where Consul's next sync would leave it."""
    api.register({"ID": "web-1", "Name": "web", "Port": 1, "Check": {"TTL": "30s"}})
    api.register({"ID": "Web-1", "Name": "web", "Port": 2, "Check": {"TTL": "30s"}})
    assert list(api.get("/v1/agent/services").json()) == ["Web-1", "web-1"]
    assert list(api.get("/v1/agent/checks").json()) == [
        "service:Web-1",
        "service:web-1",
    ]
    by_name = api.get("/v1/agent/health/service/name/web").json()
    assert sorted(r["Service"]["ID"] for r in by_name) == ["Web-1", "web-1"]

    def catalog():
        (row,) = api.get("/v1/catalog/service/web").json()
        (entry,) = api.get("/v1/health/service/web").json()
        checks = [(c["CheckID"], c["Status"]) for c in entry["Checks"]]
        return row["ServiceID"], row["ServicePort"], entry["Service"]["ID"], checks

    serf = ("serfHealth", "passing")
    assert catalog() == ("Web-1", 2, "Web-1", [serf, ("service:Web-1", "critical")])
    assert api.put("/v1/agent/check/pass/service:web-1").status_code == 200
    assert api.get("/v1/agent/health/service/id/web-1").status_code == 200
    assert api.get("/v1/agent/health/service/id/Web-1").status_code == 503
    assert catalog() == ("Web-1", 2, "Web-1", [serf, ("service:Web-1", "critical")])

    assert api.put("/v1/agent/service/deregister/Web-1").status_code == 200
    assert list(api.get("/v1/agent/services").json()) == ["web-1"]
    assert list(api.get("/v1/agent/checks").json()) == ["service:web-1"]
    assert catalog() == ("web-1", 1, "web-1", [serf, ("service:web-1", "passing")])


def test_agent_maps_are_in_go_key_order(api):
    """Go's encoding/json writes a map's keys sorted bytewise, capitals
    first, whatever order the catalog keeps them in."""
    for service_id in ("api", "Web", "db"):
        api.register({"ID": service_id, "Name": "s", "Check": {"TTL": "30s"}})
    assert list(api.get("/v1/agent/services").json()) == ["Web", "api", "db"]
    services = api.get("/v1/catalog/node/test-node").json()["Services"]
    assert list(services) == ["Web", "api", "consul", "db"]
    assert list(api.get("/v1/agent/checks").json()) == [
        "service:Web",
        "service:api",
        "service:db",
    ]
