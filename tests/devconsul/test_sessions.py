"""Session creation rules and TTL expiry in-process (devconsul.sessions)."""

import json

import pytest

from devconsul import sessions as sessions_module
from devconsul.durations import MILLISECOND, SECOND
from devconsul.errors import HTTPError
from devconsul.sessions import Sessions, parse_create, parse_ttl
from devconsul.store import Check, KVEntry, Node, Store


def _create(body: dict | None):
    return parse_create(json.dumps(body).encode() if body is not None else b"", "n1")


@pytest.mark.parametrize(
    ("body", "node_checks", "checks", "ids"),
    [
        # Defaults: serfHealth via NodeChecks; deprecated Checks left out.
        (None, ["serfHealth"], None, ["serfHealth"]),
        ({"Checks": ["serfHealth"]}, ["serfHealth"], None, ["serfHealth"]),
        # An empty (or null) Checks list removes the default check.
        ({"Checks": []}, [], [], []),
        ({"checks": None}, [], None, []),
        # Other Checks add to NodeChecks, which keeps its default.
        ({"Checks": ["a"]}, ["serfHealth"], ["a"], ["a", "serfHealth"]),
        ({"Checks": ["a"], "NodeChecks": []}, [], None, []),
        ({"NodeChecks": ["a"]}, ["a"], None, ["a"]),
        ({"NodeChecks": None}, None, None, []),
    ],
)
def test_check_lists_follow_consul_fixup(body, node_checks, checks, ids):
    session = _create(body)
    assert (session.node_checks, session.checks) == (node_checks, checks)
    assert session.check_ids() == ids


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, 15 * SECOND),
        ("15s", 15 * SECOND),
        ("250ms", 250 * MILLISECOND),
        (5, 5 * SECOND),  # small numbers mean seconds
        ("20ns", 20 * SECOND),
        (2_000_000_000, 2 * SECOND),  # large ones nanoseconds
        (0, 0),
    ],
)
def test_lock_delay_decoding(value, expected):
    body = {} if value is None else {"lockdelay": value}
    assert _create(body).lock_delay == expected


def test_create_defaults_and_lowercase_keys():
    session = _create(
        {
            "name": "lock",
            "behavior": "delete",
            "ttl": "30s",
            "servicechecks": [{"id": "svc"}],
        }
    )
    assert (session.name, session.node, session.behavior, session.ttl) == (
        "lock",
        "n1",
        "delete",
        "30s",
    )
    assert session.service_checks == [{"ID": "svc", "Namespace": ""}]


def test_bad_bodies_are_decode_errors():
    for body in (b"{", b'{"LockDelay": "5 seconds"}', b'{"TTL": 10}'):
        with pytest.raises(HTTPError) as err:
            parse_create(body, "n1")
        assert err.value.status == 400
        assert err.value.message.startswith("Request decode failed: ")


def test_ttl_limits_and_texts():
    assert parse_ttl("", 10 * SECOND) == 0
    assert parse_ttl("0s", 10 * SECOND) == 0
    assert parse_ttl("10s", 10 * SECOND) == 10 * SECOND
    assert parse_ttl("86400s", 10 * SECOND) == 86400 * SECOND
    for ttl, message in [
        ("9s", "Invalid Session TTL '9000000000', must be between [10s=24h0m0s]"),
        (
            "24h1s",
            "Invalid Session TTL '86401000000000', must be between [10s=24h0m0s]",
        ),
        ("ten", "Session TTL 'ten' invalid: time: invalid duration \"ten\""),
    ]:
        with pytest.raises(HTTPError) as err:
            parse_ttl(ttl, 10 * SECOND)
        assert (err.value.status, err.value.message) == (500, message)


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def monotonic(self):
        return self.now


class FakeScheduler:
    """Records timers instead of running them; tests fire them by hand."""

    def __init__(self):
        self.jobs = []

    def call_at(self, when, job):
        self.jobs.append((when, job))


@pytest.fixture
def clock(monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(sessions_module, "time", clock)
    return clock


@pytest.fixture
def store():
    store = Store()
    store.put_node(Node("id", "n1", "127.0.0.1", "dc1", {}, {}))
    store.put_check(Check(node="n1", id="serfHealth", name="s", status="passing"))
    return store


def _fire_due(scheduler, clock):
    due = [(when, job) for when, job in scheduler.jobs if when <= clock.now]
    scheduler.jobs = [entry for entry in scheduler.jobs if entry not in due]
    for _, job in due:
        job()


def test_ttl_session_is_invalidated_at_twice_its_ttl(store, clock):
    scheduler = FakeScheduler()
    sessions = Sessions(store, scheduler, 10 * SECOND)
    sid = sessions.create(_create({"TTL": "10s"}))
    assert store.kv_lock(KVEntry("k", b"v"), sid)
    ((when, _),) = scheduler.jobs
    assert when == clock.now + 20  # Consul's TTL multiplier of 2
    clock.now += 19.9
    _fire_due(scheduler, clock)
    assert sid in store.sessions
    clock.now += 0.1
    _fire_due(scheduler, clock)
    assert sid not in store.sessions
    assert store.kv["k"].session == ""


def test_renew_restarts_the_ttl_clock_and_moves_no_index(store, clock):
    scheduler = FakeScheduler()
    sessions = Sessions(store, scheduler, 10 * SECOND)
    sid = sessions.create(_create({"TTL": "10s"}))
    index = store.index
    clock.now += 15
    assert sessions.renew(sid).id == sid
    assert store.index == index
    clock.now += 10  # 25 s after creation, 10 s after the renewal
    _fire_due(scheduler, clock)
    assert sid in store.sessions
    clock.now += 10
    _fire_due(scheduler, clock)
    assert sid not in store.sessions
    assert sessions.renew(sid) is None


def test_renewals_keep_one_timer_per_session(store, clock):
    scheduler = FakeScheduler()
    sessions = Sessions(store, scheduler, 10 * SECOND)
    sid = sessions.create(_create({"TTL": "10s"}))
    for _ in range(1000):
        clock.now += 1
        sessions.renew(sid)
    assert len(scheduler.jobs) == 1
    _fire_due(scheduler, clock)  # the first deadline passed: it waits for the latest
    assert sid in store.sessions
    assert [when for when, _ in scheduler.jobs] == [clock.now + 20]
    sessions.destroy(sid)
    clock.now += 20
    _fire_due(scheduler, clock)
    assert scheduler.jobs == []


def test_sessions_without_ttl_have_no_timer(store):
    scheduler = FakeScheduler()
    Sessions(store, scheduler, 10 * SECOND).create(_create(None))
    assert scheduler.jobs == []


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"Node": ""}, "Must provide Node"),
        ({"Behavior": "keep"}, "Invalid Behavior setting 'keep'"),
        ({"Node": "elsewhere"}, "Missing node registration"),
        ({"Checks": ["serfHealth", "nope"]}, "Missing check 'nope' registration"),
        ({"NodeChecks": ["down"]}, "Check 'down' is in critical state"),
        ({"ServiceChecks": [{"ID": "down"}]}, "Check 'down' is in critical state"),
    ],
)
def test_create_errors(store, body, message):
    store.put_check(Check(node="n1", id="down", name="d", status="critical"))
    before = store.index
    with pytest.raises(HTTPError) as err:
        Sessions(store, FakeScheduler(), 10 * SECOND).create(_create(body))
    assert (err.value.status, err.value.message) == (500, message)
    assert (store.sessions, store.index) == ({}, before)
