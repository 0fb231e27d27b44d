"""/v1/agent/* through raw HTTP and py-consul against a real agent process."""

import os
import sys

import pytest

import consul
from devconsul.definitions import SCRIPTS_DISABLED
from tests.conftest import Agent
from tests.devconsul.conftest import Api
from tests.support.processes import free_port, wait_until

pytestmark = pytest.mark.integration


def test_register_and_list_services_raw(api, target):
    api.register(
        {
            "ID": "web-1",
            "Name": "web",
            "Tags": ["v1"],
            "Address": "127.0.0.1",
            "Port": target.port,
            "Meta": {"version": "1"},
            "Weights": {"Passing": 3, "Warning": 1},
            "Check": None,
            "Checks": None,
        }
    )
    r = api.get("/v1/agent/services")
    assert r.headers["Content-Type"] == "application/json"
    assert "X-Consul-Index" not in r.headers
    assert r.json() == {
        "web-1": {
            "ID": "web-1",
            "Service": "web",
            "Tags": ["v1"],
            "Meta": {"version": "1"},
            "Port": target.port,
            "Address": "127.0.0.1",
            "TaggedAddresses": {
                "lan_ipv4": {"Address": "127.0.0.1", "Port": target.port},
                "wan_ipv4": {"Address": "127.0.0.1", "Port": target.port},
            },
            "Weights": {"Passing": 3, "Warning": 1},
            "EnableTagOverride": False,
            "Datacenter": "dc1",
        }
    }


def test_successful_write_is_200_with_empty_body(api):
    r = api.put("/v1/agent/service/register", json={"name": "x"})
    assert (r.status_code, r.content) == (200, b"")


@pytest.mark.parametrize(
    ("body", "status", "text"),
    [
        (
            b"{not json",
            400,
            "Request decode failed: invalid character 'n' looking for beginning of object key string",
        ),
        (b"", 400, "Request decode failed: EOF"),
        (b'{"ID": "x"}', 400, "Missing service name"),
        (
            b'{"Name": "x", "Check": {"TTL": "soon"}}',
            400,
            'Request decode failed: time: invalid duration "soon"',
        ),
    ],
)
def test_register_errors_are_plain_text(shared_api, body, status, text):
    r = shared_api.put("/v1/agent/service/register", data=body)
    assert (r.status_code, r.text) == (status, text)
    assert r.headers["Content-Type"] == "text/plain; charset=utf-8"


def test_write_endpoints_are_put_only(shared_api):
    r = shared_api.get("/v1/agent/service/deregister/anything")
    assert (r.status_code, r.text, r.headers["Allow"]) == (
        405,
        "method GET not allowed",
        "OPTIONS,PUT",
    )
    r = shared_api.request("OPTIONS", "/v1/agent/service/register")
    assert (r.status_code, r.headers["Allow"]) == (200, "OPTIONS,PUT")


def test_deregister_unknown_is_404(shared_api):
    r = shared_api.put("/v1/agent/service/deregister/nope")
    assert (r.status_code, r.text) == (
        404,
        'Unknown service ID "nope". Ensure that the service ID is passed, not the service name.',
    )


def test_generated_check_ids_and_names(api):
    api.register({"Name": "one", "Check": {"TTL": "30s"}})
    api.register(
        {
            "Name": "two",
            "Check": {"TTL": "30s"},
            "Checks": [{"TTL": "30s", "Status": "passing"}],
        }
    )
    checks = api.get("/v1/agent/checks").json()
    assert set(checks) == {"service:one", "service:two:1", "service:two:2"}
    one = checks["service:one"]
    assert (one["Name"], one["Status"], one["Output"]) == (
        "Service 'one' check",
        "critical",
        "",
    )
    assert checks["service:two:2"]["Status"] == "passing"
    assert (one["Type"], one["CreateIndex"], one["ModifyIndex"]) == ("ttl", 0, 0)
    assert one["Definition"]["Interval"] == "0s"


