"""What the gateway knows about Consul: the service catalog, every instance, the route table.

One thread follows `/v1/catalog/services` with blocking queries and keeps one discovery
HealthWatcher (all instances, not only passing ones, so /admin/instances can explain each)
per service. The request path calls `view()`, which returns an immutable View rebuilt only
when a watcher swapped in a new snapshot -- the fabio pattern of an atomically swapped table.
When Consul is unreachable, watchers keep their last snapshot (stale) and so does the table.

An agent that restarted with empty state lists no service until their instances register
again, within seconds. Taken at its word, that catalog would stop every watcher and clear the
table, and the fresh watchers built on re-registration would see the instances critical until
their first checks pass: seconds of 503s while every instance is alive. So after an outage or
an index reset, a service the catalog omits keeps its watcher -- which keeps its last
instances through the same kind of reset (discovery.watcher) -- until the catalog lists every
service again, for at most RESET_HOLD_SECONDS; one still missing then is gone.
"""

import logging
import random
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property

from discovery.consul_client import ConsulSettings, make_consul
from discovery.instances import Instance, Snapshot
from discovery.strategies import STRATEGIES, Strategy, make_strategy
from discovery.watcher import RESET_HOLD_SECONDS, HealthWatcher, RateLimit, next_index
from discovery.watcher import swaps as watcher_swaps
from gateway.resilience import Ejector
from gateway.routes import RouteTable, build_table, claimed_prefixes

__all__ = ["Directory", "ServiceState", "View", "routable"]

log = logging.getLogger("gateway.directory")

CATALOG_WAIT = 30.0  # seconds; shorter while services are held (so they go on time)
# Blocking-query wait of the gateway's watchers: short, so that a hung agent shows as an
# overdue answer (HealthWatcher.overdue) within seconds, at the cost of one answer per
# service every few seconds when nothing changes.
WATCH_WAIT = 5.0
READY_TIMEOUT = 3.0  # a new service's watcher is waited for at most this


@dataclass(frozen=True)
class ServiceState:
    name: str
    snapshot: Snapshot
    strategy_name: str
    strategy: Strategy = field(compare=False)
    strategy_problem: str | None = None

    @cached_property
    def admitted(self) -> tuple[Instance, ...]:
        """The instances Consul lets the gateway route to (before ejection): read on every
        request, worked out once per snapshot."""
        return tuple(
            i for i in self.snapshot.instances if admits(i, self.strategy_name)
        )


@dataclass(frozen=True)
class View:
    table: RouteTable
    services: Mapping[str, ServiceState]
    # What it was built from: the watchers' swap count (read before their snapshots) and
    # the directory's watchers (replaced whole when the catalog changes).
    swaps: int = field(default=-1, compare=False, repr=False)
    watchers: Mapping | None = field(default=None, compare=False, repr=False)


def admits(instance: Instance, strategy_name: str) -> bool:
    """Passing instances always; warning ones only where the weighted strategy weighs them."""
    if instance.status == "passing":
        return True
    return (
        instance.status == "warning"
        and strategy_name == "weighted"
        and instance.weights[1] > 0
    )


def routable(state: ServiceState, ejector: Ejector) -> Sequence[Instance]:
    if not ejector.any_ejected():  # the usual case: one clock read
        return state.admitted
    return [i for i in state.admitted if not ejector.is_ejected(i.id)]


def followed(services: Mapping[str, Sequence[str] | None], tag: str) -> set[str]:
    """The services of a catalog answer (name -> tags) that the gateway watches: each one
    but Consul's own, or only those tagged `tag` (case-sensitive, as Consul's tags are). A
    watcher per service per worker is cheap on a stack of a few services, not on a shared
    cluster of hundreds: there a tag names the few the gateway routes to."""
    return {
        name
        for name, tags in services.items()
        if name != "consul" and (not tag or tag in (tags or ()))
    }


