"""The suite's stack runs with ACLs on: Consul refuses the anonymous, serves the token."""

import pytest
import requests

from tests.integration.conftest import ACL_TOKEN

pytestmark = pytest.mark.integration


def test_consul_refuses_requests_without_the_token(stack):
    resp = requests.get(f"{stack.agent.url}/v1/agent/services", timeout=5)
    assert resp.status_code == 403


def test_every_instance_registered_with_the_token(stack):
    resp = requests.get(
        f"{stack.agent.url}/v1/agent/services",
        headers={"X-Consul-Token": ACL_TOKEN},
        timeout=5,
    )
    assert resp.status_code == 200
    registered = set(resp.json())
    assert {s.name for s in stack.instances()} <= registered