def test_reregistration_keeps_status_and_replace_existing_checks(api):
    api.register(
        {
            "Name": "s",
            "Checks": [{"CheckID": "a", "TTL": "30s"}, {"CheckID": "b", "TTL": "30s"}],
        }
    )
    assert api.put("/v1/agent/check/pass/a", params={"note": "fine"}).status_code == 200
    api.register({"Name": "s", "Checks": [{"CheckID": "a", "TTL": "30s"}]})
    checks = api.get("/v1/agent/checks").json()
    assert set(checks) == {"a", "b"}
    assert (checks["a"]["Status"], checks["a"]["Output"]) == ("passing", "fine")
    api.register(
        {"Name": "s", "Checks": [{"CheckID": "a", "TTL": "30s"}]},
        **{"replace-existing-checks": "true"},
    )
    assert set(api.get("/v1/agent/checks").json()) == {"a"}


def test_ttl_updates_and_errors(module_api):
    module_api.register({"Name": "t", "Check": {"TTL": "30s"}})
    assert (
        module_api.put(
            "/v1/agent/check/warn/service:t", params={"note": "hmm"}
        ).status_code
        == 200
    )
    assert (
        module_api.check("service:t")["Status"],
        module_api.check("service:t")["Output"],
    ) == (
        "warning",
        "hmm",
    )
    r = module_api.put(
        "/v1/agent/check/update/service:t",
        json={"status": "passing", "output": "x" * 5000},
    )
    assert r.status_code == 200
    assert module_api.check("service:t")["Output"].endswith(
        " ... (captured 4096 of 5000 bytes)"
    )
    r = module_api.put("/v1/agent/check/update/service:t", json={"Status": "bad"})
    assert (r.status_code, r.text) == (400, "Invalid check status: 'bad'")
    r = module_api.put("/v1/agent/check/fail/nope")
    assert r.status_code == 404 and r.text.startswith('Unknown check ID "nope".')


def test_ttl_on_http_check_is_500(module_api, target):
    module_api.register(
        {"Name": "h", "Check": {"HTTP": f"{target.url}/health", "Interval": "1s"}}
    )
    r = module_api.put("/v1/agent/check/pass/service:h")
    assert (r.status_code, r.text) == (
        500,
        'CheckID "service:h" does not have associated TTL',
    )


def test_http_check_passes_and_timing(module_api, target):
    module_api.register(
        {
            "Name": "h",
            "Check": {
                "HTTP": f"{target.url}/health",
                "Interval": "1s",
                "Timeout": "1s",
            },
        }
    )
    check = module_api.wait_status("service:h", "passing", timeout=5)
    assert check["Output"] == f"HTTP GET {target.url}/health: 200 OK Output: ok"
    target.routes["/health"] = (503, "db down")
    check = module_api.wait_status("service:h", "critical", timeout=5)
    assert (
        check["Output"]
        == f"HTTP GET {target.url}/health: 503 Service Unavailable Output: db down"
    )


def test_tcp_check_refused(module_api, closed_port):
    module_api.register(
        {
            "Name": "tcp",
            "Check": {
                "TCP": f"127.0.0.1:{closed_port}",
                "Interval": "1s",
                "Status": "passing",
            },
        }
    )
    check = module_api.wait_status("service:tcp", "critical", timeout=5)
    assert (
        check["Output"]
        == f"dial tcp 127.0.0.1:{closed_port}: connect: connection refused"
    )


def test_standalone_check_register_and_deregister(module_api):
    r = module_api.put(
        "/v1/agent/check/register",
        json={"Name": "disk", "TTL": "10s", "ServiceID": "nope"},
    )
    assert (r.status_code, r.text) == (404, 'ServiceID "nope" does not exist')
    r = module_api.put("/v1/agent/check/register", json={"TTL": "10s"})
    assert (r.status_code, r.text) == (400, "Missing check name")
    r = module_api.put(
        "/v1/agent/check/register", json={"Name": "disk", "TTL": "10s", "Status": "up"}
    )
    assert (r.status_code, r.text) == (400, "Bad check status")
    assert (
        module_api.put(
            "/v1/agent/check/register", json={"Name": "disk", "TTL": "10s"}
        ).status_code
        == 200
    )
    assert module_api.check("disk")["ServiceID"] == ""
    assert module_api.put("/v1/agent/check/deregister/disk").status_code == 200
    r = module_api.put("/v1/agent/check/deregister/disk")
    assert r.status_code == 404


