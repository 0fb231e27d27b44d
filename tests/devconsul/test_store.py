import threading
import time

import pytest

from devconsul.durations import SECOND
from devconsul.store import (
    CHECKS,
    COORDINATES,
    KV,
    SERVICES,
    SESSIONS,
    Check,
    KVEntry,
    Node,
    Service,
    Session,
    Store,
    UnknownSession,
)


def _store() -> Store:
    store = Store()
    store.put_node(Node("id", "n1", "127.0.0.1", "dc1", {}, {}))
    return store


def test_a_transaction_takes_one_index_and_stamps_records():
    store = _store()
    with store.write():
        store.put_service(Service(node="n1", id="a", name="web"))
        store.put_check(Check(node="n1", id="c", name="c", service_id="a"))
    svc, check = store.services[("n1", "a")], store.checks[("n1", "c")]
    assert svc.create_index == svc.modify_index == check.modify_index == store.index
    assert store.table_index[SERVICES] == store.table_index[CHECKS] == store.index
    assert store.service_name_index["web"] == store.index


def test_unchanged_check_result_bumps_nothing():
    store = _store()
    store.put_service(Service(node="n1", id="a", name="web"))
    store.put_check(
        Check(node="n1", id="c", name="c", service_id="a", service_name="web")
    )
    assert store.set_check_status("n1", "c", "passing", "ok") == "critical"
    before = store.index
    assert store.set_check_status("n1", "c", "passing", "ok") is None
    assert store.index == before
    assert store.set_check_status("n1", "c", "passing", "changed") is None
    assert store.index == before + 1
    assert store.service_name_index["web"] == store.index


def test_critical_since_follows_status_changes():
    store = _store()
    store.put_check(Check(node="n1", id="c", name="c"))
    assert store.checks[("n1", "c")].critical_since is not None
    store.set_check_status("n1", "c", "passing", "")
    assert store.checks[("n1", "c")].critical_since is None


def test_node_check_touches_every_service_name_on_the_node():
    store = _store()
    store.put_service(Service(node="n1", id="a", name="web"))
    store.put_service(Service(node="n1", id="b", name="api"))
    store.put_check(Check(node="n1", id="_node_maintenance", name="m"))
    assert (
        store.service_name_index["web"]
        == store.service_name_index["api"]
        == store.index
    )


def test_deregistration_keeps_the_name_index_rising():
    store = _store()
    store.put_service(Service(node="n1", id="a", name="web"))
    first = store.service_name_index["web"]
    store.delete_service("n1", "a")
    assert store.service_name_index["web"] > first


def test_kv_cas_and_tombstones():
    store = Store()
    assert store.kv_put(KVEntry("a/b", b"1"), cas=0) is True
    assert store.kv_put(KVEntry("a/b", b"2"), cas=0) is False
    index = store.kv["a/b"].modify_index
    assert store.kv_put(KVEntry("a/b", b"3"), cas=index) is True
    assert store.kv["a/b"].create_index == index
    assert store.kv_delete("a/b", cas=1) is False
    store.kv_delete("a/b")
    assert store.kv_prefix_index("a/") == store.index == store.table_index[KV]
    assert store.kv_key_index("a/b") == store.index


def test_wait_until_wakes_on_a_write_not_by_polling():
    store = Store()
    woke = threading.Event()

    def waiter():
        store.wait_until(lambda: "k" in store.kv, timeout=10)
        woke.set()

    threading.Thread(target=waiter, daemon=True).start()
    time.sleep(0.05)
    assert not woke.is_set()
    store.kv_put(KVEntry("k", b""))
    assert woke.wait(2)


def test_wait_until_times_out():
    store = Store()
    start = time.monotonic()
    store.wait_until(lambda: False, timeout=0.1)
    assert 0.09 <= time.monotonic() - start < 2


def test_identical_rewrites_bump_nothing():
    store = _store()
    store.put_service(Service(node="n1", id="a", name="web", port=80))
    store.put_check(Check(node="n1", id="c", name="c", service_id="a"))
    before = store.index
    store.put_node(Node("id", "n1", "127.0.0.1", "dc1", {}, {}))
    store.put_service(Service(node="n1", id="a", name="web", port=80))
    store.put_check(Check(node="n1", id="c", name="c", service_id="a"))
    assert store.index == before
    store.put_service(Service(node="n1", id="a", name="web", port=81))
    assert store.index == before + 1


def _session_store(behavior="release", lock_delay=0) -> Store:
    store = _store()
    store.put_check(Check(node="n1", id="c", name="c", status="passing"))
    for sid in ("s1", "s2"):
        store.session_create(
            Session(
                id=sid,
                node="n1",
                behavior=behavior,
                lock_delay=lock_delay,
                node_checks=["c"],
            )
        )
    return store


