"""Healthy-instance watching: Consul blocking queries feeding an atomically swapped Snapshot.

One daemon thread per watcher follows /v1/health/service/<name>[?passing] with `index`/`wait`.
Each answer becomes a new immutable Snapshot, swapped in with one assignment; readers never
lock and never call Consul. When Consul fails the last good snapshot stays (fail-static),
marked stale with the error, while the thread backs off with jitter and recovers by itself.
The index is handled as Consul's blocking-query guidance says (reset when it goes backwards,
never 0 once answered) and the loop is rate limited, so it never spins however Consul answers.

`watch(name)` hands out one watcher per service per process. Threads do not survive fork:
a forked child keeps the watcher object with its last snapshot and runs its own thread from
there, so a gunicorn worker forked by a master that watches starts with the master's
instances (see discovery.gunicorn_hooks), even while Consul is away.

An agent that restarted with empty state lists nothing until its instances register again
and pass their checks; taking that at its word would route nowhere for seconds while every
instance is alive. So after an index reset, or an outage, an answer without a passing
instance does not replace the last instances: they stay (marked stale) until Consul lists a
passing one again, for at most RESET_HOLD_SECONDS. Were they really gone, calls to them fail
as fast as "no instance" would.
"""

import logging
import os
import random
import threading
import time
import weakref
from collections.abc import Iterable

from discovery.consul_client import make_consul
from discovery.instances import STATUS_ORDER, Instance, Snapshot

log = logging.getLogger("discovery")

WAIT_SECONDS = (
    30.0  # blocking-query wait; the HTTP timeout is this plus the client timeout
)
# Consul's guidance for blocking-query loops: a token bucket with a burst of 2, so that
# answers arriving now and then are followed at once, while a loop whose answers keep coming
# back at once (an index churning in an incident, an agent or proxy that does not block)
# slows to one query per RATE_PERIOD_SECONDS instead of spinning. Short enough that a
# change still shows within a second, as DRAIN_SECONDS counts on.
RATE_BURST = 2
RATE_PERIOD_SECONDS = 0.5
LOG_EVERY_SECONDS = 30.0  # while failing, repeat the warning at most this often
# After a reset or an outage, how long the last instances stand in for an answer without a
# passing one: anti-entropy re-registers within seconds, and a new check passes within its
# interval (10 s by default).
RESET_HOLD_SECONDS = 30.0
# Consul adds up to wait/16 of jitter to a blocking query; an answer later than that plus this
# slack is overdue: the agent hangs (accepts, never answers) or is too slow to count on.
OVERDUE_SLACK_SECONDS = 1.0


# How many snapshots this process's watchers have swapped in: a reader of many watchers (the
# gateway's Directory, on every request) compares this one number, not every snapshot.
_swaps = 0
_swaps_lock = threading.Lock()


def swaps() -> int:
    return _swaps


def count_swap() -> None:
    """One more snapshot swapped in; called after the swap, so a reader that saw the old
    count before reading snapshots sees the new one."""
    global _swaps
    with _swaps_lock:
        _swaps += 1


class Backoff:
    """Exponential backoff with jitter: base * 2**(n-1), capped, times a factor in [0.5, 1)."""

    def __init__(self, base=0.2, cap=5.0, rng: random.Random | None = None):
        self.base, self.cap = base, cap
        self._rng = rng or random.Random()

    def delay(self, failures: int) -> float:
        raw = min(self.cap, self.base * 2 ** min(failures - 1, 30))
        return raw * self._rng.uniform(0.5, 1.0)


class RateLimit:
    """Token bucket: `burst` queries at once, then one per `period` seconds. A query that
    blocked for a while has earned its tokens back, so the happy path never waits."""

    def __init__(
        self, burst=RATE_BURST, period=RATE_PERIOD_SECONDS, clock=time.monotonic
    ):
        self.burst, self.period, self._clock = burst, period, clock
        self._tokens = float(burst)
        self._last = clock()

    def delay(self) -> float:
        """Take a token: the seconds to wait before the query it pays for."""
        now = self._clock()
        earned = (now - self._last) / self.period
        self._tokens = min(float(self.burst), self._tokens + earned) - 1
        self._last = now
        return max(0.0, -self._tokens * self.period)

    def refill(self) -> None:
        self._tokens, self._last = float(self.burst), self._clock()


def next_index(previous: int, returned: int) -> int:
    """The index to block on after an answer, as Consul's blocking-query guidance says: 0
    (ask afresh, answered at once) when it went backwards, else the answer's. An index of 0
    (a Consul bug some versions have) counts as 1, which is always safe to block on: 0
    would not block, and the loop would spin."""
    returned = max(returned, 1)
    return 0 if returned < previous else returned


