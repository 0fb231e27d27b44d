"""The in-memory state store: nodes, services, checks, KV and sessions behind one
lock, with Consul-style raft indexes and a condition variable that blocking
queries wait on.

Every write transaction takes the next index once, stamps the records it touches
with it and raises the index of each table (and of each service name) it changed.
Blocking queries wait on the condition for *their* index to move, so a KV write
does not answer a health watcher, and a write that changes nothing bumps nothing.

Sessions are invalidated inside the transaction that causes it, as in Consul's
state store: a check written as critical, a deleted check or node, or a destroy.
"""

import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, fields, replace

from devconsul.definitions import CheckDefinition
from devconsul.durations import SECOND, seconds

NODES, SERVICES, CHECKS, KV, SESSIONS = "nodes", "services", "checks", "kv", "sessions"
COORDINATES, CONFIG, AUTOPILOT = "coordinates", "config-entries", "autopilot"
# Consul caps lock delays at a minute (structs.MaxLockDelay).
MAX_LOCK_DELAY = 60 * SECOND
_BOOKKEEPING = {"create_index", "modify_index", "critical_since"}


def named(name: str) -> Callable[[str], bool]:
    """A test for `name` in any case, for node, service and check-status names
    and service and check IDs: Consul's state store indexes them lowercased.
    `name` is lowercased once, not again for every row tested."""
    wanted = name.lower()
    return lambda other: other.lower() == wanted


def unchanged(old, new) -> bool:
    """Like Consul's state store, an identical rewrite is skipped: no index bump,
    so periodic re-registration (anti-entropy) does not wake every watcher."""
    return old is not None and all(
        getattr(old, f.name) == getattr(new, f.name)
        for f in fields(new)
        if f.name not in _BOOKKEEPING
    )


@dataclass
class Node:
    id: str
    name: str
    address: str
    datacenter: str
    tagged_addresses: dict[str, str]
    meta: dict[str, str]
    create_index: int = 0
    modify_index: int = 0


@dataclass
class Service:
    node: str
    id: str
    name: str
    # None when registered without Tags (or with null): Consul keeps a nil
    # slice, which most answers turn into [] but some show as null.
    tags: list[str] | None = None
    address: str = ""
    port: int = 0
    meta: dict[str, str] = field(default_factory=dict)
    weights: dict[str, int] = field(
        default_factory=lambda: {"Passing": 1, "Warning": 1}
    )
    enable_tag_override: bool = False
    tagged_addresses: dict[str, dict] = field(default_factory=dict)
    kind: str = ""
    proxy: dict | None = None
    connect: dict | None = None
    # Registered through /v1/agent (listed by agent endpoints) or catalog-only.
    local: bool = True
    create_index: int = 0
    modify_index: int = 0

    @property
    def tag_list(self) -> list[str]:
        """The tags as a new list, [] for a nil slice: what every answer but
        agent health-by-service shows."""
        return list(self.tags or ())


@dataclass
class Check:
    node: str
    id: str
    name: str
    status: str = "critical"
    notes: str = ""
    output: str = ""
    service_id: str = ""
    service_name: str = ""
    type: str = ""
    definition: CheckDefinition | None = None
    local: bool = True
    # monotonic time since which the check has been critical (for the reaper).
    critical_since: float | None = None
    create_index: int = 0
    modify_index: int = 0


def apply_status(check: Check, status: str, output: str) -> bool:
    """Write a check result into `check`, the time it turned critical too;
    False when status and output are what it already holds."""
    if (check.status, check.output) == (status, output):
        return False
    if status != check.status:
        check.critical_since = time.monotonic() if status == "critical" else None
    check.status, check.output = status, output
    return True


@dataclass
class KVEntry:
    key: str
    value: bytes
    flags: int = 0
    lock_index: int = 0
    session: str = ""
    create_index: int = 0
    modify_index: int = 0