def test_service_maintenance(module_api):
    module_api.register({"Name": "m", "Check": {"TTL": "30s", "Status": "passing"}})
    r = module_api.put("/v1/agent/service/maintenance/m")
    assert (r.status_code, r.text) == (400, "Missing value for enable")
    r = module_api.put("/v1/agent/service/maintenance/m", params={"enable": "maybe"})
    assert (r.status_code, r.text) == (400, 'Invalid value for enable: "maybe"')
    r = module_api.put("/v1/agent/service/maintenance/zz", params={"enable": "true"})
    assert (r.status_code, r.text) == (404, 'No service registered with ID "zz"')
    module_api.put("/v1/agent/service/maintenance/m", params={"enable": "true"})
    check = module_api.check("_service_maintenance:m")
    assert (check["Name"], check["Status"], check["ServiceID"]) == (
        "Service Maintenance Mode",
        "critical",
        "m",
    )
    assert check["Notes"].startswith(
        "Maintenance mode is enabled for this service, but no reason"
    )
    module_api.put("/v1/agent/service/maintenance/m", params={"enable": "false"})
    assert "_service_maintenance:m" not in module_api.get("/v1/agent/checks").json()


def test_node_maintenance_hides_everything_from_passing(api):
    api.register({"Name": "n", "Check": {"TTL": "30s", "Status": "passing"}})
    assert len(api.get("/v1/health/service/n?passing").json()) == 1
    api.put("/v1/agent/maintenance", params={"enable": "true", "reason": "upgrade"})
    check = api.check("_node_maintenance")
    assert (check["Name"], check["Notes"], check["ServiceID"]) == (
        "Node Maintenance Mode",
        "upgrade",
        "",
    )
    assert api.get("/v1/health/service/n?passing").json() == []
    api.put("/v1/agent/maintenance", params={"enable": "false"})
    assert len(api.get("/v1/health/service/n?passing").json()) == 1


def test_service_by_id_with_content_hash(module_api):
    module_api.register({"Name": "web", "Port": 80})
    r = module_api.get("/v1/agent/service/web")
    body = r.json()
    assert body["ContentHash"] == r.headers["X-Consul-ContentHash"]
    assert (body["ID"], body["Port"]) == ("web", 80)
    r = module_api.get(
        "/v1/agent/service/web", params={"hash": body["ContentHash"], "wait": "100ms"}
    )
    assert r.json()["ContentHash"] == body["ContentHash"]
    assert module_api.get("/v1/agent/service/nope").status_code == 404


def test_local_health_endpoints(module_api):
    """agent_endpoint.go: the answer's status rides in X-Consul-Reason
    (CodeWithPayloadError), and ?format=text or Accept: text/plain gives it
    alone as a text/plain body."""
    module_api.register({"Name": "lh", "Check": {"TTL": "30s", "Status": "warning"}})
    r = module_api.get("/v1/agent/health/service/id/lh")
    assert (r.status_code, r.json()["AggregatedStatus"]) == (429, "warning")
    assert r.headers["Content-Type"] == "application/json"
    assert r.headers["X-Consul-Reason"] == "warning"
    r = module_api.get("/v1/agent/health/service/name/lh", params={"format": "text"})
    assert (r.status_code, r.text, r.headers["Content-Type"]) == (
        429,
        "warning",
        "text/plain",
    )
    assert r.headers["X-Consul-Reason"] == "warning"
    r = module_api.get(
        "/v1/agent/health/service/id/lh", headers={"Accept": "text/plain"}
    )
    assert (r.status_code, r.text) == (429, "warning")


def test_local_health_holds_only_the_agents_checks(api):
    """State.ChecksForService(id, true): the service's checks and the agent's
    node checks, never the catalog's serfHealth."""
    api.register({"Name": "own", "Check": {"TTL": "30s", "Status": "passing"}})
    api.put(
        "/v1/agent/check/register",
        json={"Name": "disk", "TTL": "30s", "Status": "passing"},
    )
    (entry,) = api.get("/v1/agent/health/service/name/own").json()
    assert {c["CheckID"] for c in entry["Checks"]} == {"service:own", "disk"}
    body = api.get("/v1/agent/health/service/id/own").json()
    assert {c["CheckID"] for c in body["Checks"]} == {"service:own", "disk"}


