import json
import logging
import os
import threading
import time

import pytest

from discovery.consul_client import ConsulSettings, make_consul
from discovery.watcher import (
    Backoff,
    HealthWatcher,
    RateLimit,
    aggregate_status,
    next_index,
    parse_entry,
    stop_all,
    swaps,
    watch,
)
from tests.discovery.stubs import StubServer
from tests.support.clock import Clock, RecordingRate
from tests.support.processes import true_in_a_forked_child, wait_until


def entry(sid, port=80, address="10.0.0.1", checks=(), weights=None, meta=None):
    service = {
        "ID": sid,
        "Service": "svc",
        "Address": address,
        "Port": port,
        "Tags": [],
    }
    if weights is not None:
        service["Weights"] = weights
    if meta is not None:
        service["Meta"] = meta
    return {
        "Node": {"Node": "n1", "Address": "10.9.9.9"},
        "Service": service,
        "Checks": list(checks),
    }


def check(status, check_id="service:x"):
    return {"CheckID": check_id, "Status": status}


class FakeHealth:
    """Consul's health endpoint in memory: blocks while the index is unchanged (at most
    `hold` seconds), raises `error` when set, records every call."""

    def __init__(self, hold=2.0):
        self.cond = threading.Condition()
        self.index = 1
        self.entries: list = []
        self.error: Exception | None = None
        self.calls: list[dict] = []
        self.hold = hold

    def set(self, entries, index=None):
        with self.cond:
            self.entries = entries
            self.index = self.index + 1 if index is None else index
            self.cond.notify_all()

    def fail(self, error):
        with self.cond:
            self.error = error
            self.cond.notify_all()

    def service(self, name, index=None, wait=None, passing=None):
        with self.cond:
            self.calls.append(
                {"name": name, "index": index, "wait": wait, "passing": passing}
            )
            if index:
                self.cond.wait_for(lambda: self.index != index or self.error, self.hold)
            if self.error:
                raise self.error
            return str(self.index), list(self.entries)


class FakeConsul:
    def __init__(self, hold=2.0):
        self.health = FakeHealth(hold)


@pytest.fixture
def fake():
    return FakeConsul()


@pytest.fixture
def make_watcher(fake):
    started = []

    def make(**kwargs):
        kwargs.setdefault("backoff", Backoff(base=0.01, cap=0.05))
        kwargs.setdefault("rate", RateLimit(period=0.01))
        w = HealthWatcher("svc", consul=fake, **kwargs)
        started.append(w)
        return w.start()

    yield make
    for w in started:
        w.stop()
    fake.health.set(
        fake.health.entries
    )  # wake queries in flight so the threads end now
    for w in started:
        w._thread.join(3)


def ids(watcher):
    return [i.id for i in watcher.snapshot().instances]


def test_first_answer_fills_the_snapshot(fake, make_watcher):
    fake.health.set([entry("b", 81), entry("a", 80)], index=10)
    w = make_watcher()
    assert w.wait_ready(2)
    snap = w.snapshot()
    assert [i.id for i in snap.instances] == ["a", "b"]  # sorted by id
    assert snap.index == 10 and not snap.stale and snap.error is None and snap.loaded
    assert fake.health.calls[0]["passing"] is True


def test_changes_arrive_through_blocking_queries(fake, make_watcher):
    w = make_watcher()
    assert w.wait_ready(2)
    fake.health.set([entry("a")])
    wait_until(lambda: ids(w) == ["a"], timeout=1, what="new instance")
    fake.health.set([entry("a"), entry("b")])
    wait_until(lambda: ids(w) == ["a", "b"], timeout=1, what="second instance")
    blocking = [c for c in fake.health.calls if c["index"]]
    assert blocking and all(c["wait"] == "30000ms" for c in blocking)


def test_empty_answer_is_real_not_an_error(fake, make_watcher):
    fake.health.set([entry("a")])
    w = make_watcher()
    wait_until(lambda: ids(w) == ["a"], timeout=2)
    fake.health.set([])
    wait_until(lambda: w.snapshot().instances == (), timeout=1)
    snap = w.snapshot()
    assert not snap.stale and snap.error is None and snap.loaded


