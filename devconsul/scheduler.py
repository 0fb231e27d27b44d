"""A single timer thread that runs jobs at given monotonic times, and a small
pool of worker threads for the jobs that block (probes).

Checks, TTL deadlines and the reaper all hang off this one timer thread instead
of a thread per check; it sleeps on a condition until the next due time, so
nothing polls.
"""

import heapq
import itertools
import logging
import queue
import threading
import time
from collections.abc import Callable

log = logging.getLogger("devconsul.scheduler")


class Scheduler:
    def __init__(self):
        self._heap: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._stopped = False
        self._thread = threading.Thread(
            target=self._run, name="devconsul-scheduler", daemon=True
        )

    def start(self) -> "Scheduler":
        self._thread.start()
        return self

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify()
        self._thread.join(timeout=5)

    def call_at(self, when: float, job: Callable[[], None]) -> None:
        with self._cond:
            heapq.heappush(self._heap, (when, next(self._seq), job))
            self._cond.notify()

    def call_later(self, delay: float, job: Callable[[], None]) -> None:
        self.call_at(time.monotonic() + delay, job)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._stopped and not self._due():
                    timeout = (
                        self._heap[0][0] - time.monotonic() if self._heap else None
                    )
                    self._cond.wait(timeout)
                if self._stopped:
                    return
                _, _, job = heapq.heappop(self._heap)
            try:
                job()
            except Exception:
                log.exception("job %r failed", job)

    def _due(self) -> bool:
        return bool(self._heap) and self._heap[0][0] <= time.monotonic()


class WorkerPool:
    """Daemon worker threads: unlike ThreadPoolExecutor's, a probe still waiting
    on its timeout never delays the agent's exit."""

    def __init__(self, size: int, name: str):
        self._jobs: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self._threads = [
            threading.Thread(target=self._work, name=f"{name}-{i}", daemon=True)
            for i in range(size)
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, job: Callable[[], None]) -> None:
        self._jobs.put(job)

    def shutdown(self) -> None:
        for _ in self._threads:
            self._jobs.put(None)

    def _work(self) -> None:
        while (job := self._jobs.get()) is not None:
            try:
                job()
            except Exception:
                log.exception("job %r failed", job)
