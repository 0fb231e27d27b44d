"""/v1/acl/* without and with -acl-token."""

import pytest
import requests

import consul
from tests.conftest import Agent
from tests.support.processes import free_port

pytestmark = pytest.mark.integration


def test_acls_disabled_by_default(shared_api, shared_devconsul):
    r = shared_api.get("/v1/acl/token/self")
    assert (r.status_code, r.text) == (401, "ACL support disabled")
    assert (
        shared_api.put("/v1/agent/token/default", json={"Token": "x"}).status_code
        == 401
    )
    # Any token is accepted and ignored.
    r = shared_api.get("/v1/agent/services", headers={"X-Consul-Token": "whatever"})
    assert r.status_code == 200
    c = consul.Consul(host="127.0.0.1", port=shared_devconsul.port)
    with pytest.raises(consul.ACLDisabled):
        c.acl.token.read_self()


@pytest.fixture(scope="module")
def acl_agent():
    agent = Agent(free_port(), "-acl-token", "s3cret")
    yield agent
    agent.process.stop()


@pytest.mark.parametrize(
    ("kwargs", "status", "text"),
    [
        ({}, 403, "Permission denied"),
        ({"headers": {"X-Consul-Token": "wrong"}}, 403, "ACL not found"),
        ({"headers": {"X-Consul-Token": "s3cret"}}, 200, None),
        ({"params": {"token": "s3cret"}}, 200, None),
        ({"headers": {"Authorization": "Bearer s3cret"}}, 200, None),
    ],
)
def test_acl_mode_token_sources(acl_agent, kwargs, status, text):
    r = requests.get(f"{acl_agent.url}/v1/agent/services", timeout=5, **kwargs)
    assert r.status_code == status
    if text:
        assert r.text == text


def test_acl_mode_leaves_status_open_and_serves_token_self(acl_agent):
    assert (
        requests.get(f"{acl_agent.url}/v1/status/leader", timeout=5).status_code == 200
    )
    c = consul.Consul(host="127.0.0.1", port=acl_agent.port, token="s3cret")
    assert c.acl.token.read_self()["SecretID"] == "s3cret"
    c.agent.service.register("guarded", port=1)
    assert "guarded" in c.agent.services()
    anonymous = consul.Consul(host="127.0.0.1", port=acl_agent.port)
    with pytest.raises(consul.ACLPermissionDenied):
        anonymous.agent.services()