def test_failure_keeps_last_snapshot_marked_stale_then_recovers(fake, make_watcher):
    fake.health.set([entry("a")])
    w = make_watcher()
    wait_until(lambda: ids(w) == ["a"], timeout=2)
    fake.health.fail(ConnectionError("agent down"))
    wait_until(lambda: w.snapshot().stale, timeout=2, what="stale snapshot")
    snap = w.snapshot()
    assert [i.id for i in snap.instances] == ["a"]
    assert "agent down" in snap.error
    fake.health.error = None
    fake.health.set([entry("a"), entry("b")])
    wait_until(lambda: not w.snapshot().stale, timeout=2, what="recovery")
    assert ids(w) == ["a", "b"] and w.snapshot().error is None


def test_every_snapshot_swapped_in_is_counted_after_it_is_in_place(fake, make_watcher):
    """The gateway's Directory rebuilds its view when swaps() moves, so every new snapshot
    -- an answer, or the last one marked stale -- moves it, once it can be read."""
    w = make_watcher()
    assert w.wait_ready(2)
    seen = swaps()
    fake.health.set([entry("a")])
    wait_until(lambda: swaps() != seen, timeout=2, what="a swap counted")
    assert ids(w) == ["a"]
    seen = swaps()
    fake.health.fail(ConnectionError("agent down"))
    wait_until(lambda: swaps() != seen, timeout=2, what="a stale swap counted")
    assert w.snapshot().stale


def test_failure_before_first_answer_is_ready_but_not_loaded(fake, make_watcher):
    fake.health.fail(ConnectionError("refused"))
    w = make_watcher()
    assert w.wait_ready(2)
    snap = w.snapshot()
    assert snap.stale and not snap.loaded and "refused" in snap.error


def test_index_going_backwards_resets_to_zero(fake, make_watcher):
    fake.health.set([entry("a")], index=500)
    w = make_watcher()
    wait_until(lambda: w.snapshot().index == 500, timeout=2)
    fake.health.set([entry("b")], index=7)  # e.g. a restarted agent
    wait_until(lambda: ids(w) == ["b"], timeout=1)
    wait_until(lambda: len(fake.health.calls) >= 4, timeout=2)
    indexes = [c["index"] for c in fake.health.calls]
    # after the 7 arrived (asked with 500) the next query starts over without an index
    assert indexes[indexes.index(500) + 1 :][:2] == [None, 7]


def test_wait_timeout_keeps_the_index():
    fake = FakeConsul(
        hold=0.05
    )  # every blocking query times out at once, index unchanged
    fake.health.set([entry("a")], index=42)
    w = HealthWatcher("svc", consul=fake, rate=RateLimit(period=0.01)).start()
    try:
        wait_until(
            lambda: len(fake.health.calls) >= 6, timeout=5, what="several timeouts"
        )
    finally:
        w.stop()
    assert [c["index"] for c in fake.health.calls[:6]] == [None] + [42] * 5


def test_errors_are_logged_once_per_storm(fake, make_watcher, caplog):
    caplog.set_level(logging.INFO, logger="discovery")
    fake.health.fail(ConnectionError("agent down"))
    w = make_watcher()
    wait_until(lambda: len(fake.health.calls) >= 10, timeout=5, what="retries")
    fake.health.error = None
    fake.health.set([entry("a")])
    wait_until(lambda: not w.snapshot().stale, timeout=2)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "agent down" in warnings[0].getMessage()
    assert any("answers again" in r.getMessage() for r in caplog.records)


def test_stop_returns_promptly_during_a_blocking_query():
    fake = FakeConsul(hold=30)
    fake.health.set([entry("a")])
    w = HealthWatcher("svc", consul=fake).start()
    wait_until(lambda: len(fake.health.calls) >= 2, timeout=2, what="blocking query")
    started = time.monotonic()
    w.stop()
    assert time.monotonic() - started < 5  # far below the 30 s the query is held
    fake.health.set([entry("b")])  # the query in flight returns; its answer is dropped
    w._thread.join(2)
    assert not w._thread.is_alive()
    assert ids(w) == ["a"]


