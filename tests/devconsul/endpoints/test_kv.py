"""/v1/kv/*."""

import base64
import threading
import time

import pytest

import consul
from tests.support.processes import wait_until

pytestmark = pytest.mark.integration


def test_put_get_raw_and_missing(module_api):
    missing = module_api.get("/v1/kv/missing")
    assert (missing.status_code, missing.content) == (404, b"")
    assert int(missing.headers["X-Consul-Index"]) >= 1
    assert missing.headers["X-Consul-KnownLeader"] == "true"
    r = module_api.put("/v1/kv/config/gateway/strategy", data=b"round_robin")
    assert (r.status_code, r.text, r.headers["Content-Type"]) == (
        200,
        "true",
        "application/json",
    )
    r = module_api.get("/v1/kv/config/gateway/strategy")
    (entry,) = r.json()
    assert entry == {
        "LockIndex": 0,
        "Key": "config/gateway/strategy",
        "Flags": 0,
        "Value": base64.b64encode(b"round_robin").decode(),
        "CreateIndex": entry["ModifyIndex"],
        "ModifyIndex": int(r.headers["X-Consul-Index"]),
    }
    raw = module_api.get("/v1/kv/config/gateway/strategy?raw")
    assert (raw.content, raw.headers["Content-Type"]) == (b"round_robin", "text/plain")
    module_api.put("/v1/kv/empty", data=b"")
    assert module_api.get("/v1/kv/empty").json()[0]["Value"] is None


def test_recurse_keys_and_separator(api):
    for key in ("config/a/x", "config/a/y", "config/b", "other"):
        api.put(f"/v1/kv/{key}", data=b"v")
    assert [e["Key"] for e in api.get("/v1/kv/config/?recurse").json()] == [
        "config/a/x",
        "config/a/y",
        "config/b",
    ]
    assert len(api.get("/v1/kv/?recurse").json()) == 4
    assert api.get("/v1/kv/config/?keys&separator=/").json() == [
        "config/a/",
        "config/b",
    ]
    assert api.get("/v1/kv/config/?keys=True").json() == [
        "config/a/x",
        "config/a/y",
        "config/b",
    ]
    assert api.get("/v1/kv/zzz?keys").status_code == 404
    assert api.get("/v1/kv/zzz?recurse").status_code == 404
    assert api.get("/v1/kv/").status_code == 400


def test_flags_cas_and_delete(module_api):
    assert module_api.put("/v1/kv/k?flags=42", data=b"1").json() is True
    entry = module_api.get("/v1/kv/k").json()[0]
    assert entry["Flags"] == 42
    assert module_api.put("/v1/kv/k?cas=0", data=b"2").json() is False
    assert (
        module_api.put(f"/v1/kv/k?cas={entry['ModifyIndex']}", data=b"2").json() is True
    )
    assert module_api.request("DELETE", "/v1/kv/k?cas=1").json() is False
    assert module_api.request("DELETE", "/v1/kv/k").json() is True
    assert module_api.request("DELETE", "/v1/kv/k").json() is True
    assert module_api.put("/v1/kv/new?cas=0", data=b"x").json() is True
    module_api.put("/v1/kv/tree/a", data=b"1")
    module_api.put("/v1/kv/tree/b", data=b"1")
    assert module_api.request("DELETE", "/v1/kv/tree/?recurse").json() is True
    assert module_api.get("/v1/kv/tree/?recurse").status_code == 404


def test_errors(shared_api):
    r = shared_api.put("/v1/kv/?", data=b"x")
    assert (r.status_code, r.text) == (400, "Missing key name")
    r = shared_api.put("/v1/kv/k?cas=1&acquire=s", data=b"x")
    assert r.status_code == 400 and r.text.startswith("Conflicting flags: ")
    r = shared_api.put("/v1/kv/big", data=b"x" * (512 * 1024 + 1))
    assert r.status_code == 413
    r = shared_api.request("POST", "/v1/kv/k")
    assert (r.status_code, r.headers["Allow"]) == (405, "OPTIONS,GET,PUT,DELETE")


def test_blocking_on_a_key_ignores_other_keys(module_api):
    module_api.put("/v1/kv/watched", data=b"1")
    index = module_api.get("/v1/kv/watched").headers["X-Consul-Index"]
    pending = module_api.block("/v1/kv/watched", index)
    module_api.put("/v1/kv/unrelated", data=b"1")
    assert pending.still_waiting(0.4)
    module_api.put("/v1/kv/watched", data=b"2")
    assert base64.b64decode(pending.response().json()[0]["Value"]) == b"2"


def test_py_consul_kv(devconsul):
    c = consul.Consul(host="127.0.0.1", port=devconsul.port)
    assert c.kv.put("app/a", "1") is True
    assert c.kv.put("app/b", "2", flags=3) is True
    index, entry = c.kv.get("app/a")
    assert entry["Value"] == b"1"
    _, entries = c.kv.get("app/", recurse=True)
    assert [e["Key"] for e in entries] == ["app/a", "app/b"]
    _, keys = c.kv.get("", keys=True)
    assert keys == ["app/a", "app/b"]
    assert c.kv.get("nope") == (index, None) or c.kv.get("nope")[1] is None
    box = {}
    thread = threading.Thread(
        target=lambda: box.update(r=c.kv.get("app/a", index=index, wait="10s")),
        daemon=True,
    )
    thread.start()
    c.kv.put("app/a", "changed")
    thread.join(5)
    assert box["r"][1]["Value"] == b"changed"
    assert c.kv.delete("app/", recurse=True) is True