def test_local_health_checks_hold_only_what_consul_fills(api):
    """agentHealthService copies nine fields of each local check into an
    api.HealthCheck: no Type, no definition, zero raft indexes, and no tags
    for a node check (agent/agent_endpoint.go)."""
    api.register({"Name": "shape", "Tags": ["t1"], "Check": {"TTL": "30s"}})
    api.put("/v1/agent/check/register", json={"Name": "disk", "TTL": "30s"})
    body = api.get("/v1/agent/health/service/id/shape").json()
    (entry,) = api.get("/v1/agent/health/service/name/shape").json()
    assert entry == body
    durations = ["Interval", "Timeout", "DeregisterCriticalServiceAfter"]
    for check in body["Checks"]:
        # A zero api.HealthCheckDefinition: its MarshalJSON writes the
        # durations first, as "0s"; every other field is empty.
        definition = check.pop("Definition")
        assert list(definition)[:3] == durations
        assert {definition[k] for k in durations} == {"0s"}
        assert not any(v for k, v in definition.items() if k not in durations)
        assert {"HTTP", "Header", "TCP", "TCPUseTLS", "GRPC"} <= set(definition)
    zero = {"Type": "", "ExposedPort": 0, "CreateIndex": 0, "ModifyIndex": 0}
    node_check = {
        "Node": "test-node",
        "CheckID": "disk",
        "Name": "disk",
        "Status": "critical",
        "Notes": "",
        "Output": "",
        "ServiceID": "",
        "ServiceName": "",
        "ServiceTags": None,
        **zero,
    }
    service_check = {
        **node_check,
        "CheckID": "service:shape",
        "Name": "Service 'shape' check",
        "ServiceID": "shape",
        "ServiceName": "shape",
        "ServiceTags": ["t1"],
    }
    assert body["Checks"] == [node_check, service_check]


@pytest.mark.parametrize(
    ("tags", "local"), [({}, None), ({"Tags": None}, None), ({"Tags": []}, [])]
)
def test_no_tags_are_null_only_in_local_health_checks(api, tags, local):
    """Consul keeps a nil Tags slice for a service registered without Tags
    (or with null). Every answer turns it into [], except the checks of
    /v1/agent/health/service/*, copied from the agent's local state as they
    are; an empty list stays [] there too."""
    api.register({"ID": "bare", "Name": "bare", "Check": {"TTL": "30s"}, **tags})
    body = api.get("/v1/agent/health/service/id/bare").json()
    assert body["Service"]["Tags"] == []
    assert [c["ServiceTags"] for c in body["Checks"]] == [local]
    (entry,) = api.get("/v1/agent/health/service/name/bare").json()
    assert entry["Checks"][0]["ServiceTags"] == local
    assert api.get("/v1/agent/services").json()["bare"]["Tags"] == []
    assert api.get("/v1/agent/checks").json()["service:bare"]["ServiceTags"] == []
    (entry,) = api.get("/v1/health/service/bare").json()
    assert entry["Service"]["Tags"] == []
    assert [c["ServiceTags"] for c in entry["Checks"]] == [[], []]
    (row,) = api.get("/v1/catalog/service/bare").json()
    assert row["ServiceTags"] == []
    assert (
        api.get("/v1/catalog/node/test-node").json()["Services"]["bare"]["Tags"] == []
    )
    assert api.get("/v1/catalog/services").json()["bare"] == []


def test_local_health_by_name_compares_the_name_exactly(api):
    """AgentHealthServiceByName asks the agent's local state for the name as
    sent (State.ServicesByName compares it with ==), unlike the catalog."""
    api.register({"ID": "w1", "Name": "Web", "Check": {"TTL": "30s"}})
    r = api.get("/v1/agent/health/service/name/web")
    assert (r.status_code, r.json()) == (404, [])
    assert r.headers["X-Consul-Reason"] == "ServiceName web Not Found"
    assert api.get("/v1/agent/health/service/name/Web").status_code == 503


@pytest.mark.parametrize(
    ("path", "reason", "body"),
    [
        (
            "id/none",
            "ServiceId none not found",
            {"AggregatedStatus": "critical", "Service": None, "Checks": None},
        ),
        ("name/none", "ServiceName none Not Found", []),
    ],
)
def test_local_health_of_unknown_service(shared_api, path, reason, body):
    r = shared_api.get(f"/v1/agent/health/service/{path}")
    assert (r.status_code, r.json(), r.headers["Content-Type"]) == (
        404,
        body,
        "application/json",
    )
    assert r.headers["X-Consul-Reason"] == reason
    r = shared_api.get(f"/v1/agent/health/service/{path}?format=text")
    assert (r.status_code, r.text, r.headers["Content-Type"]) == (
        404,
        reason,
        "text/plain",
    )