def test_all_statuses_kept_when_not_passing_only(fake, make_watcher):
    fake.health.set(
        [
            entry("a", checks=[check("passing")]),
            entry("b", checks=[check("warning")]),
            entry("c", checks=[check("critical")]),
        ]
    )
    w = make_watcher(passing_only=False)
    wait_until(lambda: len(ids(w)) == 3, timeout=2)
    assert [i.status for i in w.snapshot().instances] == [
        "passing",
        "warning",
        "critical",
    ]
    assert fake.health.calls[0]["passing"] is False


def test_malformed_answer_keeps_last_good_snapshot(fake, make_watcher):
    fake.health.set([entry("a")])
    w = make_watcher()
    wait_until(lambda: ids(w) == ["a"], timeout=2)
    fake.health.set([{"Service": {"ID": "broken"}}])
    wait_until(lambda: w.snapshot().stale, timeout=2)
    assert ids(w) == ["a"]


@pytest.mark.parametrize(
    "checks, status",
    [
        ([], "passing"),
        ([check("passing"), check("passing", "serfHealth")], "passing"),
        ([check("passing"), check("warning")], "warning"),
        ([check("warning"), check("critical")], "critical"),
        (
            [check("critical"), check("critical", "_service_maintenance:x")],
            "maintenance",
        ),
        ([check("passing"), check("critical", "_node_maintenance")], "maintenance"),
        # A node check failing (the agent's node unreachable) takes every instance on it out.
        ([check("passing"), check("critical", "serfHealth")], "critical"),
        ([check("bogus")], "critical"),
    ],
)
def test_aggregate_status(checks, status):
    assert aggregate_status(checks) == status


def test_parse_entry_fields_and_defaults():
    i = parse_entry(
        entry(
            "a", 81, address="", weights={"Passing": 3, "Warning": 2}, meta={"v": "1"}
        )
    )
    assert (i.id, i.service, i.address, i.port) == ("a", "svc", "10.9.9.9", 81)
    assert i.weights == (3, 2) and dict(i.meta) == {"v": "1"}
    assert parse_entry(entry("b")).weights == (1, 1)


@pytest.mark.parametrize(
    "previous, returned, expected",
    [
        (0, 10, 10),  # the first answer: a baseline
        (10, 10, 10),  # the wait ran out: block on the same index again
        (10, 12, 12),
        (500, 7, 0),  # went backwards (agent restarted, snapshot restored): ask afresh
        (0, 0, 1),  # X-Consul-Index 0 (a Consul bug): 0 would not block, 1 does
        (1, 0, 1),  # and it stays 1 while Consul keeps answering 0
        (10, 0, 0),  # backwards to 0: ask afresh, then the rule above
    ],
)
def test_next_index(previous, returned, expected):
    assert next_index(previous, returned) == expected


def test_rate_limit_lets_a_burst_of_two_through_then_one_query_per_period():
    clock = Clock()
    rate = RateLimit(burst=2, period=1.0, clock=clock)
    assert [rate.delay(), rate.delay()] == [0.0, 0.0]
    assert rate.delay() == pytest.approx(1.0)  # answers that keep coming back at once
    clock.now += 1.0  # it waited its turn
    assert rate.delay() == pytest.approx(1.0)
    clock.now += 1.0
    clock.now += 30.0  # then a query blocked the whole wait: the bucket is full again
    assert [rate.delay(), rate.delay()] == [0.0, 0.0]
    assert rate.delay() == pytest.approx(1.0)


class Churning(FakeConsul):
    """An index that moves on every query: each answer comes back at once."""

    def __init__(self):
        super().__init__()
        self.health.service = self._service

    def _service(self, name, index=None, wait=None, passing=None):
        self.health.calls.append({"index": index})
        self.health.index += 1
        return str(self.health.index), []


def test_a_churning_index_does_not_spin_the_loop():
    fake, rate = Churning(), RecordingRate(free=3)
    w = HealthWatcher("svc", consul=fake, rate=rate).start()
    try:
        wait_until(lambda: rate.asked == 4, timeout=5, what="the fourth token asked")
        # Every query paid its token first: the fourth waits, so three went out.
        assert len(fake.health.calls) == 3
    finally:
        w.stop()


def test_an_index_of_zero_is_blocked_on_as_one(fake, make_watcher):
    fake.health.set([entry("a")], index=0)
    make_watcher()
    wait_until(lambda: len(fake.health.calls) >= 3, timeout=5, what="three queries")
    assert [c["index"] for c in fake.health.calls[:3]] == [None, 1, 1]


