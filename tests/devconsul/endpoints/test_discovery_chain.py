"""/v1/discovery-chain/:service against a real devconsul.

Relies on hashicorp/consul agent/discovery_chain_endpoint.go (GET, POST with
overrides, "Missing chain name", "Invalid OverrideMeshGateway.Mode parameter"),
website/content/api-docs/discovery-chain.mdx (the compiled shape) and
structs.CompiledDiscoveryChain (Partition, "Default", target IDs with the
partition).
"""

import re

import pytest

pytestmark = pytest.mark.integration


def test_the_default_chain(client):
    chain = client.discovery_chain.get("web")["Chain"]
    target = "web.default.default.dc1"
    sni = chain["Targets"][target]["SNI"]
    assert re.fullmatch(r"web\.default\.dc1\.internal\.[0-9a-f-]{36}\.consul", sni)
    assert chain == {
        "ServiceName": "web",
        "Namespace": "default",
        "Partition": "default",
        "Datacenter": "dc1",
        "Default": True,
        "Protocol": "tcp",
        "StartNode": f"resolver:{target}",
        "Nodes": {
            f"resolver:{target}": {
                "Type": "resolver",
                "Name": target,
                "Resolver": {"Default": True, "ConnectTimeout": "5s", "Target": target},
            }
        },
        "Targets": {
            target: {
                "ID": target,
                "Service": "web",
                "Namespace": "default",
                "Partition": "default",
                "Datacenter": "dc1",
                "MeshGateway": {},
                "Subset": {},
                "ConnectTimeout": "5s",
                "SNI": sni,
                "Name": sni,
            }
        },
    }


def test_config_entries_and_overrides_shape_the_chain(client, api):
    client.config.set("service-defaults", "web", {"Protocol": "http"})
    client.config.set("service-resolver", "web", {"ConnectTimeout": "15s"})
    chain = client.discovery_chain.get("web", compile_dc="dc2")["Chain"]
    assert (chain["Protocol"], chain["Datacenter"], "Default" in chain) == (
        "http",
        "dc2",
        False,
    )
    (node,) = chain["Nodes"].values()
    assert node["Resolver"] == {
        "ConnectTimeout": "15s",
        "Target": "web.default.default.dc2",
    }
    chain = client.discovery_chain.get(
        "web",
        override_protocol="grpc",
        override_connect_timeout="7s",
        override_mesh_gateway_mode="remote",
    )["Chain"]
    assert chain["Protocol"] == "grpc"
    assert re.fullmatch(r"[0-9a-f]{8}", chain["CustomizationHash"])
    (target,) = chain["Targets"].values()
    assert (target["MeshGateway"], target["ConnectTimeout"]) == (
        {"Mode": "remote"},
        "7s",
    )
    # The GET of the same path is not answered from the POST's cache entry.
    assert client.discovery_chain.get("web")["Chain"]["Protocol"] == "http"


def test_bad_requests(api):
    r = api.request(
        "POST", "/v1/discovery-chain/web", json={"OverrideMeshGateway": {"Mode": "x"}}
    )
    assert (r.status_code, r.text) == (
        400,
        "Invalid OverrideMeshGateway.Mode parameter",
    )
    r = api.get("/v1/discovery-chain/")
    assert (r.status_code, r.text) == (400, "Missing chain name")
    r = api.request(
        "POST", "/v1/discovery-chain/web", json={"OverrideConnectTimeout": "soon"}
    )
    assert r.status_code == 400
    assert r.text.startswith("Request decoding failed: ")
    assert api.put("/v1/discovery-chain/web").status_code == 405


def test_unknown_override_fields_are_ignored(api):
    """agent/discovery_chain_endpoint.go decodes the POST body into a map and
    then with mapstructure, without ErrorUnused or unused-key checks: a key
    that names no override is dropped, unlike the endpoints using decodeBody."""
    body = {"OverrideProtocol": "http", "OverrideProtcol": "grpc"}
    r = api.request("POST", "/v1/discovery-chain/web", json=body)
    assert (r.status_code, r.json()["Chain"]["Protocol"]) == (200, "http")
