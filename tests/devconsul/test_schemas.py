"""Unknown fields in request bodies, against a real agent: Consul decodes with
DisallowUnknownFields (lib/json.go DecodeJSON; the structs' UnmarshalJSON call
lib.UnmarshalJSON), so a key naming no field of the Go struct is a 400, nested
objects included; catalog and session writes reword an unknown "Namespace"
(agent/http_ce.go rewordUnknownEnterpriseFieldError). KV bodies are raw values.
"""

import pytest

import consul

pytestmark = pytest.mark.integration


def _unknown(key: str) -> str:
    return f'Request decode failed: json: unknown field "{key}"'


ENTERPRISE = " - Namespaces are a Consul Enterprise feature"

CASES = [
    ("/v1/agent/service/register", {"Name": "u", "Bogus": 1}, "Bogus"),
    # The agent endpoints do not reword: CE has no Namespace field.
    ("/v1/agent/service/register", {"Name": "u", "Namespace": "ns"}, "Namespace"),
    ("/v1/agent/service/register", {"Name": "u", "Check": {"TTL": "9s", "x": 1}}, "x"),
    (
        "/v1/agent/service/register",
        {"Name": "u", "Checks": [{"TTL": "9s"}, {"TTL": "9s", "ID": "c"}]},
        "ID",  # CheckType's field is CheckID
    ),
    (
        "/v1/agent/service/register",
        {"Name": "u", "Weights": {"Passing": 1, "Critical": 0}},
        "Critical",
    ),
    (
        "/v1/agent/service/register",
        {"Name": "u", "TaggedAddresses": {"lan": {"Address": "a", "Host": "h"}}},
        "Host",
    ),
    (
        "/v1/agent/service/register",
        {"Name": "u", "Connect": {"Native": True, "Sidecar": {}}},
        "Sidecar",
    ),
    # Consul 1.1 dropped Script for Args/ScriptArgs: a decode error, not a check.
    (
        "/v1/agent/service/register",
        {"Name": "u", "Check": {"Script": "true", "Interval": "10s"}},
        "Script",
    ),
    (
        "/v1/agent/check/register",
        {"Name": "c", "Script": "true", "Interval": "10s"},
        "Script",
    ),
    ("/v1/agent/check/register", {"Name": "c", "TTL": "9s", "CheckID": "c"}, "CheckID"),
    ("/v1/agent/check/update/nope", {"Status": "passing", "Note": "n"}, "Note"),
    (
        "/v1/catalog/register",
        {"Node": "n", "Address": "a", "Service": {"Service": "s", "Name": "s"}},
        "Name",
    ),
    (
        "/v1/catalog/register",
        {"Node": "n", "Address": "a", "Check": {"CheckID": "c", "Interval": 1, "X": 1}},
        "X",
    ),
    # py-consul's catalog.register(token=...) sends this; Go promotes the
    # embedded WriteRequest's Token and knows no "WriteRequest" key.
    (
        "/v1/catalog/register",
        {"Node": "n", "Address": "a", "WriteRequest": {"Token": "t"}},
        "WriteRequest",
    ),
    ("/v1/catalog/deregister", {"Node": "n", "Service": "s"}, "Service"),
    ("/v1/session/create", {"Name": "s", "LockDelays": "1s"}, "LockDelays"),
]


@pytest.mark.parametrize(("path", "body", "key"), CASES)
def test_unknown_field_is_a_decode_error(shared_api, path, body, key):
    r = shared_api.put(path, json=body)
    assert (r.status_code, r.text) == (400, _unknown(key))


def test_refused_bodies_change_nothing(shared_api):
    body = {"Node": "half", "Address": "a", "Service": {"Service": "s", "Bad": 1}}
    assert shared_api.put("/v1/catalog/register", json=body).status_code == 400
    assert shared_api.get("/v1/catalog/node/half").json() is None


@pytest.mark.parametrize(
    "path",
    ["/v1/catalog/register", "/v1/catalog/deregister", "/v1/session/create"],
)
def test_namespace_is_an_enterprise_field_on_catalog_and_session_writes(
    shared_api, path
):
    r = shared_api.put(path, json={"Node": "n", "Namespace": "team"})
    assert (r.status_code, r.text) == (400, _unknown("Namespace") + ENTERPRISE)


def test_known_snake_case_aliases_are_fields(shared_api):
    """Each struct's UnmarshalJSON declares its snake_case spellings."""
    service = {
        "name": "snake",
        "enable_tag_override": True,
        "tagged_addresses": {"wan": {"address": "192.0.2.1", "port": 1}},
        "check": {"ttl": "10s", "deregister_critical_service_after": "1m"},
    }
    r = shared_api.put("/v1/agent/service/register", json=service)
    assert r.status_code == 200, r.text
    check = {"name": "snake-check", "ttl": "10s", "service_id": "snake"}
    r = shared_api.put("/v1/agent/check/register", json=check)
    assert r.status_code == 200, r.text
    checks = shared_api.get("/v1/agent/checks").json()
    assert checks["snake-check"]["ServiceID"] == "snake"


def test_py_consul_bodies_pass(shared_devconsul):
    """What py-consul sends for ordinary calls is all known fields."""
    c = consul.Consul(host="127.0.0.1", port=shared_devconsul.port)
    assert c.agent.service.register(
        "pyc",
        service_id="pyc-1",
        port=1,
        tags=["t"],
        meta={"k": "v"},
        weights={"Passing": 2, "Warning": 1},
        check=consul.Check.ttl("10s"),
    )
    assert c.agent.check.register("pyc-c", consul.Check.ttl("10s"), service_id="pyc-1")
    assert c.catalog.register("pyc-node", "10.0.0.1", service={"service": "x"})
    assert c.session.create(name="pyc", ttl=10)


def test_kv_bodies_are_values_not_json(shared_api):
    """A KV write stores its body verbatim, JSON or not (agent/kv_endpoint.go)."""
    body = b'{"Bogus": 1, "Namespace": "x"}'
    assert shared_api.put("/v1/kv/schema-raw", data=body).json() is True
    assert shared_api.get("/v1/kv/schema-raw?raw").content == body