def test_backoff_grows_caps_and_jitters():
    b = Backoff(base=0.1, cap=1.0)
    delays = [b.delay(n) for n in range(1, 10)]
    assert 0.05 <= delays[0] <= 0.1
    assert all(0.5 <= d <= 1.0 for d in delays[5:])
    assert len({round(d, 6) for d in delays}) > 1


def test_watch_registry_is_per_service_and_mode(monkeypatch):
    monkeypatch.setenv(
        "CONSUL_HTTP_ADDR", "127.0.0.1:1"
    )  # nothing there; threads back off
    try:
        a = watch("reg-svc")
        assert watch("reg-svc") is a
        assert watch("reg-svc", passing_only=False) is not a
        assert watch("other-svc") is not a
    finally:
        stop_all()
    assert watch("reg-svc") is not a
    stop_all()


def test_forked_child_keeps_the_watcher_and_its_snapshot_with_its_own_thread(
    fake, make_watcher
):
    fake.health.set([entry("a")], index=9)
    parent = make_watcher()
    assert parent.wait_loaded(2)
    fake.health.fail(ConnectionError("agent down"))  # the child cannot ask Consul
    try:
        assert true_in_a_forked_child(
            lambda: (
                parent.wait_loaded(0)
                and ids(parent) == ["a"]
                and parent._thread.is_alive()
            )
        )
    finally:
        fake.health.error = None


def test_a_forked_child_asks_consul_at_once_whatever_its_parent_spent(fake):
    """A worker forked while its master's watcher was held back by the rate limit runs a
    loop of its own, which owes nothing: its first answer comes at once."""
    fake.health.set([entry("a")], index=9)
    parent = HealthWatcher("svc", consul=fake, rate=RateLimit(period=3600)).start()
    try:
        wait_until(lambda: len(fake.health.calls) >= 2, 2, what="a blocking query")
        fake.health.set([entry("b")], index=10)  # its next query would wait an hour
        wait_until(lambda: ids(parent) == ["b"], 2, what="the parent's answer")

        def child_answers():
            fake.health.set([entry("c")], index=11)  # in the child's memory only
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                if ids(parent) == ["c"]:
                    return True
                time.sleep(0.01)
            return False

        assert true_in_a_forked_child(child_answers)
    finally:
        parent.stop()


def test_reading_a_running_watcher_makes_no_system_call(
    fake, make_watcher, monkeypatch
):
    watcher = make_watcher()
    assert watcher.wait_ready(2)

    def no_getpid():
        raise AssertionError("os.getpid() on the read path")

    monkeypatch.setattr(os, "getpid", no_getpid)
    assert watcher.snapshot().loaded


def test_an_answer_late_past_the_blocking_wait_is_overdue(make_watcher):
    watcher = make_watcher(wait=0.05)  # the fake holds each blocking query 2 s
    assert watcher.wait_loaded(2)
    wait_until(watcher.overdue, 5, what="the blocking query overdue")
    wait_until(lambda: not watcher.overdue(), 5, what="the answer, at last")


def test_the_registry_survives_fork(monkeypatch):
    monkeypatch.setenv("CONSUL_HTTP_ADDR", "127.0.0.1:1")
    parent = watch("fork-svc")
    try:
        assert true_in_a_forked_child(
            lambda: watch("fork-svc") is parent and parent._thread.is_alive()
        )
    finally:
        stop_all()


def test_wait_loaded_counts_answers_not_failures(fake, make_watcher):
    fake.health.fail(ConnectionError("refused"))
    w = make_watcher()
    assert w.wait_ready(2) and not w.wait_loaded(0.2)
    fake.health.error = None
    fake.health.set([entry("a")])
    assert w.wait_loaded(2) and ids(w) == ["a"]


