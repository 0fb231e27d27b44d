"""Immutable views of what Consul says: one Instance per service instance, one Snapshot per answer.

Watchers build a new Snapshot for every answer and swap it in with one assignment, so the
request path reads a consistent value without locks.
"""

import ipaddress
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

# Aggregated status, worst first: the order Consul's UI and agent-local health use.
STATUS_ORDER = ("maintenance", "critical", "warning", "passing")


def host_for_url(address: str) -> str:
    """Bracket IPv6 literals so they can sit in front of `:port`."""
    try:
        if ipaddress.ip_address(address).version == 6:
            return f"[{address}]"
    except ValueError:
        pass
    return address


@dataclass(frozen=True)
class Instance:
    id: str
    service: str
    address: str
    port: int
    tags: tuple[str, ...] = ()
    # Read-only so a snapshot shared by many threads cannot be changed by one of them;
    # left out of the hash because a mapping proxy is not hashable.
    meta: Mapping[str, str] = field(default_factory=dict, hash=False)
    weights: tuple[int, int] = (1, 1)  # (passing, warning), as Consul's Weights
    status: str = "passing"

    def __post_init__(self):
        if not isinstance(self.meta, MappingProxyType):
            object.__setattr__(self, "meta", MappingProxyType(dict(self.meta)))
        object.__setattr__(self, "tags", tuple(self.tags))
        object.__setattr__(self, "weights", tuple(self.weights))

    @property
    def base_url(self) -> str:
        return f"http://{host_for_url(self.address)}:{self.port}"


@dataclass(frozen=True)
class Snapshot:
    instances: tuple[Instance, ...] = ()
    index: int = 0
    updated_at: float = 0.0  # time.monotonic() of the last successful answer; 0 = never
    stale: bool = True
    error: str | None = None

    @property
    def loaded(self) -> bool:
        """True once one answer arrived: an empty `instances` is then a real answer."""
        return self.updated_at > 0

    @property
    def age(self) -> float:
        """Seconds since the last successful answer (infinite before the first)."""
        return time.monotonic() - self.updated_at if self.loaded else math.inf
