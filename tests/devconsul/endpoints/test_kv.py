"""/v1/kv/*."""

import base64
import threading

import pytest

import consul

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
    box = {}
    thread = threading.Thread(
        target=lambda: box.update(
            r=module_api.get("/v1/kv/watched", params={"index": index, "wait": "10s"})
        ),
        daemon=True,
    )
    thread.start()
    module_api.put("/v1/kv/unrelated", data=b"1")
    thread.join(0.4)
    assert thread.is_alive()
    module_api.put("/v1/kv/watched", data=b"2")
    thread.join(5)
    assert base64.b64decode(box["r"].json()[0]["Value"]) == b"2"


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
