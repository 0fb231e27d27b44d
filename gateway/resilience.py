"""Local defences against failing upstreams: passive ejection and the retry budget.

Both are per gateway process and keyed by what they protect; clocks are injectable so the
rules are tested without sleeping.
"""

import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

__all__ = ["EjectionState", "Ejector", "RetryBudget"]

Clock = Callable[[], float]


@dataclass
class EjectionState:
    consecutive_failures: int = 0
    ejections: int = 0
    ejected_until: float = 0.0
    # What failed last (a gateway.proxy.Outcome): for operators, on /admin/instances.
    last_failure: str | None = None


class Ejector:
    """Ejects an instance after `after` consecutive failures, for `base * 2**(n-1)` seconds
    (at most `maximum`) on its n-th ejection, unless half of its service is out already.

    Consul notices a dead instance only after its next check; this keeps requests away from
    it in the meantime. A success resets the failure count and the back-off.
    """

    def __init__(
        self,
        after: int = 3,
        base: float = 5.0,
        maximum: float = 60.0,
        clock: Clock = time.monotonic,
    ):
        self.after, self.base, self.maximum, self.clock = after, base, maximum, clock
        self._states: dict[str, EjectionState] = {}
        self._lock = threading.Lock()
        self._last_until = 0.0  # when the latest ejection ends

    def state(self, instance_id: str) -> EjectionState:
        with self._lock:
            found = self._states.get(instance_id)
            return EjectionState(**vars(found)) if found else EjectionState()

    def any_ejected(self) -> bool:
        """Whether some instance may be ejected now: one clock read, not one per instance."""
        return self._last_until > self.clock()

    def is_ejected(self, instance_id: str) -> bool:
        found = self._states.get(instance_id)
        return found is not None and found.ejected_until > self.clock()

    def success(self, instance_id: str) -> None:
        found = self._states.get(instance_id)
        if found is not None and (found.consecutive_failures or found.ejections):
            with self._lock:
                found.consecutive_failures = 0
                found.ejections = 0

    def failure(
        self, instance_id: str, peers: Sequence[str], outcome: str | None = None
    ) -> bool:
        """Record a failure (`outcome`: what failed); True when this one ejected the
        instance. `peers` are the ids of every instance of the service (this one included).
        """
        with self._lock:
            state = self._states.setdefault(instance_id, EjectionState())
            state.consecutive_failures += 1
            state.last_failure = outcome
            now = self.clock()
            if state.consecutive_failures < self.after or state.ejected_until > now:
                return False
            out = sum(
                1
                for peer in peers
                if peer != instance_id
                and (s := self._states.get(peer))
                and s.ejected_until > now
            )
            if out + 1 > len(peers) // 2:
                return False
            state.ejections += 1
            state.consecutive_failures = 0
            hold = min(self.base * 2 ** (state.ejections - 1), self.maximum)
            state.ejected_until = now + hold
            self._last_until = max(self._last_until, state.ejected_until)
            return True

    def forget(self, keep: set[str]) -> None:
        """Drop state of instances Consul no longer lists."""
        with self._lock:
            for gone in set(self._states) - keep:
                del self._states[gone]


class RetryBudget:
    """Retries may be at most `ratio` of requests over the last `window` seconds, plus `floor`.

    Without a budget every failing request turns into up to three; when a whole service
    struggles that triples its load exactly when it can least take it.
    """

    def __init__(
        self,
        ratio: float = 0.2,
        floor: int = 5,
        window: float = 10.0,
        clock: Clock = time.monotonic,
    ):
        self.ratio, self.floor, self.window, self.clock = ratio, floor, window, clock
        self._requests: deque[float] = deque()
        self._retries: deque[float] = deque()
        self._lock = threading.Lock()

    def _trim(self, now: float) -> None:
        horizon = now - self.window
        for events in (self._requests, self._retries):
            while events and events[0] <= horizon:
                events.popleft()

    def request(self) -> None:
        with self._lock:
            now = self.clock()
            self._trim(now)
            self._requests.append(now)

    def try_retry(self) -> bool:
        """Spend one retry if the budget allows it."""
        with self._lock:
            now = self.clock()
            self._trim(now)
            allowed = self.floor + self.ratio * len(self._requests)
            if len(self._retries) + 1 > allowed:
                return False
            self._retries.append(now)
            return True