@dataclass
class Session:
    """structs.Session. The check lists keep Consul's null-versus-empty
    distinction (None is JSON null); `checks` is the deprecated field."""

    id: str
    node: str
    name: str = ""
    lock_delay: int = 15 * SECOND
    behavior: str = "release"
    ttl: str = ""
    node_checks: list[str] | None = None
    service_checks: list[dict] | None = None
    checks: list[str] | None = None
    create_index: int = 0
    modify_index: int = 0

    def check_ids(self) -> list[str]:
        """Every check the session depends on, whichever list names it."""
        service = [c["ID"] for c in self.service_checks or []]
        return [*(self.checks or []), *(self.node_checks or []), *service]


class UnknownSession(LookupError):
    """A lock operation named a session that does not exist."""


class Store:
    def __init__(self):
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)
        self.index = 0
        # By lowercased name, as Consul's nodes table indexes them: "Web-1" and
        # "web-1" are one node, which keeps the spelling it was registered with.
        self.nodes: dict[str, Node] = {}
        # By (node, lowercased ID), as Consul's services and checks tables key
        # them: "Web-1" and "web-1" on one node are one service, which takes the
        # spelling it was last written with. `node` is the node's own spelling.
        self.services: dict[tuple[str, str], Service] = {}
        self.checks: dict[tuple[str, str], Check] = {}
        self.kv: dict[str, KVEntry] = {}
        # Index of each deleted key, so a prefix's index never goes back.
        self.kv_tombstones: dict[str, int] = {}
        self.sessions: dict[str, Session] = {}
        # Key -> monotonic time until which it cannot be locked (lock-delay).
        self.lock_delays: dict[str, float] = {}
        # Network coordinates by (node, segment), as sent to /v1/coordinate/update.
        self.coordinates: dict[tuple[str, str], dict] = {}
        # Config entries by (Kind, Name): the decoded body plus its indexes.
        self.config_entries: dict[tuple[str, str], dict] = {}
        # Cluster-wide operator settings (the autopilot configuration).
        self.settings: dict[str, dict] = {}
        self.table_index: dict[str, int] = dict.fromkeys(
            (NODES, SERVICES, CHECKS, KV, SESSIONS, COORDINATES, CONFIG, AUTOPILOT), 0
        )
        # Highest index that touched anything a health/catalog query for a
        # service name returns (kept after deregistration, so it never drops),
        # by lowercased name: see service_index.
        self.service_name_index: dict[str, int] = {}
        self._depth = 0
        self._txn_index: int | None = None
        self._touched_tables: set[str] = set()
        self._touched_names: set[str] = set()

    # -- transactions -----------------------------------------------------------

    @contextmanager
    def write(self) -> Iterator[None]:
        """Group mutations into one index; watchers are woken once, at the end."""
        with self.changed:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
                if self._depth == 0:
                    self._commit()

    @contextmanager
    def all_or_nothing(self) -> Iterator[None]:
        """A write transaction that leaves no trace when its body raises: the KV
        table, its indexes and the global index are put back before the commit,
        so no watcher sees the half-done writes (Consul's /v1/txn)."""
        with self.write():
            saved = (
                dict(self.kv),
                dict(self.kv_tombstones),
                dict(self.lock_delays),
                self.index,
                self._txn_index,
                set(self._touched_tables),
            )
            try:
                yield
            except BaseException:
                (self.kv, self.kv_tombstones, self.lock_delays, self.index) = saved[:4]
                self._txn_index, self._touched_tables = saved[4], saved[5]
                raise

    def _stamp(self, tables: Iterable[str], names: Iterable[str] = ()) -> int:
        if self._txn_index is None:
            self.index += 1
            self._txn_index = self.index
        self._touched_tables.update(tables)
        self._touched_names.update(names)
        return self._txn_index

    def _stamp_record(self, record, old, tables: Iterable[str], names=()) -> None:
        """Stamp a record being written over `old` (or created, when None) with
        this transaction's index, keeping the create index of the record it replaces."""
        index = self._stamp(tables, names)
        record.create_index = old.create_index if old else index
        record.modify_index = index

    def _commit(self) -> None:
        if self._txn_index is None:
            return
        for table in self._touched_tables:
            self.table_index[table] = self._txn_index
        for name in self._touched_names:
            self.service_name_index[name.lower()] = self._txn_index
        self._txn_index = None
        self._touched_tables.clear()
        self._touched_names.clear()
        self.changed.notify_all()

    def wait_until(self, done: Callable[[], bool], timeout: float) -> None:
        """Block until `done()` holds (checked after every write) or `timeout` passes."""
        deadline = time.monotonic() + timeout
        with self.changed:
            while not done():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return
                self.changed.wait(remaining)

    # -- nodes --------------------------------------------------------------------

    def put_node(self, node: Node) -> None:
        """Create or update a node. A node already there under another case
        keeps its spelling, the one its services and checks are filed under."""
        with self.write():
            node.name = self.node_spelling(node.name)
            old = self.node_named(node.name)
            if unchanged(old, node):
                return
            self._stamp_record(node, old, [NODES], self._names_on_node(node.name))
            self.nodes[node.name.lower()] = node

    def delete_node(self, name: str) -> None:
        with self.write():
            node = self.nodes.pop(name.lower(), None)
            if node is None:
                return
            name = node.name
            self._stamp([NODES, SERVICES, CHECKS], self._names_on_node(name))
            for key in [k for k in self.services if k[0] == name]:
                del self.services[key]
            for key in [k for k in self.checks if k[0] == name]:
                del self.checks[key]
            self._drop_coordinates(name)
            on_node = named(name)
            for session in [s for s in self.sessions.values() if on_node(s.node)]:
                self.session_destroy(session.id)

    def node_named(self, name: str) -> Node | None:
        """The node called `name` in any case, as Consul's lowercased node index
        finds it."""
        return self.nodes.get(name.lower())

    def node_spelling(self, name: str) -> str:
        """The spelling a node called `name` in any case is filed under: the
        one it was registered with, or `name` for a new node. Consul keeps it
        when nothing else about the node changes (Node.IsSame uses EqualFold)."""
        found = self.node_named(name)
        return found.name if found else name

    def node_services(self, node: str) -> list[Service]:
        """The services on `node` (named in its own spelling), by ID in any case."""
        return [s for (n, _), s in sorted(self.services.items()) if n == node]

    def node_checks(self, node: str) -> list[Check]:
        """The checks on `node` (named in its own spelling), by ID in any case."""
        return [c for (n, _), c in sorted(self.checks.items()) if n == node]

    def _names_on_node(self, node: str) -> set[str]:
        return {s.name for s in self.node_services(node)}

    # -- services -----------------------------------------------------------------

    def service(self, node: str, service_id: str) -> Service | None:
        """The service on `node` whose ID is `service_id` in any case."""
        return self.services.get((node, service_id.lower()))

    def put_service(self, service: Service) -> None:
        key = (service.node, service.id.lower())
        with self.write():
            old = self.services.get(key)
            if unchanged(old, service):
                return
            names = {service.name} | ({old.name} if old else set())
            self._stamp_record(service, old, [SERVICES], names)
            self.services[key] = service
            for check in self.service_checks(service.node, service.id):
                check.service_name = service.name

    def delete_service(self, node: str, service_id: str) -> bool:
        with self.write():
            service = self.services.pop((node, service_id.lower()), None)
            if service is None:
                return False
            self._stamp([SERVICES, CHECKS], [service.name])
            for check in self.service_checks(node, service_id):
                del self.checks[(node, check.id.lower())]
                self._invalidate_sessions(node, check.id)
            return True

    def service_index(self, name: str) -> int:
        """The index of a service name in any case: Consul keys its index
        entries ("service.<name>") lowercased, so a watch on "Web" wakes when
        "web" changes."""
        return self.service_name_index.get(name.lower(), 0)

    def service_checks(self, node: str, service_id: str) -> list[Check]:
        """The checks of a service, whose ServiceID may differ in case
        (Consul's node_service index is lowercased too)."""
        wanted = service_id.lower()
        return [
            c
            for c in self.checks.values()
            if c.node == node and c.service_id.lower() == wanted
        ]

    # -- checks -------------------------------------------------------------------

    def _check_names(self, check: Check) -> set[str]:
        if check.service_id:
            return {check.service_name}
        # A node check (maintenance, serfHealth) shows in every instance's Checks.
        return self._names_on_node(check.node)

    def check(self, node: str, check_id: str) -> Check | None:
        """The check on `node` whose ID is `check_id` in any case."""
        return self.checks.get((node, check_id.lower()))

    def put_check(self, check: Check) -> None:
        key = (check.node, check.id.lower())
        with self.write():
            old = self.checks.get(key)
            if unchanged(old, check):
                return
            names = self._check_names(check)
            if old:
                names |= self._check_names(old)
            self._stamp_record(check, old, [CHECKS], names)
            if check.status == "critical" and check.critical_since is None:
                check.critical_since = time.monotonic()
            self.checks[key] = check
            if check.status == "critical":
                self._invalidate_sessions(check.node, check.id)

    def delete_check(self, node: str, check_id: str) -> bool:
        with self.write():
            check = self.checks.pop((node, check_id.lower()), None)
            if check is None:
                return False
            self._stamp([CHECKS], self._check_names(check))
            self._invalidate_sessions(node, check_id)
            return True

    def set_check_status(
        self, node: str, check_id: str, status: str, output: str
    ) -> str | None:
        """Record a check result; bumps nothing when status and output are unchanged.

        Returns the previous status when the status changed, else None.
        """
        with self.write():
            check = self.check(node, check_id)
            previous = check.status if check else None
            if check is None or not apply_status(check, status, output):
                return None
            check.modify_index = self._stamp([CHECKS], self._check_names(check))
            if status == "critical":
                self._invalidate_sessions(node, check_id)
            return previous if status != previous else None

    # -- coordinates --------------------------------------------------------------

    def put_coordinate(self, node: str, segment: str, coord: dict) -> None:
        """Like Consul's CoordinateBatchUpdate, an unknown node's update is
        dropped; a known one's is kept under the node's own spelling."""
        with self.write():
            found = self.node_named(node)
            if found is None:
                return
            self._stamp([COORDINATES])
            self.coordinates[(found.name, segment)] = coord

    def _drop_coordinates(self, node: str) -> None:
        doomed = [key for key in self.coordinates if key[0] == node]
        if doomed:
            self._stamp([COORDINATES])
        for key in doomed:
            del self.coordinates[key]

    # -- config entries -----------------------------------------------------------

    def config_put(self, entry: dict, cas: int | None = None) -> bool:
        """Write a config entry (``Kind`` and ``Name`` set); with `cas`, only if
        its ModifyIndex matches (0: only if absent), as Consul's ensureConfigEntryCAS."""
        key = (entry["Kind"], entry["Name"])
        return self._put_indexed(self.config_entries, key, entry, cas, CONFIG)

    def put_autopilot(self, config: dict, cas: int | None = None) -> bool:
        """The autopilot configuration, kept with raft indexes like an entry."""
        return self._put_indexed(self.settings, AUTOPILOT, config, cas, AUTOPILOT)

    def _put_indexed(self, table: dict, key, value: dict, cas, name: str) -> bool:
        with self.write():
            old = table.get(key)
            if cas is not None and (old["ModifyIndex"] if old else 0) != cas:
                return False
            index = self._stamp([name])
            created = old["CreateIndex"] if old else index
            table[key] = {**value, "CreateIndex": created, "ModifyIndex": index}
            return True

    def config_delete(self, kind: str, name: str, cas: int | None = None) -> bool:
        with self.write():
            old = self.config_entries.get((kind, name))
            if old is None:
                # Nothing to delete: fine, but a CAS delete reports false.
                return cas is None
            if cas is not None and old["ModifyIndex"] != cas:
                return False
            self._stamp([CONFIG])
            del self.config_entries[(kind, name)]
            return True

    # -- KV -----------------------------------------------------------------------

    def kv_put(self, entry: KVEntry, cas: int | None = None) -> bool:
        with self.write():
            old = self.kv.get(entry.key)
            if cas is not None and (old.modify_index if old else 0) != cas:
                return False
            if old:
                entry.lock_index, entry.session = old.lock_index, old.session
            self._store_kv(entry, old)
            return True

    def kv_lock(self, entry: KVEntry, session_id: str) -> bool:
        """?acquire: write `entry` held by the session, unless another session
        holds the key or its lock-delay runs. LockIndex counts acquisitions."""
        with self.write():
            # Consul checks the lock-delay before the session (kvsPreApply).
            if self.lock_delays.get(entry.key, 0.0) > time.monotonic():
                return False
            self.lock_delays.pop(entry.key, None)
            if session_id not in self.sessions:
                raise UnknownSession(session_id)
            old = self.kv.get(entry.key)
            holder = old.session if old else ""
            if holder and holder != session_id:
                return False
            lock_index = old.lock_index if old else 0
            entry.lock_index = lock_index if holder else lock_index + 1
            entry.session = session_id
            self._store_kv(entry, old)
            return True

    def kv_unlock(self, entry: KVEntry, session_id: str) -> bool:
        """?release: write `entry` unlocked, if the session holds the key."""
        with self.write():
            old = self.kv.get(entry.key)
            if old is None or old.session != session_id:
                return False
            entry.lock_index, entry.session = old.lock_index, ""
            self._store_kv(entry, old)
            return True

    def _store_kv(self, entry: KVEntry, old: KVEntry | None) -> None:
        self._stamp_record(entry, old, [KV])
        self.kv[entry.key] = entry
        self.kv_tombstones.pop(entry.key, None)

    def kv_delete(self, key: str, recurse: bool = False, cas: int | None = None):
        with self.write():
            if recurse:
                doomed = [k for k in self.kv if k.startswith(key)]
            else:
                old = self.kv.get(key)
                if cas is not None and old and old.modify_index != cas:
                    return False
                doomed = [key] if old else []
            self._kv_remove(doomed)
            return True

    def _kv_remove(self, keys: list[str]) -> None:
        if not keys:
            return
        index = self._stamp([KV])
        for k in keys:
            del self.kv[k]
            self.kv_tombstones[k] = index

    def kv_list(self, prefix: str) -> list[KVEntry]:
        return sorted(
            (e for k, e in self.kv.items() if k.startswith(prefix)),
            key=lambda e: e.key,
        )

    def kv_prefix_index(self, prefix: str) -> int:
        if not prefix:
            return self.table_index[KV]
        live = [e.modify_index for k, e in self.kv.items() if k.startswith(prefix)]
        dead = [i for k, i in self.kv_tombstones.items() if k.startswith(prefix)]
        return max(live + dead, default=0)

    def kv_key_index(self, key: str) -> int:
        entry = self.kv.get(key)
        return entry.modify_index if entry else self.table_index[KV]

    # -- sessions -----------------------------------------------------------------

    def session_create(self, session: Session) -> None:
        with self.write():
            self._stamp_record(session, None, [SESSIONS])
            self.sessions[session.id] = session

    def session_destroy(self, session_id: str) -> bool:
        """Invalidate a session: its locks are released (LockIndex kept) or,
        with Behavior "delete", the held keys deleted; each then waits out the
        session's lock-delay before anyone can lock it again."""
        with self.write():
            session = self.sessions.pop(session_id, None)
            if session is None:
                return False
            index = self._stamp([SESSIONS])
            held = [k for k, e in self.kv.items() if e.session == session_id]
            if session.behavior == "delete":
                self._kv_remove(held)
            else:
                for key in held:
                    # A new object, not a mutation: answers rendered outside
                    # the lock may still hold the old one.
                    self.kv[key] = replace(self.kv[key], session="", modify_index=index)
                if held:
                    self._stamp([KV])
            delay = min(session.lock_delay, MAX_LOCK_DELAY)
            if delay > 0 and held:
                now = time.monotonic()
                # Forget delays that ran out on keys nobody tried to lock since.
                self.lock_delays = {
                    k: t for k, t in self.lock_delays.items() if t > now
                }
                self.lock_delays.update(dict.fromkeys(held, now + seconds(delay)))
            return True

    def _invalidate_sessions(self, node: str, check_id: str) -> None:
        # A session names its node and checks as it was created with, each in
        # any case (Consul's session_checks table indexes both lowercased).
        on_node, is_check = named(node), named(check_id)
        for session in list(self.sessions.values()):
            if on_node(session.node) and any(map(is_check, session.check_ids())):
                self.session_destroy(session.id)