def test_lock_acquire_release_and_lock_index():
    store = _session_store()
    assert store.kv_lock(KVEntry("k", b"1"), "s1") is True
    first = store.kv["k"]
    assert (first.session, first.lock_index, first.value) == ("s1", 1, b"1")
    assert store.kv_lock(KVEntry("k", b"2"), "s2") is False
    assert store.kv["k"] is first
    # Re-acquiring a held lock writes the value but is no new acquisition.
    assert store.kv_lock(KVEntry("k", b"3", flags=7), "s1") is True
    assert (store.kv["k"].lock_index, store.kv["k"].flags) == (1, 7)
    assert store.kv_unlock(KVEntry("k", b"4"), "s2") is False
    assert store.kv_unlock(KVEntry("k", b"5"), "s1") is True
    released = store.kv["k"]
    assert (released.session, released.lock_index, released.value) == ("", 1, b"5")
    assert released.create_index == first.create_index
    assert released.modify_index == store.table_index[KV] == store.index
    assert store.kv_unlock(KVEntry("k", b"6"), "s1") is False
    assert store.kv_lock(KVEntry("k", b"7"), "s2") is True
    assert store.kv["k"].lock_index == 2
    assert store.kv_unlock(KVEntry("missing", b""), "s1") is False


def test_plain_writes_keep_the_lock():
    store = _session_store()
    store.kv_lock(KVEntry("k", b"1"), "s1")
    store.kv_put(KVEntry("k", b"2"))
    assert (store.kv["k"].session, store.kv["k"].lock_index) == ("s1", 1)


def test_lock_with_unknown_session_fails_loudly():
    store = _session_store()
    with pytest.raises(UnknownSession):
        store.kv_lock(KVEntry("k", b"1"), "nope")
    assert "k" not in store.kv


@pytest.mark.parametrize("behavior", ["release", "delete"])
def test_destroy_invalidates_held_locks(behavior):
    store = _session_store(behavior=behavior)
    store.kv_lock(KVEntry("a", b"1"), "s1")
    store.kv_lock(KVEntry("b", b"1"), "s2")
    assert store.session_destroy("s1") is True
    assert store.table_index[SESSIONS] == store.table_index[KV] == store.index
    if behavior == "release":
        assert (store.kv["a"].session, store.kv["a"].lock_index) == ("", 1)
        assert store.kv["a"].modify_index == store.index
    else:
        assert "a" not in store.kv
        assert store.kv_key_index("a") == store.index
    assert store.kv["b"].session == "s2"
    assert store.session_destroy("s1") is False


def test_lock_delay_blocks_relocking_and_is_capped_at_a_minute():
    store = _session_store(lock_delay=120 * SECOND)
    store.kv_lock(KVEntry("k", b"1"), "s1")
    before = time.monotonic()
    store.session_destroy("s1")
    assert before + 59 < store.lock_delays["k"] <= time.monotonic() + 60
    assert store.kv_lock(KVEntry("k", b"2"), "s2") is False
    # Even an unknown session only gets "not now" during the delay.
    assert store.kv_lock(KVEntry("k", b"2"), "nope") is False
    store.lock_delays["k"] = time.monotonic() - 1
    assert store.kv_lock(KVEntry("k", b"2"), "s2") is True
    assert store.kv["k"].lock_index == 2


def test_no_lock_delay_without_held_keys_or_delay():
    store = _session_store(lock_delay=0)
    store.kv_lock(KVEntry("k", b"1"), "s1")
    store.session_destroy("s1")
    assert store.lock_delays == {}


@pytest.mark.parametrize(
    "invalidate",
    [
        lambda s: s.set_check_status("n1", "c", "critical", "down"),
        lambda s: s.put_check(Check(node="n1", id="c", name="c", status="critical")),
        lambda s: s.delete_check("n1", "c"),
        lambda s: s.delete_node("n1"),
    ],
    ids=["status", "rewrite", "deregister", "node"],
)
def test_check_failure_or_removal_invalidates_in_the_same_index(invalidate):
    store = _session_store()
    store.kv_lock(KVEntry("k", b"1"), "s1")
    invalidate(store)
    assert store.sessions == {}
    assert store.table_index[SESSIONS] == store.table_index[CHECKS] == store.index
    if "k" in store.kv:
        assert store.kv["k"].session == ""


def test_warning_or_unrelated_checks_leave_sessions_alone():
    store = _session_store()
    store.put_check(Check(node="n1", id="other", name="o", status="passing"))
    store.set_check_status("n1", "c", "warning", "meh")
    store.set_check_status("n1", "other", "critical", "down")
    store.delete_check("n1", "other")
    assert set(store.sessions) == {"s1", "s2"}


def test_service_deregistration_invalidates_sessions_on_its_checks():
    store = _session_store()
    store.put_service(Service(node="n1", id="a", name="web"))
    store.put_check(
        Check(node="n1", id="svc-check", name="c", status="passing", service_id="a")
    )
    store.session_create(Session(id="s3", node="n1", node_checks=["svc-check"]))
    store.delete_service("n1", "a")
    assert set(store.sessions) == {"s1", "s2"}


def test_coordinates_need_a_known_node_and_leave_with_it():
    store = _store()
    store.put_coordinate("ghost", "", {"Vec": []})
    assert (store.coordinates, store.table_index[COORDINATES]) == ({}, 0)
    store.put_coordinate("n1", "", {"Vec": [1.0]})
    stamped = store.table_index[COORDINATES]
    assert store.coordinates == {("n1", ""): {"Vec": [1.0]}} and stamped > 0
    store.delete_node("n1")
    assert store.coordinates == {}
    assert store.table_index[COORDINATES] > stamped
