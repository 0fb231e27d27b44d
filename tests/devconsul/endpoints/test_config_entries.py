"""/v1/config against a real devconsul.

Relies on hashicorp/consul agent/config_endpoint.go (routes, "Config entry not
found for ...", "Must provide both a kind and name to delete", CAS answers),
structs.DecodeConfigEntry / MakeConfigEntry ("invalid config entry kind",
"Payload does not contain a kind/Kind key at the top level"), the state store's
CAS rules (0 = only if absent) and api/config_entry.go.
"""

import json

import pytest

pytestmark = pytest.mark.integration


def test_put_get_list_delete(client, api):
    assert client.config.set("service-defaults", "web", {"Protocol": "http"}) is True
    r = api.get("/v1/config/service-defaults/web")
    entry = r.json()
    assert entry == {
        "Protocol": "http",
        "Kind": "service-defaults",
        "Name": "web",
        "CreateIndex": entry["ModifyIndex"],
        "ModifyIndex": int(r.headers["X-Consul-Index"]),
    }
    assert client.config.get("service-defaults", "web")["Protocol"] == "http"
    # snake_case keys are read as Consul's field names.
    api.put(
        "/v1/config",
        json={"kind": "service-defaults", "name": "api", "protocol": "grpc"},
    )
    listed = client.config.list("service-defaults")
    assert [(e["Name"], e["Protocol"]) for e in listed] == [
        ("api", "grpc"),
        ("web", "http"),
    ]
    assert client.config.delete("service-defaults", "web") is True
    r = api.get("/v1/config/service-defaults/web")
    assert (r.status_code, r.text) == (
        404,
        'Config entry not found for "service-defaults" / "web"',
    )
    assert "X-Consul-Index" in r.headers
    r = api.request("DELETE", "/v1/config/service-defaults/api")
    assert (r.status_code, r.json()) == (200, {})


def test_cas_on_put_and_delete(client, api):
    assert (
        client.config.set("service-defaults", "db", {"Protocol": "tcp"}, cas=0) is True
    )
    assert (
        client.config.set("service-defaults", "db", {"Protocol": "http"}, cas=0)
        is False
    )
    index = client.config.get("service-defaults", "db")["ModifyIndex"]
    assert (
        client.config.set("service-defaults", "db", {"Protocol": "http"}, cas=index + 5)
        is False
    )
    assert (
        client.config.set("service-defaults", "db", {"Protocol": "http"}, cas=index)
        is True
    )
    current = client.config.get("service-defaults", "db")
    assert (current["Protocol"], current["CreateIndex"]) == ("http", index)
    assert client.config.delete("service-defaults", "db", cas=index) is False
    assert (
        client.config.delete("service-defaults", "db", cas=current["ModifyIndex"])
        is True
    )
    assert (
        client.config.delete("service-defaults", "db", cas=current["ModifyIndex"])
        is False
    )
    r = api.put("/v1/config?cas=x", json={"Kind": "mesh", "Name": "mesh"})
    assert (r.status_code, r.text) == (
        500,
        'strconv.ParseUint: parsing "x": invalid syntax',
    )


def test_get_blocks_until_the_table_changes(client, api):
    client.config.set("proxy-defaults", "global", {"Config": {"protocol": "http"}})
    r = api.get("/v1/config/proxy-defaults")
    index = r.headers["X-Consul-Index"]
    pending = api.block("/v1/config/proxy-defaults", index)
    assert pending.still_waiting(0.3)
    client.config.set("proxy-defaults", "global", {"Config": {"protocol": "grpc"}})
    r = pending.response()
    assert int(r.headers["X-Consul-Index"]) > int(index)
    assert r.json()[0]["Config"] == {"protocol": "grpc"}


@pytest.mark.parametrize(
    "body, status, text",
    [
        (
            {"Kind": "nope", "Name": "x"},
            400,
            "Request decoding failed: invalid config entry kind: nope",
        ),
        (
            {"Name": "x"},
            400,
            "Request decoding failed: Payload does not contain a kind/Kind key at the top level",
        ),
        (
            {"Kind": 3, "Name": "x"},
            400,
            "Request decoding failed: Kind value in payload is not a string",
        ),
        (
            {"Kind": "proxy-defaults", "Name": "web"},
            500,
            'invalid name ("web"), only "global" is supported',
        ),
        (
            {"Kind": "mesh", "Name": "x"},
            500,
            'invalid name ("x"), only "mesh" is supported',
        ),
        ({"Kind": "service-defaults"}, 500, "Name is required"),
        (
            [],
            400,
            (
                "Request decoding failed: json: cannot unmarshal array into Go value "
                "of type map[string]interface {}"
            ),
        ),
        (
            None,
            400,
            (
                "Request decoding failed: Payload does not contain a kind/Kind key at "
                "the top level"
            ),
        ),
    ],
)
def test_bad_entries(api, body, status, text):
    r = api.put("/v1/config", data=json.dumps(body))
    assert (r.status_code, r.text) == (status, text)


def test_bad_paths(api):
    r = api.put("/v1/config", data=b"{")
    assert (r.status_code, r.text) == (400, "Request decoding failed: unexpected EOF")
    r = api.get("/v1/config/nope/x")
    assert (r.status_code, r.text) == (500, "invalid config entry kind: nope")
    r = api.get("/v1/config/nope")
    assert (r.status_code, r.text) == (500, "invalid config entry kind: nope")
    r = api.request("DELETE", "/v1/config/nope/x")
    assert (r.status_code, r.text) == (400, "invalid config entry kind: nope")
    r = api.request("DELETE", "/v1/config/service-defaults")
    assert (r.status_code, r.text) == (
        404,
        "Must provide both a kind and name to delete",
    )
    assert api.get("/v1/config").status_code == 405


@pytest.mark.parametrize(
    "body, errors",
    [
        (
            {"Kind": "service-defaults", "Name": "web", "Protocl": "http"},
            ['invalid config key "Protocl"'],
        ),
        (
            {"Kind": "proxy-defaults", "Config": {}, "Namespace": "x", "Zone": 1},
            [
                (
                    'invalid config key "Namespace", namespaces are a consul '
                    "enterprise feature"
                ),
                'invalid config key "Zone"',
            ],
        ),
        (
            {
                "Kind": "service-resolver",
                "Name": "web",
                "connect_timeout": "5s",
                "X": 0,
            },
            ['invalid config key "X"'],
        ),
        (
            {"Kind": "service-splitter", "Name": "web", "Splits": [], "Routes": []},
            ['invalid config key "Routes"'],
        ),
    ],
)
def test_unknown_keys_are_refused_per_kind(api, body, errors):
    """structs.DecodeConfigEntry (agent/structs/config_entry.go) decodes with
    mapstructure and passes the unused keys to validateUnusedKeys
    (config_entry_ce.go), which lists each in a go-multierror; snake_case
    aliases (connect_timeout) are fields, CreateIndex/ModifyIndex let through."""
    r = api.put("/v1/config", json=body)
    listed = "\n\t".join(f"* {e}" for e in errors)
    count = "1 error" if len(errors) == 1 else f"{len(errors)} errors"
    assert (r.status_code, r.text) == (
        400,
        f"Request decoding failed: {count} occurred:\n\t{listed}\n\n",
    )
    fine = {"Kind": "service-resolver", "Name": "web", "ConnectTimeout": "5s"}
    r = api.put("/v1/config", json={**fine, "connect_timeout": "5s", "ModifyIndex": 9})
    assert r.status_code == 200
