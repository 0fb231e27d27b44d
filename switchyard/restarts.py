"""When `switchyard up` starts again a process of its stack that exited on its own.

As compose's `restart: unless-stopped` does for the compose stack: a crash, the OOM killer or
a stray `kill` costs the local stack seconds, not the rest of the session (an agent that is
gone would leave every instance without discovery until the next `make up`). The first
restart is at once; a process that dies again within STABLE_AFTER of being started waits
FIRST_DELAY, then twice as long each time, up to MAX_DELAY, so one that cannot run costs a
line now and then instead of a busy loop.
"""

import time
from collections.abc import Callable

STABLE_AFTER = 60.0
FIRST_DELAY = 1.0
MAX_DELAY = 30.0


class Restarts:
    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self._clock = clock
        # When each was last started again by us (the stack's start-up is not counted).
        self._started: dict[str, float] = {}
        self._failures: dict[str, int] = {}  # quick deaths in a row
        self._due: dict[str, float] = {}

    def pending(self, name: str) -> bool:
        return name in self._due

    def exited(self, name: str) -> float:
        """Note that `name` exited; the delay before it is due to start again."""
        now = self._clock()
        started = self._started.get(name)
        quick = started is not None and now - started < STABLE_AFTER
        failures = self._failures.get(name, 0) + 1 if quick else 0
        self._failures[name] = failures
        delay = min(MAX_DELAY, FIRST_DELAY * 2 ** (failures - 1)) if failures else 0.0
        self._due[name] = now + delay
        return delay

    def due(self) -> list[str]:
        """The processes to start now; each counts as started from here."""
        now = self._clock()
        names = [name for name, at in self._due.items() if at <= now]
        for name in names:
            del self._due[name]
            self._started[name] = now
        return names
