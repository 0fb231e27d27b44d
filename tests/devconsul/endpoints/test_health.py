"""/v1/health/* with blocking queries, raw and through py-consul."""

import threading
import time

import pytest

import consul
from tests.support.processes import wait_until

pytestmark = pytest.mark.integration


def _register_pair(api):
    api.register(
        {
            "ID": "u-a",
            "Name": "users",
            "Tags": ["v1"],
            "Address": "127.0.0.1",
            "Port": 1,
            "Check": {"TTL": "30s", "Status": "passing"},
        }
    )
    api.register({"ID": "u-b", "Name": "users", "Port": 2, "Check": {"TTL": "30s"}})


def test_service_shape_headers_and_passing(api):
    _register_pair(api)
    r = api.get("/v1/health/service/users")
    assert r.headers["Content-Type"] == "application/json"
    assert r.headers["X-Consul-KnownLeader"] == "true"
    assert r.headers["X-Consul-LastContact"] == "0"
    assert int(r.headers["X-Consul-Index"]) > 0
    first, second = r.json()
    assert set(first) == {"Node", "Service", "Checks"}
    assert first["Node"]["Node"] == "test-node"
    assert first["Node"]["Meta"] == {"consul-network-segment": ""}
    assert first["Service"]["ID"] == "u-a" and second["Service"]["Address"] == ""
    assert [c["CheckID"] for c in first["Checks"]] == ["serfHealth", "service:u-a"]
    serf = first["Checks"][0]
    assert (serf["Name"], serf["Status"], serf["Output"], serf["ServiceTags"]) == (
        "Serf Health Status",
        "passing",
        "Agent alive and reachable",
        [],
    )
    assert first["Checks"][1]["ServiceTags"] == ["v1"]
    passing = api.get("/v1/health/service/users", params={"passing": ""}).json()
    assert [e["Service"]["ID"] for e in passing] == ["u-a"]
    assert api.get("/v1/health/service/users?passing=false").json() == r.json()
    assert (
        api.get("/v1/health/service/users?tag=v1").json()[0]["Service"]["ID"] == "u-a"
    )
    bad = api.get("/v1/health/service/users?passing=maybe")
    assert (bad.status_code, bad.text) == (400, "Invalid value for ?passing")
    assert api.get("/v1/health/service/nobody").json() == []


def test_warning_is_not_passing(module_api):
    module_api.register({"Name": "w", "Check": {"TTL": "30s", "Status": "warning"}})
    assert module_api.get("/v1/health/service/w?passing=1").json() == []


def test_checks_state_and_node(api):
    _register_pair(api)
    checks = api.get("/v1/health/checks/users").json()
    assert [c["CheckID"] for c in checks] == ["service:u-a", "service:u-b"]
    critical = api.get("/v1/health/state/critical").json()
    assert [c["CheckID"] for c in critical] == ["service:u-b"]
    assert len(api.get("/v1/health/state/any").json()) == 3
    assert api.get("/v1/health/state/bogus").json() == []
    node = api.get("/v1/health/node/test-node").json()
    assert {c["CheckID"] for c in node} == {"serfHealth", "service:u-a", "service:u-b"}
    assert api.get("/v1/health/node/other").json() == []


def test_foreign_datacenter_and_consistency_conflict(shared_api):
    for path in (
        "/v1/health/service/x",
        "/v1/health/connect/x",
        "/v1/health/state/any",
    ):
        r = shared_api.get(path, params={"dc": "dc2"})
        assert (r.status_code, r.text) == (500, "No path to datacenter")
    assert shared_api.get("/v1/health/service/x?dc=dc1").status_code == 200
    r = shared_api.get("/v1/health/service/x?stale&consistent")
    assert r.status_code == 400


def test_filter_on_entries(api):
    _register_pair(api)
    r = api.get("/v1/health/service/users", params={"filter": '"v1" in Service.Tags'})
    assert [e["Service"]["ID"] for e in r.json()] == ["u-a"]


def _blocked_get(api, path, index, wait="10s"):
    result = {}

    def run():
        start = time.monotonic()
        result["response"] = api.get(path, params={"index": index, "wait": wait})
        result["elapsed"] = time.monotonic() - start

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, result


def test_blocking_wakes_on_a_real_change_only(module_api):
    module_api.register({"Name": "b", "Check": {"TTL": "30s"}})
    module_api.put("/v1/agent/check/pass/service:b", params={"note": "ok"})
    index = module_api.get("/v1/health/service/b").headers["X-Consul-Index"]
    thread, result = _blocked_get(module_api, "/v1/health/service/b", index)
    # Same status, same output: nothing changed, the watcher stays blocked.
    module_api.put("/v1/agent/check/pass/service:b", params={"note": "ok"})
    # An identical re-registration (anti-entropy), other services and KV
    # writes do not wake it either.
    module_api.register({"Name": "b", "Check": {"TTL": "30s"}})
    module_api.register({"Name": "other"})
    module_api.put("/v1/kv/x", data=b"1")
    thread.join(0.5)
    assert thread.is_alive()
    module_api.put("/v1/agent/check/fail/service:b")
    thread.join(5)
    assert not thread.is_alive()
    r = result["response"]
    assert int(r.headers["X-Consul-Index"]) > int(index)
    assert r.json()[0]["Checks"][1]["Status"] == "critical"


