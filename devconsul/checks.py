"""Runs the agent's checks: HTTP/TCP/script probes on their interval and TTL
deadlines.

All timing goes through one `Scheduler`; probes run on a small thread pool with
timeouts, so a hanging target never blocks the agent. Each running check is a
monitor object; a result is applied only while its monitor is still the one
registered for that check ID, so results of a replaced or removed check vanish.
"""

import logging
import random
import threading
import time
from collections.abc import Callable

from devconsul.definitions import CheckDefinition
from devconsul.durations import SECOND, seconds
from devconsul.probes import OUTPUT_MAX, http_probe, tcp_probe
from devconsul.scheduler import Scheduler, WorkerPool
from devconsul.scripts import Scripts
from devconsul.thresholds import StatusFilter

log = logging.getLogger("devconsul.checks")

DEFAULT_TIMEOUT = 10 * SECOND
# CheckMonitor's default: scripts get longer than network probes.
SCRIPT_TIMEOUT = 30 * SECOND
MIN_INTERVAL = SECOND

Report = Callable[[str, str, str], None]


class CheckRunner:
    def __init__(
        self,
        report: Report,
        scheduler: Scheduler,
        workers: int = 16,
        min_interval: int = MIN_INTERVAL,
    ):
        self._report = report
        self.scheduler = scheduler
        # Consul's 1s floor; unit tests lower it to exercise many runs quickly.
        self.min_interval = min_interval
        self.pool = WorkerPool(workers, "devconsul-check")
        self.scripts = Scripts()
        self._monitors: dict[str, object] = {}
        self._lock = threading.Lock()

    def start(self, check_id: str, definition: CheckDefinition) -> None:
        """Start (or restart with a new definition) the check's monitor."""
        if definition.kind == "ttl":
            monitor = TTLMonitor(self, check_id, definition.ttl)
        elif definition.kind in ("http", "tcp", "script"):
            monitor = ProbeMonitor(self, check_id, definition)
        else:
            self.stop(check_id)
            return
        with self._lock:
            self._monitors[check_id] = monitor
        monitor.begin()

    def stop(self, check_id: str) -> None:
        with self._lock:
            self._monitors.pop(check_id, None)

    def ttl_touch(self, check_id: str, output: str) -> None:
        with self._lock:
            monitor = self._monitors.get(check_id)
        if isinstance(monitor, TTLMonitor):
            monitor.touch(output)

    def counts(self) -> dict[str, int]:
        """Running monitors by check kind (for the agent's stats)."""
        with self._lock:
            kinds = [m.kind for m in self._monitors.values()]
        return {kind: kinds.count(kind) for kind in set(kinds)}

    def shutdown(self) -> None:
        with self._lock:
            self._monitors.clear()
        self.scripts.kill_all()
        self.pool.shutdown()

    def is_current(self, monitor) -> bool:
        with self._lock:
            return self._monitors.get(monitor.check_id) is monitor

    def report(self, monitor, status: str, output: str) -> None:
        if self.is_current(monitor):
            self._report(monitor.check_id, status, output)


class ProbeMonitor:
    def __init__(self, runner: CheckRunner, check_id: str, check: CheckDefinition):
        self.runner = runner
        self.check_id = check_id
        self.check = check
        self.kind = check.kind
        floor = runner.min_interval
        if check.interval < floor:
            log.warning(
                "check %s: interval below %ss, raised", check_id, seconds(floor)
            )
        self.interval = seconds(max(check.interval, floor))
        default = SCRIPT_TIMEOUT if check.kind == "script" else DEFAULT_TIMEOUT
        self.timeout_ns = check.timeout or default
        self.timeout = seconds(self.timeout_ns)
        self.filter = StatusFilter(
            check.success_before_passing,
            check.failures_before_warning,
            check.failures_before_critical,
        )
        self._due = 0.0

    def begin(self) -> None:
        # A random first offset spreads many checks over the interval, as Consul does.
        self._schedule(time.monotonic() + random.uniform(0, self.interval))

    def _schedule(self, when: float) -> None:
        self._due = when
        self.runner.scheduler.call_at(when, self._fire)

    def _fire(self) -> None:
        if self.runner.is_current(self):
            self.runner.pool.submit(self._probe)

    def _probe(self) -> None:
        if self.check.kind == "http":
            status, output = http_probe(self.check, self.timeout)
        elif self.check.kind == "script":
            status, output = self.runner.scripts.run(
                self.check.args, self.timeout_ns, self._output_limit()
            )
        else:
            status, output = tcp_probe(self.check.tcp, self.timeout)
        applied = self.filter.apply(status)
        if applied:
            self.runner.report(self, applied, output)
        if self.runner.is_current(self):
            self._schedule(max(self._due + self.interval, time.monotonic()))

    def _output_limit(self) -> int:
        """The agent's cap (4 KiB), lowered by the check's OutputMaxSize."""
        wanted = self.check.output_max_size
        return min(wanted, OUTPUT_MAX) if wanted > 0 else OUTPUT_MAX


class TTLMonitor:
    def __init__(self, runner: CheckRunner, check_id: str, ttl_ns: int):
        self.runner = runner
        self.check_id = check_id
        self.kind = "ttl"
        self.ttl = seconds(ttl_ns)
        self._lock = threading.Lock()
        self._deadline = time.monotonic() + self.ttl
        self._last_output = ""
        self._armed = False

    def begin(self) -> None:
        self._arm()

    def touch(self, output: str) -> None:
        """A pass/warn/fail/update: restart the clock (the pending timer re-arms)."""
        with self._lock:
            self._deadline = time.monotonic() + self.ttl
            self._last_output = output
        self._arm()

    def _arm(self) -> None:
        with self._lock:
            if self._armed:
                return
            self._armed = True
            deadline = self._deadline
        self.runner.scheduler.call_at(deadline, self._fire)

    def _fire(self) -> None:
        with self._lock:
            self._armed = False
            expired = time.monotonic() >= self._deadline
            last = self._last_output
        if not self.runner.is_current(self):
            return
        if not expired:
            self._arm()
            return
        output = "TTL expired"
        if last:
            output = f"TTL expired (last output before timeout follows): {last}"
        self.runner.report(self, "critical", output)