def test_foreign_datacenter(shared_api):
    for method in ("GET", "PUT", "DELETE"):
        r = shared_api.request(method, "/v1/kv/dc-test?dc=dc9", data=b"x")
        assert (r.status_code, r.text) == (500, "No path to datacenter")


def _session(api, **body) -> str:
    r = api.put("/v1/session/create", json=body)
    assert r.status_code == 200, r.text
    return r.json()["ID"]


def test_acquire_release_and_contention(module_api):
    a, b = _session(module_api), _session(module_api)
    r = module_api.put(f"/v1/kv/lock/a?acquire={a}&flags=9", data=b"mine")
    assert (r.status_code, r.json()) == (200, True)
    (entry,) = module_api.get("/v1/kv/lock/a").json()
    assert entry == {
        "LockIndex": 1,
        "Key": "lock/a",
        "Flags": 9,
        "Value": base64.b64encode(b"mine").decode(),
        "Session": a,
        "CreateIndex": entry["CreateIndex"],
        "ModifyIndex": entry["CreateIndex"],
    }
    assert module_api.put(f"/v1/kv/lock/a?acquire={b}", data=b"x").json() is False
    assert module_api.put(f"/v1/kv/lock/a?release={b}", data=b"x").json() is False
    assert module_api.put(f"/v1/kv/lock/a?acquire={a}", data=b"again").json() is True
    assert module_api.get("/v1/kv/lock/a").json()[0]["LockIndex"] == 1
    assert module_api.put(f"/v1/kv/lock/a?release={a}", data=b"free").json() is True
    (released,) = module_api.get("/v1/kv/lock/a").json()
    assert "Session" not in released
    assert (released["LockIndex"], released["Value"]) == (1, "ZnJlZQ==")
    assert module_api.put(f"/v1/kv/lock/a?acquire={b}", data=b"x").json() is True
    assert module_api.get("/v1/kv/lock/a").json()[0]["LockIndex"] == 2
    assert module_api.put(f"/v1/kv/lock/none?release={a}", data=b"").json() is False


def test_lock_errors(shared_api):
    r = shared_api.put("/v1/kv/lock-err?acquire=no-such-session", data=b"x")
    assert (r.status_code, r.text) == (500, 'invalid session "no-such-session"')
    r = shared_api.put("/v1/kv/lock-err?acquire=", data=b"x")
    assert (r.status_code, r.text) == (500, "missing session")
    assert shared_api.get("/v1/kv/lock-err").status_code == 404
    r = shared_api.put("/v1/kv/lock-err?acquire=a&release=a", data=b"x")
    assert r.status_code == 400 and r.text.startswith("Conflicting flags: ")


def test_lock_delay_after_invalidation(module_api):
    holder = _session(module_api, LockDelay="3s")
    waiter = _session(module_api, LockDelay=0)
    module_api.put(f"/v1/kv/delayed?acquire={holder}", data=b"1")
    start = time.monotonic()
    assert module_api.put(f"/v1/session/destroy/{holder}").json() is True
    assert module_api.put(f"/v1/kv/delayed?acquire={waiter}", data=b"2").json() is False
    wait_until(
        lambda: module_api.put(f"/v1/kv/delayed?acquire={waiter}", data=b"2").json(),
        timeout=15,
        what="lock-delay to pass",
    )
    assert time.monotonic() - start >= 3
    assert module_api.get("/v1/kv/delayed").json()[0]["Session"] == waiter


def test_blocking_read_of_a_locked_key_wakes_on_release(module_api):
    sid = _session(module_api)
    module_api.put(f"/v1/kv/watched-lock?acquire={sid}", data=b"1")
    index = module_api.get("/v1/kv/watched-lock").headers["X-Consul-Index"]
    pending = module_api.block("/v1/kv/watched-lock", index)
    assert pending.still_waiting(0.4)
    module_api.put(f"/v1/kv/watched-lock?release={sid}", data=b"1")
    r = pending.response()
    (entry,) = r.json()
    assert "Session" not in entry
    assert int(r.headers["X-Consul-Index"]) > int(index)


def test_recursive_delete_with_cas_conflicts_and_deletes_nothing(module_api):
    module_api.put("/v1/kv/keep/a", data=b"1")
    index = module_api.get("/v1/kv/keep/a").json()[0]["ModifyIndex"]
    r = module_api.request("DELETE", f"/v1/kv/keep/?recurse&cas={index}")
    # url.Values.Encode: keys sorted, every value written with "=".
    assert (r.status_code, r.text) == (
        400,
        f"Conflicting flags: cas={index}&recurse=\n",
    )
    assert module_api.get("/v1/kv/keep/a").status_code == 200
    r = module_api.put("/v1/kv/keep/a?release=s&cas=1&acquire=x&acquire=a", data=b"")
    assert r.text == "Conflicting flags: acquire=x&acquire=a&cas=1&release=s\n"