def test_blocking_times_out_with_same_index(shared_api):
    index = shared_api.get("/v1/health/service/quiet").headers["X-Consul-Index"]
    start = time.monotonic()
    r = shared_api.get(
        "/v1/health/service/quiet", params={"index": index, "wait": "300ms"}
    )
    elapsed = time.monotonic() - start
    assert 0.29 <= elapsed < 3
    assert r.headers["X-Consul-Index"] == index


def test_index_ahead_of_agent_answers_at_once(shared_api):
    start = time.monotonic()
    r = shared_api.get("/v1/health/service/x", params={"index": 10**9, "wait": "5s"})
    assert time.monotonic() - start < 2
    assert r.status_code == 200


def test_bad_index_and_wait(shared_api):
    r = shared_api.get("/v1/health/service/x?index=abc")
    assert (r.status_code, r.text) == (400, "Invalid index")
    r = shared_api.get("/v1/health/service/x?index=1&wait=5")
    assert (r.status_code, r.text) == (400, "Invalid wait time")


def test_py_consul_health_with_index_and_wait(devconsul):
    c = consul.Consul(host="127.0.0.1", port=devconsul.port)
    c.agent.service.register(
        "pc", service_id="pc-1", port=1, check=consul.Check.ttl("30s")
    )
    index, nodes = c.health.service("pc", passing=True)
    assert nodes == []
    done = {}

    def watch():
        done["result"] = c.health.service("pc", passing=True, index=index, wait="10s")

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    c.agent.check.ttl_pass("service:pc-1")
    thread.join(5)
    new_index, nodes = done["result"]
    assert int(new_index) > int(index)
    assert [n["Service"]["ID"] for n in nodes] == ["pc-1"]
    assert c.health.checks("pc")[1][0]["Status"] == "passing"
    assert len(c.health.state("passing")[1]) == 2
    assert len(c.health.node("test-node")[1]) == 2


def test_http_check_drives_passing_set(module_api, target):
    module_api.register(
        {"Name": "live", "Check": {"HTTP": f"{target.url}/health", "Interval": "1s"}}
    )
    wait_until(
        lambda: module_api.get("/v1/health/service/live?passing").json(), timeout=5
    )
    target.routes["/health"] = (500, "no")
    wait_until(
        lambda: module_api.get("/v1/health/service/live?passing").json() == [],
        timeout=5,
    )


def test_connect_entries_with_checks(api):
    """/v1/health/connect/:service (agent/health_endpoint.go, healthServiceNodes
    with args.Connect): the Connect-capable instances as health entries, with
    ?passing, blocking and index headers like /v1/health/service."""
    api.register_web_with_sidecar({"CheckID": "proxy-ttl", "TTL": "30s"})
    r = api.get("/v1/health/connect/web")
    (entry,) = r.json()
    assert entry["Service"]["ID"] == "web-1-sidecar"
    assert [c["CheckID"] for c in entry["Checks"]] == ["serfHealth", "proxy-ttl"]
    index = r.headers["X-Consul-Index"]
    c = consul.Consul(host="127.0.0.1", port=api.agent.port)
    assert c.health.connect("web", passing=True)[1] == []
    pending = api.block("/v1/health/connect/web?passing", index)
    assert pending.still_waiting(0.3)
    assert api.put("/v1/agent/check/pass/proxy-ttl").status_code == 200
    (woken,) = pending.response().json()
    assert woken["Service"]["ID"] == "web-1-sidecar"
    _, entries = c.health.connect("web", passing=True, merge_central_config=True)
    assert [e["Service"]["ID"] for e in entries] == ["web-1-sidecar"]
    assert api.get("/v1/health/connect/nobody").json() == []


@pytest.mark.parametrize(
    "path",
    [
        "/v1/health/service/consul",
        "/v1/health/checks/consul",
        "/v1/health/node/test-node",
        "/v1/health/state/any",
    ],
)
def test_peer_with_nothing_imported(shared_api, path):
    """?peer=NAME: nothing was imported from any peer, so Consul finds no rows."""
    r = shared_api.get(path, params={"peer": "elsewhere"})
    assert (r.status_code, r.json()) == (200, [])
    assert int(r.headers["X-Consul-Index"]) > 0


def test_py_consul_peer(shared_devconsul):
    c = consul.Consul(host="127.0.0.1", port=shared_devconsul.port)
    assert c.health.service("consul", peer="elsewhere")[1] == []
