"""Consul goes away: everyone keeps serving on what they last knew; Consul returns: all is back."""

import pytest
import requests

from tests.integration.api import TIMEOUT, create_order, create_user
from tests.support.processes import wait_until

pytestmark = pytest.mark.integration


def gateway_health(gateway: str) -> tuple[int, dict]:
    resp = requests.get(f"{gateway}/health", timeout=TIMEOUT)
    return resp.status_code, resp.json()


def every_instance_passing(stack) -> bool:
    for service in ("user-service", "order-service"):
        statuses = stack.consul.instance_status(service)
        expected = {s.name for s in stack.instances(service)}
        if {i for i, status in statuses.items() if status == "passing"} != expected:
            return False
    return True


def test_consul_outage_and_return(healthy_stack):
    stack, gateway = healthy_stack, healthy_stack.gateway_url
    user = create_user(gateway)
    stack.stop_agent()

    wait_until(
        lambda: gateway_health(gateway)[1]["consul"]["stale"],
        30,
        what="gateway reports stale",
    )
    status, body = gateway_health(gateway)
    assert status == 200 and body["status"] == "degraded"
    # Fail-static: the gateway routes on its last snapshot, order-service still finds users.
    served = set()
    for _ in range(6):
        resp = requests.get(f"{gateway}/api/users/{user['id']}", timeout=TIMEOUT)
        assert resp.status_code == 200, resp.text
        served.add(resp.headers["X-Served-By"])
    assert served == {s.name for s in stack.instances("user-service")}
    assert create_order(gateway, user["id"]).status_code == 201

    stack.start_agent()
    wait_until(
        lambda: every_instance_passing(stack), 45, what="instances back in Consul"
    )
    wait_until(
        lambda: not gateway_health(gateway)[1]["consul"]["stale"],
        30,
        what="gateway not stale",
    )
    for spec in stack.instances("gateway"):
        stack.wait_gateway(spec)
    ids = {
        requests.get(f"{gateway}/api/users/{user['id']}", timeout=TIMEOUT).headers[
            "X-Served-By"
        ]
        for _ in range(4)
    }
    assert ids == {s.name for s in stack.instances("user-service")}
