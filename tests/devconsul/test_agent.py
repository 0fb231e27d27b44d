"""The local agent in-process: registration rules, maintenance, reaper, TTL texts."""

import time

import pytest

from devconsul.agent import Agent, truncate_output
from devconsul.config import AgentConfig
from devconsul.definitions import CheckDefinition, ServiceDefinition
from devconsul.durations import MILLISECOND, SECOND
from devconsul.errors import HTTPError
from devconsul.store import Check, Node, Service
from tests.support.processes import wait_until


def _service(sid="web-1", checks=()):
    return ServiceDefinition(
        id=sid,
        name="web",
        tags=["v1"],
        address="",
        port=80,
        meta={},
        weights={"Passing": 1, "Warning": 1},
        enable_tag_override=False,
        tagged_addresses={},
        checks=list(checks),
    )


@pytest.fixture
def agent():
    config = AgentConfig(
        node="n1", reap_interval_ns=100 * MILLISECOND, deregister_minimum_ns=0
    )
    agent = Agent(config).start()
    yield agent
    agent.stop()


def test_bootstrap_entries(agent):
    store = agent.store
    assert store.check("n1", "serfHealth").status == "passing"
    assert store.services[("n1", "consul")].port == 8300
    assert agent.local_service("consul") is None
    assert store.index > 0


def test_registration_is_one_index(agent):
    before = agent.store.index
    agent.register_service(_service(checks=[CheckDefinition(ttl=SECOND)]), False)
    assert agent.store.index == before + 1


def test_reaper_removes_service_after_critical_period(agent):
    check = CheckDefinition(ttl=10 * SECOND, deregister_after=200 * MILLISECOND)
    agent.register_service(_service(checks=[check]), False)
    wait_until(lambda: agent.local_service("web-1") is None, timeout=5)
    assert agent.store.service_checks("n1", "web-1") == []


def test_reaper_spares_passing_services(agent):
    check = CheckDefinition(
        ttl=10 * SECOND, status="passing", deregister_after=100 * MILLISECOND
    )
    agent.register_service(_service(checks=[check]), False)
    # An absence over time: some five reaper passes (100 ms apart), the last well past the
    # 100 ms limit, and none of them reaps a passing service.
    time.sleep(0.5)
    assert agent.local_service("web-1") is not None


def test_reaper_minimum_applies():
    config = AgentConfig(node="n1")
    agent = Agent(config)
    check = CheckDefinition(ttl=10 * SECOND, deregister_after=MILLISECOND)
    agent.register_service(_service(checks=[check]), False)
    agent.reap()  # critical for far less than the 1-minute floor
    assert agent.local_service("web-1") is not None


def test_maintenance_is_idempotent(agent):
    agent.register_service(_service(), False)
    agent.set_service_maintenance("web-1", True, "")
    index = agent.store.index
    agent.set_service_maintenance("web-1", True, "again")
    assert agent.store.index == index
    with pytest.raises(HTTPError):
        agent.set_service_maintenance("nope", True, "")


def test_deregistration_removes_maintenance_check(agent):
    agent.register_service(_service(), False)
    agent.set_service_maintenance("web-1", True, "")
    agent.deregister_service("web-1")
    assert ("n1", "_service_maintenance:web-1") not in agent.store.checks


def test_truncate_output():
    assert truncate_output("abc") == "abc"
    assert (
        truncate_output("x" * 5000) == "x" * 4096 + " ... (captured 4096 of 5000 bytes)"
    )


def test_reaper_looks_at_the_agents_own_checks_only():
    """A catalog check on another node may carry DeregisterCriticalServiceAfter
    in its Definition, but Consul's reaper walks the agent's local state only:
    it neither reaps that node's service nor the agent's service of the same ID."""
    agent = Agent(AgentConfig(node="n1", deregister_minimum_ns=0))
    agent.register_service(_service(), False)
    store = agent.store
    store.put_node(Node("", "db-1", "10.0.0.1", "dc1", {}, {}))
    store.put_service(Service(node="db-1", id="web-1", name="web", local=False))
    definition = CheckDefinition(deregister_after=MILLISECOND)
    store.put_check(
        Check(
            node="db-1",
            id="up",
            name="up",
            service_id="web-1",
            service_name="web",
            definition=definition,
            local=False,
        )
    )
    store.check("db-1", "up").critical_since -= 1.0  # far past its 1ms limit
    agent.reap()
    assert agent.local_service("web-1") is not None
    assert store.service("db-1", "web-1") is not None
