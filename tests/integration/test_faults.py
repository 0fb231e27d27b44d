"""The fault matrix (issue 12): Consul and instances fail in every way we know, at any moment
after the stack is ready, under steady mixed load through the gateway -- and no request fails.

One stack for the module, whose processes reach devconsul through a DelayProxy (so Consul
can be made slow); each scenario restores the stack whole before the next. Tuned so a frozen
instance costs seconds, not tens of seconds: the gateway's read timeout is 3 s, and
order-service's wait for user-service 2 s (below it, so order-service retries on another
user-service instance before the gateway gives up on order-service).
"""

import dataclasses
import json
import signal
import sys
import time
from collections import Counter

import pytest
import requests
from sqlalchemy import create_engine, text

from switchyard.agent import choose_agent
from switchyard.plan import StackOptions, free_port
from switchyard.stack import Stack, StartupError
from tests.integration.api import create_user, orders_total
from tests.integration.load import (
    Load,
    get_user,
    post_order,
    post_order_at,
    user_view,
)
from tests.support.delay_proxy import DelayProxy
from tests.support.faults import (
    CONSUL_FAULTS,
    SLOW_SECONDS,
    consul_fault,
    freeze_at,
    freeze_between_writes,
    fresh_instances,
    instance_fault,
    restore_instances,
    sqlite_write_locked,
    thaw,
    thaw_all,
)
from tests.support.processes import ManagedProcess, wait_until
from tests.support.services import POSTGRES_URL, fresh_database, stop_stack_now

pytestmark = pytest.mark.integration

CLIENT_TIMEOUT = 20.0  # above the gateway's whole deadline: the gateway's answer counts
TUNING = {
    "order-service": {"WEB_CONCURRENCY": "2", "USER_SERVICE_TIMEOUT": "2"},
    "gateway": {"GATEWAY_READ_TIMEOUT": "3"},
}
CHECK_INTERVAL = 1.0  # switchyard's local stack (CHECK_INTERVAL / CHECK_TIMEOUT 1s)
FAULT_SECONDS = 2 * SLOW_SECONDS  # how long a hung, slow or restarted agent is loaded


def fault_stack(tmp_path_factory, env: dict[str, dict[str, str]]):
    """(stack, proxy): a local stack whose every process talks to Consul through `proxy`,
    each service with TUNING and `env` on top."""
    agent = choose_agent(None, free_port(), prefer="devconsul")
    proxy = DelayProxy(agent.port).start()
    options = StackOptions(
        users=2,
        orders=2,
        gateway_port=free_port(),
        data_dir=tmp_path_factory.mktemp("faults"),
    )
    stack = Stack(options, agent, startup_timeout=90)
    for name, spec in list(stack.specs.items()):
        spec_env = {
            **spec.env,
            "CONSUL_HTTP_ADDR": proxy.addr,
            **TUNING.get(spec.service, {}),
            **env.get(spec.service, {}),
        }
        stack.specs[name] = dataclasses.replace(spec, env=spec_env)
    try:
        stack.start()
    except StartupError as exc:
        proxy.stop()
        pytest.fail(exc.describe(), pytrace=False)
    yield stack, proxy
    thaw_all(stack)
    stop_stack_now(stack)
    proxy.stop()


@pytest.fixture(scope="module")
def faulty(tmp_path_factory):
    yield from fault_stack(tmp_path_factory, {})


@pytest.fixture(scope="module")
def faulty_on_postgresql(tmp_path_factory):
    """The same stack, its services on PostgreSQL (a schema each)."""
    where = tmp_path_factory.mktemp("postgresql")
    with (
        fresh_database("postgresql", where, "users") as users,
        fresh_database("postgresql", where, "orders") as orders,
    ):
        yield from fault_stack(
            tmp_path_factory,
            {
                "user-service": {"DATABASE_URL": users},
                "order-service": {"DATABASE_URL": orders},
                # A retry waiting for a frozen writer's key waits until PostgreSQL ends
                # that session (5 s after its last statement): 4 s, then 4 s more.
                "gateway": {"GATEWAY_READ_TIMEOUT": "4"},
            },
        )


@pytest.fixture
def stack(faulty):
    """The module's stack, whole again after each scenario (nothing left frozen)."""
    stack, proxy = faulty
    yield stack
    thaw_all(stack)
    proxy.delay = 0.0
    restore_instances(stack)


def mixed_load(stack: Stack, user_id: int, keys: list[str], direct=()) -> Load:
    """GET a user, POST an order, the aggregated view, all through the gateway; with
    `direct` (order-service instances), orders POSTed straight to them too, so that
    order-service's own discovery is tried whatever the gateway does."""
    gateway = stack.gateway_url
    calls = {
        "get": get_user(gateway, user_id, CLIENT_TIMEOUT),
        "post": post_order(gateway, user_id, keys, CLIENT_TIMEOUT),
        "view": user_view(gateway, user_id, CLIENT_TIMEOUT),
    }
    if direct:
        urls = [f"{spec.url}/orders" for spec in direct]
        calls["direct"] = post_order_at(urls, user_id, keys, CLIENT_TIMEOUT)
    return Load(calls, threads=len(calls), pause=0.02)