@pytest.mark.parametrize(
    ("path", "text"),
    [("id/", "Missing serviceID"), ("name/", "Missing service Name")],
)
def test_local_health_needs_a_name(shared_api, path, text):
    r = shared_api.get(f"/v1/agent/health/service/{path}")
    assert (r.status_code, r.text) == (400, text)
    assert "X-Consul-Reason" not in r.headers


def test_self_and_members(shared_api):
    me = shared_api.get("/v1/agent/self").json()
    assert all(isinstance(v, dict) or v is None for v in me.values())
    assert (me["Config"]["NodeName"], me["Config"]["Datacenter"]) == (
        "test-node",
        "dc1",
    )
    (member,) = shared_api.get("/v1/agent/members").json()
    assert (member["Name"], member["Port"], member["Status"]) == ("test-node", 8301, 1)
    assert member["Tags"]["role"] == "consul"
    assert me["Member"] == member


def test_self_finds_the_leader_like_consul(api):
    """Stats carries consul.Server.Stats()'s "consul" section, where clients
    look for the leader, beside agent/build/raft/runtime/serf sections, all
    string-valued (agent/agent.go Stats, agent/consul/server.go Stats); Config
    is AgentSelf's fixed struct (agent/agent_endpoint.go); Member is the serf
    member of a dev server (no bootstrap tag)."""
    c = consul.Consul(host="127.0.0.1", port=api.agent.port)
    c.agent.service.register("s", check=consul.Check.ttl("30s"))
    me = c.agent.self()
    consul_stats = me["Stats"]["consul"]
    assert consul_stats == {
        "acl": "disabled",
        "bootstrap": "false",
        "known_datacenters": "1",
        "leader": "true",
        "leader_addr": c.status.leader(),
        "server": "true",
    }
    assert set(me["Stats"]) == {
        "agent",
        "build",
        "consul",
        "raft",
        "runtime",
        "serf_lan",
        "serf_wan",
    }
    assert me["Stats"]["agent"] == {
        "check_monitors": "0",
        "check_ttls": "1",
        "checks": "1",
        "services": "1",
    }
    assert me["Stats"]["raft"]["state"] == "Leader"
    assert me["Stats"]["serf_lan"]["members"] == "1"
    assert me["Stats"]["build"]["version"] == me["Config"]["Version"]
    assert all(
        isinstance(v, str) for section in me["Stats"].values() for v in section.values()
    )
    assert set(me["Config"]) == {
        "Datacenter",
        "PrimaryDatacenter",
        "NodeName",
        "NodeID",
        "Revision",
        "Server",
        "Version",
        "BuildDate",
    }
    assert me["Config"]["Server"] is True
    tags = me["Member"]["Tags"]
    assert "bootstrap" not in tags
    assert (tags["id"], tags["port"], tags["raft_vsn"]) == (
        me["Config"]["NodeID"],
        "8300",
        "3",
    )
    assert me["DebugConfig"]["EnableRemoteScriptChecks"] is False


def test_agent_services_filter(module_api):
    module_api.register({"Name": "f", "ID": "f1", "Tags": ["blue"]})
    module_api.register({"Name": "f", "ID": "f2", "Tags": ["green"]})
    r = module_api.get("/v1/agent/services", params={"filter": '"blue" in Tags'})
    assert list(r.json()) == ["f1"]
    r = module_api.get("/v1/agent/services", params={"filter": "Tags ==="})
    assert r.status_code == 500
    assert r.text.startswith("Failed to create boolean expression evaluator: ")