def test_an_agent_reset_keeps_the_last_instances_until_passing_ones_return(
    fake, make_watcher
):
    fake.health.set([entry("a"), entry("b")], index=500)
    w = make_watcher(passing_only=False)
    wait_until(lambda: w.snapshot().index == 500, timeout=2)
    fake.health.set([], index=3)  # a restarted agent, empty
    wait_until(lambda: w.snapshot().index == 3, timeout=2, what="reset seen")
    snap = w.snapshot()
    assert ids(w) == ["a", "b"] and snap.stale and "keeping the last" in snap.error
    fake.health.set([entry("a", checks=[check("critical")])], index=4)  # re-registered
    wait_until(lambda: w.snapshot().index == 4, timeout=2)
    assert ids(w) == ["a", "b"] and w.snapshot().stale
    fake.health.set([entry("a", checks=[check("passing")])], index=5)  # and passing
    wait_until(lambda: ids(w) == ["a"], timeout=2, what="Consul's list again")
    assert not w.snapshot().stale and w.snapshot().error is None
    fake.health.set([], index=6)  # from now on an empty answer is an empty answer
    wait_until(lambda: ids(w) == [], timeout=2)


def test_after_an_outage_an_empty_answer_keeps_the_last_instances(fake, make_watcher):
    # A restarted agent whose index already passed the old one: only the outage tells.
    fake.health.set([entry("a")], index=5)
    w = make_watcher()
    wait_until(lambda: ids(w) == ["a"], timeout=2)
    fake.health.fail(ConnectionError("agent down"))
    wait_until(lambda: w.snapshot().stale, timeout=2)
    fake.health.error = None
    fake.health.set([], index=40)
    wait_until(lambda: w.snapshot().index == 40, timeout=2)
    assert ids(w) == ["a"] and w.snapshot().stale
    fake.health.set([entry("b")], index=41)
    wait_until(lambda: ids(w) == ["b"] and not w.snapshot().stale, timeout=2)


def test_the_hold_after_a_reset_is_bounded(fake, make_watcher):
    fake.health.set([entry("a")], index=500)
    w = make_watcher(reset_hold=0.3)
    wait_until(lambda: ids(w) == ["a"], timeout=2)
    fake.health.set([], index=3)
    wait_until(lambda: w.snapshot().stale, timeout=2)
    fake.health.set([], index=4)  # still empty after the hold: Consul is believed
    wait_until(lambda: ids(w) == [] and not w.snapshot().stale, timeout=3)


def test_a_hung_agent_bounds_each_query_then_goes_stale():
    """A SIGSTOPped agent accepts and never answers: the blocking query ends after its
    wait plus CONSUL_TIMEOUT (py-consul adds the wait, and wait/16 of jitter, to the
    client timeout) and the snapshot is kept, marked stale."""
    release = threading.Event()
    hung = threading.Event()

    def agent(request):
        if hung.is_set():
            release.wait(10)
        body = b"[" + json.dumps(entry("a")).encode() + b"]"
        return 200, {"X-Consul-Index": "7", "Content-Type": "application/json"}, body

    with StubServer(agent) as stub:
        consul = make_consul(ConsulSettings(port=stub.port, timeout=0.3))
        w = HealthWatcher("svc", consul=consul, wait=0.3).start()
        try:
            wait_until(lambda: ids(w) == ["a"], timeout=5)
            hung.set()
            wait_until(lambda: w.snapshot().stale, timeout=5, what="stale snapshot")
            assert ids(w) == ["a"] and "timed out" in w.snapshot().error.lower()
        finally:
            w.stop()
            release.set()


def test_rate_limited_by_consul_keeps_the_snapshot_and_backs_off():
    """429 (Consul's rate limits, http_max_conns_per_client): like any failure, the last
    instances stay, marked stale, and the next query, after a backoff, carries no index."""
    limited = threading.Event()

    def agent(request):
        if limited.is_set():
            return 429, {"Content-Type": "text/plain"}, b"rate limit exceeded"
        body = b"[" + json.dumps(entry("a")).encode() + b"]"
        return 200, {"X-Consul-Index": "7", "Content-Type": "application/json"}, body

    with StubServer(agent) as stub:
        consul = make_consul(ConsulSettings(port=stub.port, timeout=2))
        backoff = Backoff(base=0.01, cap=0.05)
        w = HealthWatcher("svc", consul=consul, wait=0.2, backoff=backoff).start()
        try:
            wait_until(lambda: ids(w) == ["a"], timeout=5)
            limited.set()
            wait_until(lambda: w.snapshot().stale, timeout=5, what="stale snapshot")
            assert ids(w) == ["a"] and "429" in w.snapshot().error
            wait_until(lambda: len(stub.requests) >= 4, timeout=5, what="retries")
            limited.clear()
            wait_until(lambda: not w.snapshot().stale, timeout=5, what="recovery")
        finally:
            w.stop()
    first_retry = [path for _, path, _ in stub.requests if "index=7" not in path][1]
    assert "index=" not in first_retry


