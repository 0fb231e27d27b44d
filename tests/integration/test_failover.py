"""Instances die or restart under load; clients of the gateway must not notice."""

import time

import pytest

from tests.integration.api import create_user, orders_total
from tests.integration.load import Load, get_user, post_order
from tests.support.processes import wait_until

pytestmark = pytest.mark.integration


def wait_for_requests(load: Load, n: int, since: float = 0.0) -> None:
    wait_until(
        lambda: load.count(since=since) >= n, 20, what=f"{n} requests under load"
    )


def test_sigkill_of_an_instance_under_get_load_fails_no_request(healthy_stack):
    stack = healthy_stack
    user = create_user(stack.gateway_url)
    victim, survivor = [s.name for s in stack.instances("user-service")]
    with Load({"get": get_user(stack.gateway_url, user["id"])}) as load:
        wait_for_requests(load, 20)
        stack.kill(victim)
        wait_until(
            lambda: (
                stack.consul.instance_status("user-service").get(victim) == "critical"
            ),
            20,
            what=f"{victim} critical in Consul",
        )
        # The gateway follows Consul within a second; from then on only the survivor answers.
        settled = time.monotonic() + 1.0
        wait_for_requests(load, 50, since=settled)
    assert load.failures() == []
    assert {o.served_by for o in load.outcomes if o.at > settled} == {survivor}


def test_rolling_restart_under_mixed_load_fails_nothing_and_duplicates_nothing(
    healthy_stack,
):
    stack = healthy_stack
    user = create_user(stack.gateway_url)
    keys: list[str] = []
    calls = {
        "get": get_user(stack.gateway_url, user["id"]),
        "post": post_order(stack.gateway_url, user["id"], keys),
    }
    with Load(calls, threads=4, pause=0.02) as load:
        wait_for_requests(load, 20)
        for spec in stack.instances("user-service"):
            stack.restart(spec.name)
            wait_for_requests(load, 20, since=time.monotonic())
    assert load.failures() == []
    created = [o for o in load.outcomes if o.kind == "post"]
    # 200 is a replay: the gateway or a client retried a POST whose key was already used.
    assert created and all(o.status in (200, 201) for o in created)
    assert orders_total(stack.gateway_url, user["id"]) == len(created) == len(set(keys))