def test_py_consul_agent_api(devconsul, target):
    c = consul.Consul(host="127.0.0.1", port=devconsul.port)
    assert c.agent.service.register(
        "api",
        service_id="api-1",
        address="127.0.0.1",
        port=target.port,
        tags=["v1"],
        meta={"version": "1"},
        weights={"Passing": 2, "Warning": 1},
        check=consul.Check.http(f"{target.url}/health", interval="1s", timeout="1s"),
        replace_existing_checks=True,
    )
    assert c.agent.services()["api-1"]["Weights"] == {"Passing": 2, "Warning": 1}
    wait_until(
        lambda: c.agent.checks()["service:api-1"]["Status"] == "passing", timeout=5
    )
    assert c.agent.service.maintenance("api-1", True, "deploy")
    assert c.agent.checks()["_service_maintenance:api-1"]["Notes"] == "deploy"
    assert c.agent.service.maintenance("api-1", False)
    assert c.agent.service.deregister("api-1")
    assert c.agent.services() == {}
    assert c.agent.checks() == {}
    assert c.agent.service.deregister("api-1") is False


def test_http_check_method_header_body_end_to_end(module_api, target):
    module_api.register(
        {
            "Name": "probe",
            "Check": {
                "HTTP": f"{target.url}/health",
                "Method": "POST",
                "Header": {"X-Token": ["abc"]},
                "Body": "ping",
                "Interval": "1s",
            },
        }
    )
    module_api.wait_status("service:probe", "passing", timeout=5)
    seen = target.requests[-1]
    assert (seen["method"], seen["body"]) == ("POST", b"ping")
    assert seen["headers"]["X-Token"] == "abc"
    definition = module_api.check("service:probe")["Definition"]
    assert (definition["Method"], definition["Header"]) == (
        "POST",
        {"X-Token": ["abc"]},
    )


def test_ttl_expiry_end_to_end(module_api):
    module_api.register({"Name": "exp", "Check": {"TTL": "1s", "Status": "passing"}})
    module_api.put("/v1/agent/check/pass/service:exp", params={"note": "alive"})
    check = module_api.wait_status("service:exp", "critical", timeout=5)
    assert check["Output"] == "TTL expired (last output before timeout follows): alive"


def test_replace_existing_checks_needs_empty_or_true(module_api):
    module_api.register(
        {
            "Name": "rx",
            "Checks": [
                {"CheckID": "rx-a", "TTL": "30s"},
                {"CheckID": "rx-b", "TTL": "30s"},
            ],
        }
    )
    body = {"Name": "rx", "Checks": [{"CheckID": "rx-a", "TTL": "30s"}]}
    module_api.register(body, **{"replace-existing-checks": "1"})
    assert {"rx-a", "rx-b"} <= set(module_api.get("/v1/agent/checks").json())
    module_api.register(body, **{"replace-existing-checks": ""})
    assert "rx-b" not in module_api.get("/v1/agent/checks").json()


def test_go_client_shaped_registration(module_api, closed_port):
    body = {
        "Kind": "",
        "ID": "go-1",
        "Name": "go",
        "Tags": None,
        "Port": 8080,
        "Address": "",
        "SocketPath": "",
        "TaggedAddresses": None,
        "EnableTagOverride": False,
        "Meta": None,
        "Weights": None,
        "Check": {
            "CheckID": "",
            "Interval": "10s",
            "Timeout": "",
            "HTTP": f"http://127.0.0.1:{closed_port}/",
            "Header": None,
            "Method": "",
            "TLSSkipVerify": False,
            "DeregisterCriticalServiceAfter": "1m",
            "ScriptArgs": None,
        },
        "Checks": None,
        "Proxy": None,
        "Connect": None,
    }
    module_api.register(body, **{"replace-existing-checks": "true"})
    service = module_api.get("/v1/agent/services").json()["go-1"]
    assert (service["Tags"], service["Meta"]) == ([], {})
    assert service["Weights"] == {"Passing": 1, "Warning": 1}
    check = module_api.check("service:go-1")
    assert check["Definition"]["DeregisterCriticalServiceAfter"] == "1m0s"


# -- script checks -----------------------------------------------------------------


@pytest.fixture(scope="module")
def script_api():
    """An agent started with -enable-script-checks."""
    agent = Agent(free_port(), "-enable-script-checks")
    yield Api(agent)
    agent.process.stop()


def _script(code: str) -> list[str]:
    return [sys.executable, "-c", code]


