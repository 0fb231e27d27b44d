"""KV operations of one /v1/txn transaction, applied all or nothing, with the
verbs and error texts of Consul's state store (agent/consul/state/txn.go) and
its pre-checks (kvsPreApply in agent/consul/kvs_endpoint.go).

Every operation runs even after one fails, so the answer lists every error, as
Consul's txnDispatch does; then any error rolls the whole transaction back.
"""

import time
from dataclasses import dataclass

from devconsul import render
from devconsul.store import KVEntry, Store, UnknownSession

WRITE_VERBS = {"set", "delete", "delete-cas", "delete-tree", "cas", "lock", "unlock"}
# Only these answer with the stored value; every other result has Value null.
VALUE_VERBS = {"get", "get-or-empty", "get-tree"}


@dataclass
class KVOp:
    verb: str
    key: str
    value: bytes = b""
    flags: int = 0
    index: int = 0
    session: str = ""


class OpFailed(Exception):
    """One operation's error, reported as a TxnError with its What text."""


class _RolledBack(Exception):
    pass


@dataclass
class Outcome:
    """Results (``{"KV": entry}`` each, in order) or errors as (op index, what)."""

    results: list[dict] | None
    errors: list[tuple[int, str]]


def is_write(ops: list[KVOp | None]) -> bool:
    return any(op is not None and op.verb in WRITE_VERBS for op in ops)


def run(store: Store, ops: list[KVOp | None]) -> Outcome:
    """Apply `ops` (None marks an operation of a kind we do not serve)."""
    errors = _pre_check(store, ops)
    if errors:
        return Outcome(None, errors)
    results: list[dict] = []
    try:
        with store.all_or_nothing():
            for i, op in enumerate(ops):
                try:
                    results.extend(_rendered(op, _apply(store, op)))
                except OpFailed as exc:
                    errors.append((i, str(exc)))
            if errors:
                raise _RolledBack
    except _RolledBack:
        return Outcome(None, errors)
    return Outcome(results, [])


def _pre_check(store: Store, ops: list[KVOp | None]) -> list[tuple[int, str]]:
    errors = []
    for i, op in enumerate(ops):
        if op is None:
            continue
        if not op.key and op.verb != "delete-tree":
            errors.append((i, "Must provide key"))
        elif op.verb == "lock" and store.lock_delays.get(op.key, 0) > time.monotonic():
            errors.append((i, f'failed to lock key "{op.key}" due to lock delay'))
    return errors


def _rendered(op: KVOp, entries: list[KVEntry]) -> list[dict]:
    rows = [render.kv_entry(e) for e in entries]
    if op.verb not in VALUE_VERBS:
        for row in rows:
            row["Value"] = None
    return [{"KV": row} for row in rows]


def _entry(op: KVOp) -> KVEntry:
    return KVEntry(op.key, op.value, flags=op.flags)


def _check(
    store: Store, key: str, what: str, field: str, current, wanted
) -> list[KVEntry]:
    """check-index / check-session: the entry, if `current(entry)` is `wanted`."""
    entry = store.kv.get(key)
    if entry is None:
        raise OpFailed(f'failed to check {what}, key "{key}" doesn\'t exist')
    if current(entry) != wanted:
        raise OpFailed(
            f'failed {what} check for key "{key}", current {field} '
            f"{current(entry)} != {wanted}"
        )
    return [entry]


def _session(op: KVOp) -> str:
    if not op.session:
        raise OpFailed("missing session")
    return op.session.lower()


def _apply(store: Store, op: KVOp | None) -> list[KVEntry]:
    """The op's results: entries as stored (values blanked later for writes)."""
    if op is None:
        raise OpFailed("devconsul serves only KV operations in transactions")
    key, verb = op.key, op.verb
    if verb == "get":
        if key not in store.kv:
            raise OpFailed(f'key "{key}" doesn\'t exist')
        return [store.kv[key]]
    if verb == "get-or-empty":
        return [store.kv.get(key) or KVEntry(key, b"", flags=op.flags)]
    if verb == "get-tree":
        return store.kv_list(key)
    if verb == "check-index":
        return _check(
            store, key, "index", "modify index", lambda e: e.modify_index, op.index
        )
    if verb == "check-session":
        # Consul prints sessions quoted (%q).
        return _check(
            store,
            key,
            "session",
            "session",
            lambda e: f'"{e.session}"',
            f'"{op.session}"',
        )
    if verb == "check-not-exists":
        if key in store.kv:
            raise OpFailed(f'key "{key}" exists')
        return []
    return _write(store, op)


def _write(store: Store, op: KVOp) -> list[KVEntry]:
    key, verb = op.key, op.verb
    if verb == "set":
        entry = _entry(op)
        store.kv_put(entry)
        return [entry]
    if verb == "cas":
        entry = _entry(op)
        if not store.kv_put(entry, cas=op.index):
            raise OpFailed(f'failed to set key "{key}", index is stale')
        return [entry]
    if verb == "delete":
        store.kv_delete(key)
        return []
    if verb == "delete-cas":
        if not store.kv_delete(key, cas=op.index):
            raise OpFailed(f'failed to delete key "{key}", index is stale')
        return []
    if verb == "delete-tree":
        store.kv_delete(key, recurse=True)
        return []
    if verb == "lock":
        return [_lock(store, op)]
    if verb == "unlock":
        entry = _entry(op)
        if not store.kv_unlock(entry, _session(op)):
            raise OpFailed(
                f'failed to unlock key "{key}", lock isn\'t held, or is held by '
                "another session"
            )
        return [entry]
    raise OpFailed(f'unknown KV verb "{verb}"')


def _lock(store: Store, op: KVOp) -> KVEntry:
    entry, session = _entry(op), _session(op)
    try:
        locked = store.kv_lock(entry, session)
    except UnknownSession:
        raise OpFailed(f'invalid session "{op.session}"') from None
    if not locked:
        raise OpFailed(f'failed to lock key "{op.key}", lock is already held')
    return entry
