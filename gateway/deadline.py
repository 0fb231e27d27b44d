"""One deadline at a time on one loop timer, for a connection whose deadlines change often.

Both sides of the proxy re-arm a deadline several times per request (a client's head,
keep-alive and linger deadlines; an upstream exchange's read timeout). A timer handle each
time costs more than the request's own work on it, so one timer is kept and moved only when
it would fire too late; firing early, it waits on until the current deadline.
"""

import asyncio
from collections.abc import Callable

__all__ = ["Deadline"]


class Deadline:
    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.loop = loop
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0
        self._at = 0.0
        self._on_late: Callable[[], object] | None = None

    def arm(self, seconds: float, callback: Callable[[], object]) -> None:
        """Call `callback` in `seconds`, unless disarmed or armed again before."""
        at = self.loop.time() + seconds
        self._at, self._on_late = at, callback
        if self._timer is None or self._timer_at > at:
            if self._timer is not None:
                self._timer.cancel()
            self._timer_at = at
            self._timer = self.loop.call_at(at, self._fire)

    def disarm(self) -> None:
        self._on_late = None

    def cancel(self) -> None:
        """Disarm and drop the timer: a pending one would keep its owner alive."""
        self._on_late = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _fire(self) -> None:
        self._timer = None
        callback = self._on_late
        if callback is None:
            return
        if self.loop.time() < self._at:
            self._timer_at = self._at
            self._timer = self.loop.call_at(self._at, self._fire)
            return
        self._on_late = None
        callback()
