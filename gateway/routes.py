"""The route table: which service claims which path prefix. Pure and immutable.

Services claim a prefix with the Consul Meta key `gateway_prefix` (e.g. `/users`); the
gateway serves it under `/api` (`/api/users/42` -> `/users/42`). Matching is by whole
path segments, longest prefix first. When two services claim the same prefix the
alphabetically first wins, deterministically in every gateway process, and the conflict is
reported in `conflicts` (shown on /admin/instances).
"""

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from discovery.instances import Instance

__all__ = ["Route", "RouteTable", "build_table", "claimed_prefixes", "valid_prefix"]

_PREFIX = re.compile(r"(/[A-Za-z0-9_~-][A-Za-z0-9._~-]*)+")


@dataclass(frozen=True)
class Route:
    prefix: str
    service: str


@dataclass(frozen=True)
class RouteTable:
    routes: Mapping[str, Route] = field(default_factory=dict)
    conflicts: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def match(self, path: str) -> Route | None:
        """The route whose prefix is the longest whole-segment prefix of `path`."""
        candidate = path.rstrip("/") or "/"
        while candidate:
            route = self.routes.get(candidate)
            if route is not None:
                return route
            candidate = candidate[: candidate.rfind("/")]
        return None

    def prefix_of(self, service: str) -> str | None:
        for route in self.routes.values():
            if route.service == service:
                return route.prefix
        return None


def valid_prefix(prefix: str) -> bool:
    return bool(_PREFIX.fullmatch(prefix)) and not any(
        segment in (".", "..") for segment in prefix.split("/")
    )


def claimed_prefixes(instances: Iterable[Instance]) -> set[str]:
    """Every valid `gateway_prefix` any instance of a service declares."""
    claims = set()
    for instance in instances:
        prefix = (instance.meta.get("gateway_prefix") or "").rstrip("/")
        if valid_prefix(prefix):
            claims.add(prefix)
    return claims


def build_table(claims: Mapping[str, Iterable[str]]) -> RouteTable:
    """Table from {service: prefixes it claims}."""
    claimants: dict[str, list[str]] = {}
    for service, prefixes in claims.items():
        for prefix in prefixes:
            claimants.setdefault(prefix, []).append(service)
    routes, conflicts = {}, {}
    for prefix, services in claimants.items():
        services.sort()
        routes[prefix] = Route(prefix, services[0])
        if len(services) > 1:
            conflicts[prefix] = tuple(services)
    return RouteTable(routes, conflicts)
