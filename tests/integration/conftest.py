"""One local stack for the whole end-to-end suite, started through switchyard's own Stack.

The stack runs with Consul ACLs on (devconsul `-acl-token`, CONSUL_HTTP_TOKEN in every
service and the gateway), so the suite doubles as the ACL run: a missing token anywhere
would leave an instance unregistered and the start-up would fail.

Tests that break something (kill an instance, stop Consul) restore it before they end, so
the next test finds two passing instances of each service again.
"""

import pytest

from switchyard.agent import choose_agent
from switchyard.plan import StackOptions, free_port
from switchyard.stack import Stack, StartupError
from tests.support.services import stop_stack_now

ACL_TOKEN = "integration-acl-token"


@pytest.fixture(scope="session")
def stack(tmp_path_factory):
    options = StackOptions(
        users=2,
        orders=2,
        gateway_port=free_port(),
        data_dir=tmp_path_factory.mktemp("stack"),
        token=ACL_TOKEN,
    )
    agent = choose_agent(None, free_port(), ACL_TOKEN, prefer="devconsul")
    stack = Stack(options, agent, startup_timeout=90)
    try:
        stack.start()
    except StartupError as exc:
        pytest.fail(exc.describe(), pytrace=False)
    yield stack
    stop_stack_now(stack)


@pytest.fixture
def healthy_stack(stack):
    """The stack, checked whole before and restored whole after a disruptive test."""
    yield stack
    for name, proc in list(stack.processes.items()):
        if not proc.alive():
            stack.restart(name)
    for spec in stack.instances("gateway"):
        stack.wait_gateway(spec)


@pytest.fixture
def gateway(stack) -> str:
    return stack.gateway_url