class HealthWatcher:
    def __init__(
        self,
        service: str,
        consul=None,
        passing_only: bool = True,
        wait: float = WAIT_SECONDS,
        backoff: Backoff | None = None,
        reset_hold: float = RESET_HOLD_SECONDS,
        rate: RateLimit | None = None,
    ):
        self.service = service
        self.passing_only = passing_only
        self.wait = wait
        self.backoff = backoff or Backoff()
        self.rate = rate or RateLimit()
        self.reset_hold = reset_hold
        self._consul = consul
        self._owns_consul = consul is None
        self._snapshot = Snapshot()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._ready = threading.Event()
        self._loaded = threading.Event()
        # Since when the last instances stand in for answers without a passing one.
        self._held_since: float | None = None
        # When the query in flight was sent; None between queries.
        self._asking_since: float | None = None
        self._stopped = False
        _WATCHERS.add(self)

    # -- reading -----------------------------------------------------------------------

    def snapshot(self) -> Snapshot:
        """The current snapshot. Starts the thread if it is not running yet, e.g. in a
        forked child that inherited this watcher from its parent (the at-fork hook below
        forgot the parent's thread there, so no pid check is needed on this hot path)."""
        if self._thread is None and not self._stopped:
            self.start()
        return self._snapshot

    def overdue(self) -> bool:
        """Whether the query in flight is late past any blocking wait. A hung agent shows
        here well before the HTTP timeout (the wait plus CONSUL_TIMEOUT) ends the query
        and marks the snapshot stale; so the shorter the wait, the sooner."""
        since = self._asking_since
        limit = self.wait * 17 / 16 + OVERDUE_SLACK_SECONDS
        return since is not None and time.monotonic() - since > limit

    def wait_ready(self, timeout: float) -> bool:
        """Wait for the first answer (or failure) from Consul; True if one arrived."""
        self.snapshot()
        return self._ready.wait(timeout)

    def wait_loaded(self, timeout: float) -> bool:
        """Wait until the snapshot holds a real answer (failures do not count, the thread
        keeps retrying meanwhile); True if it does."""
        self.snapshot()
        return self._loaded.wait(timeout)

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> "HealthWatcher":
        with self._lock:
            # A stopped thread may still sit in its last blocking query: replace it.
            running = self._thread is not None and self._thread.is_alive()
            if not running or self._stopping.is_set():
                # Built here, so a bad environment raises to the caller.
                if self._consul is None:
                    self._consul = make_consul()
                self._stopped = False
                self._stopping = threading.Event()
                self._thread = threading.Thread(
                    target=self._run,
                    args=(self._stopping,),
                    name=f"watch-{self.service}",
                    daemon=True,
                )
                self._thread.start()
        return self

    def stop(self, timeout: float = 0.0) -> None:
        """Stop following Consul. Returns at once by default: a blocking query in flight
        ends on its own and its answer is dropped (the thread is a daemon)."""
        self._stopped = True
        self._stopping.set()
        thread = self._thread
        if thread is not None and timeout > 0:
            thread.join(timeout)

    def _after_fork(self) -> None:
        # Called in a child: the thread is gone, the lock may have been copied held, and
        # a client we built shares pooled sockets with the parent. The snapshot stays: it
        # is what the parent knew, and serves until this process's own thread answers.
        self._lock = threading.Lock()
        self._thread = None
        self._ready = threading.Event()
        self._loaded = threading.Event()
        if self._snapshot.loaded:
            self._ready.set()
            self._loaded.set()
        if self._owns_consul:
            self._consul = None
        # The child's loop is a new one: what the parent's spent is not its debt.
        self.rate.refill()

    # -- the loop ----------------------------------------------------------------------

    def _run(self, stopping: threading.Event) -> None:
        index, failures, last_log = 0, 0, -LOG_EVERY_SECONDS
        while not stopping.is_set():
            if stopping.wait(self.rate.delay()):
                break
            try:
                new_index, entries = self._query(index)
                instances = tuple(sorted(parse_entries(entries), key=lambda i: i.id))
            except Exception as exc:  # noqa: BLE001 - any failure: keep the last good state
                failures += 1
                # After a failure the agent may have restarted with a lower index; asking
                # with the old one would block a whole `wait` on a real Consul before the
                # reset below could happen. Index 0 answers at once.
                index = 0
                if stopping.is_set():
                    break
                self._mark_stale(exc)
                if time.monotonic() - last_log >= LOG_EVERY_SECONDS:
                    last_log = time.monotonic()
                    log.warning(
                        "watcher %s: Consul query failed (%d in a row), keeping last "
                        "snapshot: %s",
                        self.service,
                        failures,
                        exc,
                    )
                if stopping.wait(self.backoff.delay(failures)):
                    break
                continue
            if stopping.is_set():
                break
            if failures:
                log.info("watcher %s: Consul answers again", self.service)
                failures, last_log = 0, -LOG_EVERY_SECONDS
            now = time.monotonic()
            self._snapshot = self._next_snapshot(instances, new_index, now)
            count_swap()
            self._ready.set()
            self._loaded.set()
            # An index that went backwards (agent restarted, state lost) restarts the
            # sequence: the next query answers at once and sets a fresh baseline.
            index = next_index(index, new_index)

    def _query(self, index: int) -> tuple[int, list]:
        self._asking_since = time.monotonic()
        try:
            raw_index, entries = self._consul.health.service(
                self.service,
                index=index or None,
                wait=f"{int(self.wait * 1000)}ms",
                passing=self.passing_only,
            )
        finally:
            self._asking_since = None
        # py-consul maps a 404 to None; Consul answers [] for unknown names.
        if entries is None:
            raise ValueError("404 from health endpoint")
        return max(int(raw_index), 0), entries

    def _next_snapshot(
        self, instances: tuple[Instance, ...], index: int, now: float
    ) -> Snapshot:
        old = self._snapshot
        # An agent that restarted empty shows as an index gone backwards -- or, if its new
        # index already passed the old one, only as the first answer after an outage.
        reset = old.loaded and (index < old.index or old.stale)
        if (reset or self._held_since is not None) and self._holds(instances, now):
            # Stale: /health says so, and the age keeps counting from the last real list.
            error = "agent reset or back from an outage with no passing instance: "
            error += "keeping the last instances until it lists some"
            return Snapshot(old.instances, index, old.updated_at, True, error)
        if self._held_since is not None:
            log.info("watcher %s: following Consul's list again", self.service)
            self._held_since = None
        return Snapshot(instances, index, now, False, None)

    def _holds(self, instances: tuple[Instance, ...], now: float) -> bool:
        """Whether to keep the last instances in place of this answer after a reset."""
        if (
            any(i.status == "passing" for i in instances)
            or not self._snapshot.instances
        ):
            return False
        if self._held_since is None:
            self._held_since = now
            log.warning(
                "watcher %s: Consul lists no passing instance after a reset or an "
                "outage; keeping the last %d for up to %gs",
                self.service,
                len(self._snapshot.instances),
                self.reset_hold,
            )
        return now - self._held_since < self.reset_hold

    def _mark_stale(self, exc: BaseException) -> None:
        old = self._snapshot
        # The type names what failed, e.g. "ACLPermissionDenied: Permission denied".
        error = f"{type(exc).__name__}: {exc}"
        self._snapshot = Snapshot(old.instances, old.index, old.updated_at, True, error)
        count_swap()
        self._ready.set()