# -- integration: a real devconsul agent ---------------------------------------------------


def agent_client(agent):
    return make_consul(ConsulSettings(port=agent.port, timeout=2.0))


def register(consul, sid, port):
    consul.agent.service.register(
        "watched", service_id=sid, address="127.0.0.1", port=port
    )


def wait_for_ids(watcher, expected, timeout):
    started = time.monotonic()
    wait_until(
        lambda: {i.id for i in watcher.snapshot().instances} == expected, timeout=10
    )
    return time.monotonic() - started


@pytest.mark.integration
def test_changes_reach_the_snapshot_within_one_second(devconsul):
    consul = agent_client(devconsul)
    watcher = HealthWatcher("watched", consul=agent_client(devconsul)).start()
    try:
        assert watcher.wait_ready(5) and watcher.snapshot().instances == ()
        register(consul, "w-1", 9001)
        assert wait_for_ids(watcher, {"w-1"}, 10) < 1.0
        register(consul, "w-2", 9002)
        assert wait_for_ids(watcher, {"w-1", "w-2"}, 10) < 1.0
        consul.agent.service.maintenance("w-1", True, reason="test")
        assert wait_for_ids(watcher, {"w-2"}, 10) < 1.0
        consul.agent.service.deregister("w-2")
        assert wait_for_ids(watcher, set(), 10) < 1.0
        assert not watcher.snapshot().stale
    finally:
        watcher.stop()


@pytest.mark.integration
def test_consul_stopped_keeps_last_snapshot_stale_then_recovers(devconsul):
    register(agent_client(devconsul), "w-1", 9001)
    watcher = HealthWatcher("watched", consul=agent_client(devconsul)).start()
    try:
        wait_until(
            lambda: [i.id for i in watcher.snapshot().instances] == ["w-1"], timeout=5
        )
        devconsul.process.stop()
        wait_until(lambda: watcher.snapshot().stale, timeout=15, what="stale snapshot")
        snap = watcher.snapshot()
        assert [i.id for i in snap.instances] == ["w-1"] and snap.error
        time.sleep(0.2)  # a little age to see
        assert watcher.snapshot().age >= 0.2
        # A restarted dev agent has lost its state and starts its index low again.
        devconsul.restart()
        register(agent_client(devconsul), "w-2", 9002)
        wait_until(
            lambda: [i.id for i in watcher.snapshot().instances] == ["w-2"], timeout=10
        )
        assert not watcher.snapshot().stale and watcher.snapshot().error is None
    finally:
        watcher.stop()


@pytest.mark.integration
def test_all_instances_with_status_when_not_passing_only(devconsul):
    consul = agent_client(devconsul)
    register(consul, "w-1", 9001)
    register(consul, "w-2", 9002)
    consul.agent.service.maintenance("w-2", True)
    watcher = HealthWatcher(
        "watched", consul=agent_client(devconsul), passing_only=False
    )
    try:
        watcher.start()
        wait_until(lambda: len(watcher.snapshot().instances) == 2, timeout=5)
        assert {i.id: i.status for i in watcher.snapshot().instances} == {
            "w-1": "passing",
            "w-2": "maintenance",
        }
    finally:
        watcher.stop()


def test_restart_right_after_stop_runs_a_new_thread(fake):
    fake.health.set([entry("a")])
    w = HealthWatcher("svc", consul=fake).start()
    try:
        wait_until(
            lambda: len(fake.health.calls) >= 2, timeout=2, what="blocking query"
        )
        first = w._thread
        w.stop()
        w.start()  # the first thread is still blocked in its query
        assert w._thread is not first and w._thread.is_alive()
        fake.health.set([entry("b")])
        wait_until(lambda: ids(w) == ["b"], timeout=2)
    finally:
        w.stop()
        fake.health.set([])
