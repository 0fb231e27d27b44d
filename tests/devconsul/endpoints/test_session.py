"""/v1/session/* and the locks sessions hold, against a real agent process."""

import threading
import time

import pytest
import requests

import consul
from tests.conftest import Agent
from tests.support.processes import free_port, wait_until

pytestmark = pytest.mark.integration

UUID_LENGTH = 36


def _create(api, body=None) -> str:
    r = api.put("/v1/session/create", json=body)
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"] == "application/json"
    (sid,) = r.json().values()
    assert len(sid) == UUID_LENGTH
    return sid


def _info(api, sid: str) -> list:
    return api.get(f"/v1/session/info/{sid}").json()


def test_round_trip_with_consul_shapes(api):
    sid = _create(api, {"Name": "lock", "TTL": "30s", "LockDelay": "5s"})
    r = api.get(f"/v1/session/info/{sid}")
    index = int(r.headers["X-Consul-Index"])
    assert r.headers["X-Consul-KnownLeader"] == "true"
    assert r.json() == [
        {
            "ID": sid,
            "Name": "lock",
            "Node": "test-node",
            "LockDelay": 5_000_000_000,
            "Behavior": "release",
            "TTL": "30s",
            "NodeChecks": ["serfHealth"],
            "ServiceChecks": None,
            "CreateIndex": index,
            "ModifyIndex": index,
        }
    ]
    other = _create(api, {"Checks": [], "Behavior": "delete"})
    (entry,) = _info(api, other)
    assert (entry["NodeChecks"], entry["Behavior"], entry["TTL"]) == ([], "delete", "")
    assert entry["LockDelay"] == 15_000_000_000
    assert "Checks" not in entry
    listed = api.get("/v1/session/list").json()
    assert [s["ID"] for s in listed] == sorted([sid, other])
    assert api.get("/v1/session/node/test-node").json() == listed
    renewed = api.put(f"/v1/session/renew/{sid}")
    assert renewed.status_code == 200
    assert renewed.json() == _info(api, sid)
    destroyed = api.put(f"/v1/session/destroy/{sid}")
    assert (destroyed.status_code, destroyed.json()) == (200, True)
    assert _info(api, sid) == []
    assert [s["ID"] for s in api.get("/v1/session/list").json()] == [other]


def test_unknown_ids_and_missing_arguments(shared_api):
    missing = shared_api.get("/v1/session/info/no-such-session")
    assert (missing.status_code, missing.json()) == (200, [])
    assert int(missing.headers["X-Consul-Index"]) >= 1
    assert shared_api.get("/v1/session/node/no-such-node").json() == []
    r = shared_api.put("/v1/session/renew/no-such-session")
    assert (r.status_code, r.text) == (404, "Session id 'no-such-session' not found")
    assert shared_api.put("/v1/session/destroy/no-such-session").json() is True
    for method, path, text in [
        ("PUT", "/v1/session/destroy/", "Missing session"),
        ("PUT", "/v1/session/renew/", "Missing session"),
        ("GET", "/v1/session/info/", "Missing session"),
        ("GET", "/v1/session/node/", "Missing node name"),
    ]:
        r = shared_api.request(method, path)
        assert (r.status_code, r.text) == (400, text)
    r = shared_api.get("/v1/session/create")
    assert (r.status_code, r.headers["Allow"]) == (405, "OPTIONS,PUT")


@pytest.mark.parametrize(
    ("body", "status", "text"),
    [
        ({"Behavior": "keep"}, 500, "Invalid Behavior setting 'keep'"),
        (
            {"TTL": "5s"},
            500,
            "Invalid Session TTL '5000000000', must be between [10s=24h0m0s]",
        ),
        ({"Node": "elsewhere"}, 500, "Missing node registration"),
        ({"Checks": ["nope"]}, 500, "Missing check 'nope' registration"),
        ({"TTL": 30}, 400, None),
    ],
)
def test_create_errors(shared_api, body, status, text):
    r = shared_api.put("/v1/session/create", json=body)
    assert r.status_code == status
    if text:
        assert r.text == text
    else:
        assert r.text.startswith("Request decode failed: ")


def test_session_reads_block_until_sessions_change(module_api):
    r = module_api.get("/v1/session/list")
    index = r.headers["X-Consul-Index"]
    pending = module_api.block("/v1/session/list", index)
    module_api.put("/v1/kv/unrelated", data=b"x")
    assert pending.still_waiting(0.4)
    sid = _create(module_api)
    r = pending.response()
    assert sid in [s["ID"] for s in r.json()]
    assert int(r.headers["X-Consul-Index"]) > int(index)


def _register_ttl_check(api, check_id: str) -> None:
    r = api.put(
        "/v1/agent/check/register",
        json={"Name": check_id, "TTL": "1h", "Status": "passing"},
    )
    assert r.status_code == 200, r.text