def parse_entries(entries: Iterable[dict]) -> list[Instance]:
    """Consul health entries -> Instances. A malformed entry raises (the caller keeps the
    last good snapshot rather than serve half an answer)."""
    return [parse_entry(e) for e in entries]


def parse_entry(entry: dict) -> Instance:
    svc = entry["Service"]
    weights = svc.get("Weights") or {}
    return Instance(
        id=svc["ID"],
        service=svc["Service"],
        # Consul leaves Service.Address empty when the service uses the node's address.
        address=svc.get("Address") or entry["Node"]["Address"],
        port=int(svc["Port"]),
        tags=tuple(svc.get("Tags") or ()),
        meta=svc.get("Meta") or {},
        weights=(int(weights.get("Passing", 1)), int(weights.get("Warning", 1))),
        status=aggregate_status(entry.get("Checks") or ()),
    )


def aggregate_status(checks: Iterable[dict]) -> str:
    """maintenance > critical > warning > passing; no checks at all counts as passing."""
    worst = len(STATUS_ORDER) - 1
    for check in checks:
        check_id = check.get("CheckID", "")
        if check_id.startswith(("_service_maintenance:", "_node_maintenance")):
            return "maintenance"
        status = check.get("Status", "critical")
        rank = STATUS_ORDER.index(status) if status in STATUS_ORDER else 1
        worst = min(worst, rank)
    return STATUS_ORDER[worst]


# -- per-process registry ------------------------------------------------------------------

_WATCHERS: "weakref.WeakSet[HealthWatcher]" = weakref.WeakSet()
_registry: dict[tuple[str, bool], HealthWatcher] = {}
_registry_lock = threading.Lock()


def watch(service: str, passing_only: bool = True) -> HealthWatcher:
    """This process's watcher for `service`, started on first use."""
    key = (service, passing_only)
    with _registry_lock:
        watcher = _registry.get(key)
        if watcher is None:
            watcher = _registry[key] = HealthWatcher(service, passing_only=passing_only)
    return watcher.start()


def stop_all() -> None:
    """Stop and forget every registered watcher (tests, orderly shutdown)."""
    with _registry_lock:
        watchers = list(_registry.values())
        _registry.clear()
    for watcher in watchers:
        watcher.stop()


def _reset_after_fork() -> None:
    # The registry stays: a child keeps each watcher and its snapshot, with a new thread.
    global _registry_lock
    _registry_lock = threading.Lock()
    for watcher in list(_WATCHERS):
        watcher._after_fork()


os.register_at_fork(after_in_child=_reset_after_fork)
