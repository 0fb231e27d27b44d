"""Gateway reads on a dev agent with no gateways, against a real devconsul.

Relies on hashicorp/consul agent/catalog_endpoint.go (CatalogGatewayServices:
"Missing gateway name", the RPC's nil list returned as is) and
agent/health_endpoint.go (healthServiceNodes with ingress: "Missing service
name", ?passing validated, nil turned into an empty list, filter selectors of
CheckServiceNode).
"""

import pytest

import consul

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def client(module_api):
    return consul.Consul(host="127.0.0.1", port=module_api.agent.port)


def test_gateway_services_of_a_gateway_that_does_not_exist(client, module_api):
    r = module_api.get("/v1/catalog/gateway-services/ingress")
    assert (r.status_code, r.text, r.headers["X-Consul-KnownLeader"]) == (
        200,
        "null",
        "true",
    )
    assert int(r.headers["X-Consul-Index"]) >= 1
    assert client.catalog.gateway_services("ingress") is None
    r = module_api.get("/v1/catalog/gateway-services/")
    assert (r.status_code, r.text) == (400, "Missing gateway name")


def test_ingress_health_is_empty(client, module_api):
    module_api.register({"Name": "web", "Port": 80})
    index, nodes = client.health.ingress("web")
    assert nodes == []
    assert int(index) >= 1
    r = module_api.get("/v1/health/ingress/")
    assert (r.status_code, r.text) == (400, "Missing service name")
    r = module_api.get("/v1/health/ingress/web?passing=maybe")
    assert (r.status_code, r.text) == (400, "Invalid value for ?passing")
    r = module_api.get("/v1/health/ingress/web", params={"filter": "Nope == 1"})
    assert r.status_code == 500
    assert r.text.startswith("Failed to create boolean expression evaluator")


def test_reads_block_on_config_entries(client, module_api):
    index = module_api.get("/v1/health/ingress/web").headers["X-Consul-Index"]
    pending = module_api.block("/v1/health/ingress/web", index)
    assert pending.still_waiting(0.3)
    client.config.set("ingress-gateway", "ingress", {"Listeners": []})
    r = pending.response()
    assert (r.json(), int(r.headers["X-Consul-Index"]) > int(index)) == ([], True)