@pytest.mark.parametrize("flags", [(), ("-enable-local-script-checks",)])
def test_script_checks_refused_through_the_api_without_the_flag(flags):
    """Agent.addCheck refuses a "remote" (HTTP API) script check unless
    enable_script_checks is on; enable_local_script_checks admits only checks
    from configuration files (agent/agent.go, TestAgent_AddCheck_ExecRemoteDisable)."""
    agent = Agent(free_port(), *flags)
    try:
        api = Api(agent)
        check = {"Name": "s", "Args": ["true"], "Interval": "10s"}
        r = api.put("/v1/agent/check/register", json=check)
        assert (r.status_code, r.text) == (500, SCRIPTS_DISABLED)
        r = api.put("/v1/agent/service/register", json={"Name": "x", "Check": check})
        assert (r.status_code, r.text) == (500, SCRIPTS_DISABLED)
        c = consul.Consul(host="127.0.0.1", port=agent.port)
        with pytest.raises(consul.ConsulException, match="from remote calls"):
            c.agent.check.register("s", consul.Check.script(["true"], "10s"))
        assert api.get("/v1/agent/checks").json() == {}
    finally:
        agent.process.stop()


def test_script_check_runs_and_maps_exit_codes(script_api):
    c = consul.Consul(host="127.0.0.1", port=script_api.agent.port)
    warn = _script("print('disk 91%'); raise SystemExit(1)")
    assert c.agent.check.register("disk", consul.Check.script(warn, "1s"))
    check = script_api.wait_status("disk", "warning")
    assert (check["Output"], check["Type"]) == ("disk 91%\n", "script")
    assert check["Definition"]["ScriptArgs"] == warn
    c.agent.service.register(
        "cron", check=consul.Check.script(_script("print('ok')"), "1s")
    )
    assert script_api.wait_status("service:cron", "passing")["Output"] == "ok\n"
    assert c.agent.self()["Stats"]["agent"]["check_monitors"] == "2"
    script_api.register(
        {
            "Name": "broken",
            "Check": {
                "ScriptArgs": _script("print('boom'); raise SystemExit(7)"),
                "Interval": "1s",
            },
        }
    )
    wait_until(
        lambda: script_api.check("service:broken")["Output"] == "boom\n",
        what="exit 7 reported",
    )
    assert script_api.check("service:broken")["Status"] == "critical"


def test_script_check_timeout_and_output_cap(script_api):
    script_api.register(
        {
            "Name": "slow",
            "Check": {
                "Args": _script(
                    "print('x' * 50, flush=True); import time; time.sleep(30)"
                ),
                "Interval": "1s",
                "Timeout": "300ms",
                "OutputMaxSize": 20,
            },
        }
    )
    check = wait_until(
        lambda: (c := script_api.check("service:slow"))["Output"] and c,
        what="a first run",
    )
    assert check["Status"] == "critical"
    assert check["Output"] == (
        "Timed out (300ms) running check\n\nCaptured 20 of 51 bytes\n...\n"
        + "x" * 19
        + "\n"
    )


def test_agent_stop_kills_running_scripts(tmp_path):
    """No script check outlives the agent: stopping it kills each running
    check's process group, grandchildren included."""
    agent = Agent(free_port(), "-enable-script-checks")
    pid_file = tmp_path / "pid"
    code = (
        "import subprocess, time\n"
        "child = subprocess.Popen(['sleep', '60'])\n"
        f"open({str(pid_file)!r}, 'w').write(f'{{child.pid}}')\n"
        "time.sleep(60)\n"
    )
    try:
        check = {
            "Name": "hang",
            "Args": _script(code),
            "Interval": "1s",
            "Timeout": "1m",
        }
        assert Api(agent).put("/v1/agent/check/register", json=check).status_code == 200
        wait_until(lambda: pid_file.exists() and pid_file.read_text(), what="started")
    finally:
        agent.process.stop()
    grandchild = int(pid_file.read_text())
    wait_until(lambda: not _running(grandchild), what="grandchild killed")


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_members_lan_and_wan_through_py_consul(shared_devconsul):
    """agent/agent_endpoint.go AgentMembers: any non-empty ?wan= lists the WAN
    pool, where a server's name carries its datacenter."""
    client = consul.Consul(host="127.0.0.1", port=shared_devconsul.port)
    (lan,) = client.agent.members()
    (wan,) = client.agent.members(wan=True)
    assert (lan["Name"], lan["Port"]) == ("test-node", 8301)
    assert (wan["Name"], wan["Port"]) == ("test-node.dc1", 8302)
    assert wan["Tags"] == lan["Tags"]
