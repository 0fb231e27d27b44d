import pytest

import consul

pytestmark = pytest.mark.integration


def test_leader_and_peers(shared_api, shared_devconsul):
    r = shared_api.get("/v1/status/leader")
    assert (r.status_code, r.text) == (200, '"127.0.0.1:8300"')
    assert "X-Consul-Index" not in r.headers
    assert shared_api.get("/v1/status/peers").json() == ["127.0.0.1:8300"]
    c = consul.Consul(host="127.0.0.1", port=shared_devconsul.port)
    assert c.status.leader() == "127.0.0.1:8300"


@pytest.mark.parametrize("path", ["/v1/status/leader", "/v1/status/peers"])
def test_foreign_datacenter(shared_api, path):
    """StatusLeader/StatusPeers read ?dc= (agent/status_endpoint.go)."""
    r = shared_api.get(path, params={"dc": "dc2"})
    assert (r.status_code, r.text) == (500, "No path to datacenter")
    assert shared_api.get(path, params={"dc": "dc1"}).status_code == 200