class Directory:
    def __init__(
        self,
        consul_settings: ConsulSettings | None,
        default_strategy: str,
        ejector: Ejector,
        watcher_factory: Callable[[str], HealthWatcher] | None = None,
        catalog=None,
        reset_hold: float = RESET_HOLD_SECONDS,
        rate: RateLimit | None = None,
        watch_tag: str = "",
    ):
        """`catalog` (py-consul's `Consul.catalog` shape), `watcher_factory` and the catalog
        loop's `rate` are injectable so tests can drive the directory without an agent."""
        self.consul_settings = consul_settings or ConsulSettings.from_env()
        self.default_strategy = default_strategy
        self.ejector = ejector
        # Called with the ids Consul lists whenever they may have changed.
        self._forgetters: list[Callable[[set[str]], None]] = [ejector.forget]
        self._watcher_factory = watcher_factory or self._health_watcher
        self._catalog = catalog
        self.reset_hold = reset_hold
        self._rate = rate or RateLimit()
        self.watch_tag = watch_tag
        # While set, services the catalog omits are kept until then (see the docstring).
        self._hold_until: float | None = None
        self._kept: set[str] = set()
        self._watchers: dict[str, HealthWatcher] = {}
        self._strategies: dict[tuple[str, str], Strategy] = {}
        self._view = View(RouteTable(), {})
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None
        self.catalog_loaded = False
        self.catalog_error: str | None = None
        self.catalog_errors = 0

    def on_forget(self, forget: Callable[[set[str]], None]) -> None:
        """Also call `forget(ids Consul lists)`, as the ejector is, to drop departed state."""
        self._forgetters.append(forget)

    # -- lifecycle ---------------------------------------------------------------

    def start(self) -> None:
        """Start following Consul (once per process, in the process that serves)."""
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._follow_catalog, name="gateway-catalog", daemon=True
                )
                self._thread.start()

    def wait_ready(self, timeout: float) -> bool:
        """Whether Consul answered (the catalog, and each service's first snapshot) or
        failed for the first time, within `timeout`: blocks, so never on the loop."""
        return self._ready.wait(timeout)

    def stop(self) -> None:
        self._stop.set()
        for watcher in list(self._watchers.values()):
            watcher.stop()

    @property
    def consul_reachable(self) -> bool:
        return self.catalog_error is None and not any(
            w.snapshot().stale or w.overdue() for w in list(self._watchers.values())
        )

    # -- request path ------------------------------------------------------------

    def view(self) -> View:
        """The current view: on every request, so two comparisons while nothing changed.
        Rebuilt here, on the request's thread (the loop), not by the watcher that swapped:
        what a rebuild forgets (metrics series) belongs to the loop."""
        swaps, watchers = watcher_swaps(), self._watchers
        cached = self._view
        if cached.swaps == swaps and cached.watchers is watchers:
            return cached
        # The count was read first: a swap from now on changes it again.
        snaps = {name: w.snapshot() for name, w in watchers.items()}
        self._view = view = self._build(snaps, swaps, watchers)
        return view

    def _build(self, snaps: dict[str, Snapshot], swaps: int, watchers) -> View:
        services = {name: self._state(name, snap) for name, snap in snaps.items()}
        table = build_table(
            {name: claimed_prefixes(s.instances) for name, s in snaps.items()}
        )
        known = {i.id for s in snaps.values() for i in s.instances}
        for forget in self._forgetters:
            forget(known)
        return View(table, services, swaps, watchers)

    def _state(self, name: str, snapshot: Snapshot) -> ServiceState:
        wanted = next(
            (
                i.meta["lb_strategy"]
                for i in sorted(snapshot.instances, key=lambda i: i.id)
                if i.meta.get("lb_strategy")
            ),
            self.default_strategy,
        )
        problem = None
        if wanted not in STRATEGIES:
            problem = f"unknown lb_strategy {wanted!r}; using {self.default_strategy}"
            wanted = self.default_strategy
        key = (name, wanted)
        strategy = self._strategies.get(key)
        if strategy is None:
            strategy = self._strategies.setdefault(key, make_strategy(wanted))
        return ServiceState(name, snapshot, wanted, strategy, problem)

    # -- catalog thread ----------------------------------------------------------

    def _health_watcher(self, service: str) -> HealthWatcher:
        consul = make_consul(self.consul_settings)
        return HealthWatcher(
            service, consul=consul, passing_only=False, wait=WATCH_WAIT
        )

    def _follow_catalog(self) -> None:
        catalog = self._catalog or make_consul(self.consul_settings).catalog
        index, backoff = 0, 0.25
        # Rate limited and its index kept as the health watchers' are (discovery.watcher):
        # however Consul answers, this loop never spins.
        while not self._stop.wait(self._rate.delay()):
            try:
                new_index, services = catalog.services(
                    index=index or None, wait=f"{int(self._catalog_wait() * 1000)}ms"
                )
            except Exception as exc:  # noqa: BLE001 - keep the last table, retry later
                self.catalog_errors += 1
                if self.catalog_error is None:
                    log.warning(
                        "consul catalog unreachable, routing on last state: %s", exc
                    )
                self.catalog_error = f"{type(exc).__name__}: {exc}"
                # The agent may come back restarted with a lower index: ask without one.
                index = 0
                self._ready.set()
                self._stop.wait(backoff * random.uniform(0.5, 1.0))
                backoff = min(backoff * 2, 5.0)
                continue
            new_index = int(new_index)
            came_back = self.catalog_error is not None or new_index < index
            if self.catalog_error is not None:
                log.info("consul catalog reachable again")
            self.catalog_error, backoff = None, 0.25
            if came_back and self.catalog_loaded and self._watchers:
                self._hold_until = time.monotonic() + self.reset_hold
            # A restarted agent starts its index low again: start over from there.
            index = next_index(index, new_index)
            names = followed(services, self.watch_tag)
            self._sync(names, keep=self._held(names))
            self.catalog_loaded = True
            self._ready.set()

    def _catalog_wait(self) -> float:
        if self._hold_until is None:
            return CATALOG_WAIT
        return min(CATALOG_WAIT, max(0.1, self._hold_until - time.monotonic()))

    def _held(self, names: set[str]) -> set[str]:
        """The watched services absent from `names` that stay watched for now."""
        if self._hold_until is None:
            return set()
        missing = set(self._watchers) - names
        if missing and time.monotonic() < self._hold_until:
            if missing - self._kept:
                log.warning(
                    "consul catalog omits %s after a reset or an outage: keeping "
                    "them while they re-register, for up to %gs",
                    sorted(missing - self._kept),
                    self.reset_hold,
                )
            self._kept = missing
            return missing
        self._hold_until, self._kept = None, set()
        if missing:
            log.warning(
                "consul still omits %s %gs after a reset or an outage: dropping",
                sorted(missing),
                self.reset_hold,
            )
        else:
            log.info("consul catalog lists every service again")
        return set()

    def _sync(self, names: set[str], keep: set[str] = frozenset()) -> None:
        current = self._watchers
        added = {name: self._watcher_factory(name) for name in names - set(current)}
        for watcher in added.values():
            watcher.start()
        for watcher in added.values():
            watcher.wait_ready(READY_TIMEOUT)
        removed = set(current) - names - keep
        if not added and not removed:
            return
        # Copy-on-write: the request path reads `_watchers` without a lock.
        self._watchers = {
            **{n: w for n, w in current.items() if n not in removed},
            **added,
        }
        for name in removed:
            current[name].stop()
        log.info(
            "catalog changed: +%s -%s",
            sorted(added) or "none",
            sorted(removed) or "none",
        )