def wait_for_each_kind(load: Load, n: int, since: float, timeout: float = 30) -> None:
    try:
        wait_until(
            lambda: all(load.count(kind, since) >= n for kind in load.calls),
            timeout,
            what=f"{n} requests of each kind",
        )
    except AssertionError as exc:  # say which kind lagged, and what the slow ones met
        counts = {kind: load.count(kind, since) for kind in load.calls}
        failures = [o for o in load.failures() if o.at >= since][:3]
        raise AssertionError(f"{exc}; counts {counts}; failures {failures}") from None


def wait_out_of_passing(stack: Stack, service: str, victim: str) -> None:
    wait_until(
        lambda: stack.consul.instance_status(service).get(victim, "gone") != "passing",
        10 * CHECK_INTERVAL,
        what=f"{victim} out of the passing set",
    )


def assert_one_order_per_post(stack: Stack, user_id: int, load: Load, keys) -> None:
    """Retried POSTs carried their Idempotency-Key: one order each, none twice."""
    created = [o for o in load.outcomes if o.kind in ("post", "direct")]
    assert orders_total(stack.gateway_url, user_id) == len(created) == len(set(keys))


def health(url: str) -> dict:
    return requests.get(f"{url}/health", timeout=5).json()


def order_services_report(stack: Stack, state: str) -> bool:
    """Every order-service instance's /health says `state` for user-service discovery."""
    return all(
        health(spec.url)["checks"]["user-service"] == state
        for spec in stack.instances("order-service")
    )


def gateway_stale(stack: Stack) -> bool:
    return health(stack.gateway_url)["consul"]["stale"]


def recovered(stack: Stack) -> bool:
    return order_services_report(stack, "ok") and not gateway_stale(stack)


def assert_no_failures(load: Load) -> None:
    failures = load.failures()
    counts = {kind: load.count(kind) for kind in load.calls}
    causes = Counter((o.kind, o.status, error_code(o)) for o in failures)
    assert failures == [], f"{len(failures)} of {counts} failed: {dict(causes)}"


def error_code(outcome) -> str | None:
    """The code of a failed answer: the gateway's, a service's, or the view's first error
    (a view without its orders); else the exception."""
    try:
        body = json.loads(outcome.error)
    except (TypeError, ValueError):
        return outcome.error
    error = body.get("error") or (body.get("errors") or [{}])[0]
    return error.get("code")


def user_created_directly(stack: Stack) -> int:
    """A user made at a user-service instance, so that neither the gateway nor
    order-service has served a request yet."""
    spec = stack.instances("user-service")[0]
    resp = requests.post(
        f"{spec.url}/users",
        json={"name": "Early", "email": f"early-{time.monotonic_ns()}@example.com"},
        timeout=10,
    )
    assert resp.status_code == 201, resp.text
    return resp.json()["id"]


# -- Consul: killed, hung, slow, restarted empty -------------------------------------------

WHEN = ("before_any_request", "after_warm_up")


@pytest.mark.parametrize("when", WHEN)
@pytest.mark.parametrize("fault", CONSUL_FAULTS)
def test_a_consul_outage_fails_no_request(stack, faulty, fault, when):
    proxy = faulty[1]
    if when == "before_any_request":
        fresh_instances(
            stack, [s.name for s in stack.instances() if s.service != "user-service"]
        )
        user_id = user_created_directly(stack)
    else:
        user_id = create_user(stack.gateway_url)["id"]
    load = mixed_load(stack, user_id, [], direct=stack.instances("order-service"))
    if when == "after_warm_up":
        load.start()
        wait_for_each_kind(load, 10, since=0.0)
    try:
        with consul_fault(stack, proxy, fault):
            if when == "before_any_request":
                load.start()  # the first request of all meets the fault
            started = time.monotonic()
            wait_for_each_kind(load, 5, since=started)
            if fault == "killed":
                # Known to be away: every caller says so, and keeps serving.
                wait_until(
                    lambda: order_services_report(stack, "stale"),
                    15,
                    what="order-service /health: user-service stale",
                )
                wait_until(lambda: gateway_stale(stack), 15, what="gateway stale")
            else:
                if fault == "hung":
                    # The gateway's watchers' answers are overdue within seconds (its
                    # blocking queries wait 5 s), long before their HTTP timeout.
                    wait_until(lambda: gateway_stale(stack), 15, what="gateway stale")
                # Load for a while: blocking queries are cut off, late, or meet the empty
                # agent; nothing observable marks the moment, hence a plain sleep.
                time.sleep(max(0.0, started + FAULT_SECONDS - time.monotonic()))
            wait_for_each_kind(load, 5, since=time.monotonic())
        # Consul back (or restarted empty): everyone follows it again, by themselves.
        wait_until(lambda: recovered(stack), 45, what="everyone recovered")
        wait_for_each_kind(load, 5, since=time.monotonic())
    finally:
        load.stop()
    assert_no_failures(load)


