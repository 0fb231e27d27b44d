"""Load-balancing strategies: small classes behind `choose(instances) -> Instance`.

Every strategy is thread-safe, reads only the list it is given (so membership changes between
calls need no bookkeeping), and takes an injectable `random.Random` for reproducible tests.
`track(instance)` (or `begin`/`end`) marks a request to an instance; least_connections counts
them and chooses by the counts, the others need no count and keep none.
"""

import random
import threading
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from operator import attrgetter
from typing import ClassVar

from chassis.env import ConfigError
from chassis.errors import NoHealthyInstance
from discovery.instances import Instance

_BY_ID = attrgetter("id")


class Strategy:
    name: ClassVar[str]

    def __init__(self, rng: random.Random | None = None):
        self._rng = rng or random.Random()
        self._lock = threading.Lock()

    def choose(self, instances: Sequence[Instance]) -> Instance:
        if not instances:
            raise NoHealthyInstance()
        # Sorting makes the choice depend on membership only, not on Consul's answer order.
        ordered = sorted(instances, key=_BY_ID)
        with self._lock:
            return self._pick(ordered)

    def _pick(self, ordered: list[Instance]) -> Instance:
        raise NotImplementedError

    @contextmanager
    def track(self, instance: Instance) -> Iterator[None]:
        self.begin(instance)
        try:
            yield
        finally:
            self.end(instance)

    def begin(self, instance: Instance) -> None:
        """A request to `instance` starts: `track` without a generator, for hot paths
        (the gateway's), which must call `end` in a `finally`."""

    def end(self, instance: Instance) -> None:
        """The request `begin` marked has ended."""


class RoundRobin(Strategy):
    """A counter modulo the current list: exactly even over a stable list, and a list that
    grows or shrinks mid-rotation just continues from the counter."""

    name = "round_robin"

    def __init__(self, rng: random.Random | None = None):
        super().__init__(rng)
        # Random start so that many processes started together do not all hit the same instance.
        self._counter = self._rng.randrange(1 << 16)

    def _pick(self, ordered: list[Instance]) -> Instance:
        self._counter += 1
        return ordered[self._counter % len(ordered)]


class RandomChoice(Strategy):
    name = "random"

    def _pick(self, ordered: list[Instance]) -> Instance:
        return self._rng.choice(ordered)


class LeastConnections(Strategy):
    """The instance with the fewest requests in flight through this strategy; ties at random."""

    name = "least_connections"

    def __init__(self, rng: random.Random | None = None):
        super().__init__(rng)
        self._in_flight: Counter[str] = Counter()

    def _pick(self, ordered: list[Instance]) -> Instance:
        fewest = min(self._in_flight[i.id] for i in ordered)
        return self._rng.choice([i for i in ordered if self._in_flight[i.id] == fewest])

    def begin(self, instance: Instance) -> None:
        with self._lock:
            self._in_flight[instance.id] = self._in_flight.get(instance.id, 0) + 1

    def end(self, instance: Instance) -> None:
        with self._lock:
            left = self._in_flight[instance.id] - 1
            if left > 0:
                self._in_flight[instance.id] = left
            else:
                self._in_flight.pop(instance.id, None)

    def in_flight(self, instance_id: str) -> int:
        with self._lock:
            return self._in_flight[instance_id]


class Weighted(Strategy):
    """Random in proportion to Consul Weights: Passing for passing instances, Warning for
    warning ones (only present when the caller admits them); anything else weighs 0."""

    name = "weighted"

    def _pick(self, ordered: list[Instance]) -> Instance:
        weights = [instance_weight(i) for i in ordered]
        if not any(weights):
            raise NoHealthyInstance(ordered[0].service)
        return self._rng.choices(ordered, weights=weights)[0]


def instance_weight(instance: Instance) -> int:
    passing, warning = instance.weights
    return {"passing": passing, "warning": warning}.get(instance.status, 0)


STRATEGIES: dict[str, type[Strategy]] = {
    cls.name: cls for cls in (RoundRobin, RandomChoice, LeastConnections, Weighted)
}


def make_strategy(
    name: str, rng: random.Random | None = None, variable: str = "strategy"
) -> Strategy:
    """A fresh strategy by name; an unknown name is a ConfigError naming `variable`."""
    try:
        cls = STRATEGIES[name]
    except KeyError:
        valid = ", ".join(sorted(STRATEGIES))
        raise ConfigError(
            f"{variable}: unknown strategy {name!r}; valid: {valid}"
        ) from None
    return cls(rng)
