"""devconsul.transactions on an in-memory Store: verbs, rollback, lock-delay.

Error texts follow hashicorp/consul agent/consul/state/txn.go and
agent/consul/txn_endpoint.go (preCheck).
"""

import time

import pytest

from devconsul.store import KVEntry, Session, Store
from devconsul.transactions import KVOp, is_write, run


@pytest.fixture
def store() -> Store:
    s = Store()
    s.kv_put(KVEntry("k", b"v"))
    return s


@pytest.mark.parametrize(
    "op, what",
    [
        (KVOp("get", "nope"), 'key "nope" doesn\'t exist'),
        (KVOp("cas", "k", index=99), 'failed to set key "k", index is stale'),
        (KVOp("check-not-exists", "k"), 'key "k" exists'),
        (
            KVOp("check-index", "nope"),
            'failed to check index, key "nope" doesn\'t exist',
        ),
        (
            KVOp("check-session", "k", session="s"),
            'failed session check for key "k", current session "" != "s"',
        ),
        (KVOp("lock", "k", session="unknown"), 'invalid session "unknown"'),
        (KVOp("set", ""), "Must provide key"),
        (None, "devconsul serves only KV operations in transactions"),
    ],
)
def test_each_failure_reports_consuls_text(store, op, what):
    outcome = run(store, [op])
    assert (outcome.results, outcome.errors) == (None, [(0, what)])


def test_a_failure_undoes_earlier_writes_and_moves_no_index(store):
    before = (store.index, dict(store.table_index), dict(store.kv))
    outcome = run(
        store, [KVOp("set", "new", b"x"), KVOp("delete-tree", ""), KVOp("get", "gone")]
    )
    assert outcome.errors == [(2, 'key "gone" doesn\'t exist')]
    assert (store.index, store.table_index, store.kv) == before
    assert store.kv_tombstones == {}


def test_lock_delay_is_checked_before_anything_runs(store):
    store.session_create(Session("s1", "n1"))
    store.lock_delays["k"] = time.monotonic() + 60
    outcome = run(store, [KVOp("set", "other"), KVOp("lock", "k", session="s1")])
    assert outcome.errors == [(1, 'failed to lock key "k" due to lock delay')]
    assert "other" not in store.kv


def test_reads_only_is_not_a_write():
    assert not is_write([KVOp("get", "k"), KVOp("get-tree", ""), None])
    assert is_write([KVOp("get", "k"), KVOp("unlock", "k")])