# -- one instance: SIGKILL, SIGTERM, SIGSTOP -----------------------------------------------

# Holds SQLite's write lock half of the time, in 50 ms writes.
BUSY_WRITER = """
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("PRAGMA journal_mode = WAL")
db.execute("CREATE TABLE IF NOT EXISTS t (n INTEGER)")
print("writing", flush=True)
while True:
    db.execute("BEGIN IMMEDIATE")
    db.execute("INSERT INTO t VALUES (1)")
    time.sleep(0.05)
    db.execute("COMMIT")
    time.sleep(0.05)
"""


def test_an_instance_is_frozen_between_its_sqlite_writes(tmp_path):
    """The SIGSTOP scenarios freeze an instance where it holds no SQLite write lock (one
    frozen inside a write stalls every writer: the database's limit, not routing's)."""
    path = tmp_path / "busy.db"
    writer = ManagedProcess(
        [sys.executable, "-c", BUSY_WRITER, str(path)], name="writer"
    )
    writer.start()
    try:
        wait_until(lambda: "writing" in writer.output(), 10, what="the writer writing")
        for _ in range(5):
            freeze_between_writes(writer.pid, f"sqlite:///{path}")
            assert not sqlite_write_locked(str(path))
            thaw(writer.pid)
    finally:
        thaw(writer.pid)
        writer.stop()


@pytest.mark.parametrize("service", ["user-service", "order-service"])
@pytest.mark.parametrize(
    "sig",
    [signal.SIGKILL, signal.SIGTERM, signal.SIGSTOP],
    ids=["sigkill", "sigterm", "sigstop"],
)
def test_losing_an_instance_under_mixed_load_fails_no_request(stack, service, sig):
    user_id = create_user(stack.gateway_url)["id"]
    victim = stack.instances(service)[0].name
    keys: list[str] = []
    others = [s for s in stack.instances("order-service") if s.name != victim]
    with mixed_load(stack, user_id, keys, direct=others) as load:
        wait_for_each_kind(load, 10, since=0.0)
        with instance_fault(stack, victim, sig):
            hit = time.monotonic()
            wait_out_of_passing(stack, service, victim)
            print(
                f"\n{victim} {sig.name}: out of Consul's passing set after "
                f"{time.monotonic() - hit:.1f}s"
            )
            if sig == signal.SIGTERM:
                wait_until(
                    lambda: not stack.processes[victim].alive(), 20, what="drained exit"
                )
            wait_for_each_kind(load, 10, since=time.monotonic())
        restore_instances(stack)
        wait_for_each_kind(load, 5, since=time.monotonic())
    assert_no_failures(load)
    assert_one_order_per_post(stack, user_id, load, keys)


# -- one instance frozen inside a write, on PostgreSQL ------------------------------------

HOLDING_A_KEY = text(
    "SELECT count(*) FROM pg_stat_activity WHERE application_name = :name"
    " AND backend_xid IS NOT NULL AND query LIKE 'INSERT INTO idempotency_keys%'"
)


@pytest.mark.postgres
def test_on_postgresql_an_instance_frozen_holding_a_key_fails_no_request(
    faulty_on_postgresql,
):
    """The freeze SQLite cannot take (freeze_between_writes): an order-service instance
    frozen between writing an Idempotency-Key and committing, while the gateway retries
    that POST on the other instance, whose insert of the same key waits. PostgreSQL ends
    the frozen session after its idle timeout (chassis.storage), the retry goes through,
    and no request fails or makes two orders."""
    stack, _ = faulty_on_postgresql
    user_id = create_user(stack.gateway_url)["id"]
    victim = stack.instances("order-service")[0].name
    pid = stack.processes[victim].pid
    others = stack.instances("order-service")[1:]
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")

    def holding_a_key() -> bool:
        with admin.connect() as connection:
            return connection.scalar(HOLDING_A_KEY, {"name": victim}) > 0

    keys: list[str] = []
    try:
        with mixed_load(stack, user_id, keys, direct=others) as load:
            wait_for_each_kind(load, 10, since=0.0)
            # Caught between its key's INSERT and its COMMIT.
            tries = freeze_at(pid, holding_a_key, "a key written, uncommitted", 100)
            print(f"\n{victim} frozen holding a key at freeze {tries}")
            try:
                wait_out_of_passing(stack, "order-service", victim)
                # Still frozen when PostgreSQL ends its session: the timeout freed the key.
                wait_until(
                    lambda: not holding_a_key(), 10, what="the frozen session ended"
                )
                wait_for_each_kind(load, 10, since=time.monotonic())
            finally:
                thaw(pid)
            wait_for_each_kind(load, 5, since=time.monotonic())
    finally:
        admin.dispose()
    assert_no_failures(load)
    assert_one_order_per_post(stack, user_id, load, keys)