@pytest.mark.parametrize("behavior", ["release", "delete"])
def test_critical_check_invalidates_the_session(api, behavior):
    _register_ttl_check(api, "guard")
    sid = _create(
        api, {"Checks": ["serfHealth", "guard"], "Behavior": behavior, "LockDelay": 0}
    )
    assert api.put(f"/v1/kv/locked?acquire={sid}", data=b"v").json() is True
    before = int(api.get("/v1/kv/locked").headers["X-Consul-Index"])
    assert api.put("/v1/agent/check/fail/guard").status_code == 200
    assert _info(api, sid) == []
    after = api.get("/v1/kv/locked")
    if behavior == "delete":
        assert after.status_code == 404
    else:
        (entry,) = after.json()
        assert "Session" not in entry
        assert entry["LockIndex"] == 1
    assert int(after.headers["X-Consul-Index"]) > before
    r = api.put("/v1/session/create", json={"Checks": ["guard"]})
    assert (r.status_code, r.text) == (500, "Check 'guard' is in critical state")


def test_deregistering_a_service_check_invalidates_the_session(api):
    api.register({"ID": "web-1", "Name": "web", "Check": {"TTL": "1h"}})
    api.put("/v1/agent/check/pass/service:web-1")
    sid = _create(api, {"ServiceChecks": [{"ID": "service:web-1"}]})
    (entry,) = _info(api, sid)
    assert entry["ServiceChecks"] == [{"ID": "service:web-1", "Namespace": ""}]
    api.put("/v1/agent/service/deregister/web-1")
    assert _info(api, sid) == []


def test_ttl_expiry_releases_locks(fast_session_api):
    """Renewal resetting the clock is tested in-process (test_sessions)."""
    api = fast_session_api
    r = api.put("/v1/session/create", json={"TTL": "50ms"})
    assert r.text == "Invalid Session TTL '50000000', must be between [100ms=24h0m0s]"
    start = time.monotonic()
    # 1s: expiry comes at 2s, long enough for the acquire below on a loaded machine.
    sid = _create(api, {"TTL": "1s", "LockDelay": 0})
    assert api.put(f"/v1/kv/ttl-lock?acquire={sid}", data=b"v").json() is True
    wait_until(lambda: _info(api, sid) == [], timeout=10, what="TTL expiry")
    # Never before the TTL (Consul waits twice it; only the lower bound is promised).
    assert time.monotonic() - start >= 1.0
    (entry,) = api.get("/v1/kv/ttl-lock").json()
    assert "Session" not in entry
    assert api.put(f"/v1/session/renew/{sid}").status_code == 404


def test_acl_mode_guards_sessions():
    agent = Agent(free_port(), "-acl-token", "s3cret")
    try:
        url = f"{agent.url}/v1/session/create"
        r = requests.put(url, timeout=5)
        assert (r.status_code, r.text) == (403, "Permission denied")
        r = requests.put(url, headers={"X-Consul-Token": "wrong"}, timeout=5)
        assert (r.status_code, r.text) == (403, "ACL not found")
        c = consul.Consul(host="127.0.0.1", port=agent.port, token="s3cret")
        sid = c.session.create(name="guarded")
        assert [s["ID"] for s in c.session.list()[1]] == [sid]
        anonymous = consul.Consul(host="127.0.0.1", port=agent.port)
        with pytest.raises(consul.ACLPermissionDenied):
            anonymous.session.list()
        with pytest.raises(consul.ACLPermissionDenied):
            anonymous.kv.put("k", "v", acquire=sid)
    finally:
        agent.process.stop()


def test_py_consul_leader_election(devconsul):
    """Two candidates race for one key; when the leader's session goes, the
    follower's blocking watch wakes and it takes over."""
    c = consul.Consul(host="127.0.0.1", port=devconsul.port)
    key = "service/switchyard/leader"
    a = c.session.create(name="candidate-a", lock_delay=0, ttl=10)
    b = c.session.create(name="candidate-b", lock_delay=0, ttl=10)
    assert c.kv.put(key, "a", acquire=a) is True
    assert c.kv.put(key, "b", acquire=b) is False
    index, entry = c.kv.get(key)
    assert (entry["Session"], entry["Value"], entry["LockIndex"]) == (a, b"a", 1)

    elected = threading.Event()

    def follower():
        seen = index
        for _ in range(20):
            seen, current = c.kv.get(key, index=seen, wait="5s")
            free = current is None or "Session" not in current
            if free and c.kv.put(key, "b", acquire=b):
                elected.set()
                return

    thread = threading.Thread(target=follower, daemon=True)
    thread.start()
    thread.join(0.3)
    assert not elected.is_set()
    assert c.session.destroy(a) is True
    assert elected.wait(10)
    _, entry = c.kv.get(key)
    assert (entry["Session"], entry["Value"], entry["LockIndex"]) == (b, b"b", 2)
    assert c.session.info(a)[1] is None
    assert c.kv.put(key, "b", release=b) is True
    assert "Session" not in c.kv.get(key)[1]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("PUT", "/v1/session/create"),
        ("PUT", "/v1/session/destroy/x"),
        ("PUT", "/v1/session/renew/x"),
        ("GET", "/v1/session/info/x"),
        ("GET", "/v1/session/node/test-node"),
        ("GET", "/v1/session/list"),
    ],
)
def test_foreign_datacenter(shared_api, method, path):
    """Every session endpoint reads ?dc= (agent/session_endpoint.go parseDC)."""
    r = shared_api.request(method, path, params={"dc": "dc2"})
    assert (r.status_code, r.text) == (500, "No path to datacenter")
