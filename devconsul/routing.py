"""The route table: exact paths and prefixes (whose remainder is the path argument),
each with its allowed methods, as Consul registers its endpoints."""

from collections.abc import Callable
from dataclasses import dataclass

from devconsul.errors import HTTPError

GET, PUT, POST = ("GET",), ("PUT",), ("POST",)


@dataclass(frozen=True)
class Route:
    path: str
    methods: tuple[str, ...]
    handler: Callable
    prefix: bool = False

    @property
    def allow(self) -> str:
        return ",".join(("OPTIONS", *self.methods))


class Router:
    def __init__(self, routes: list[Route]):
        self._exact = {r.path: r for r in routes if not r.prefix}
        # Longest prefix first, so /v1/agent/service/register beats /v1/agent/service/.
        self._prefixes = sorted(
            (r for r in routes if r.prefix), key=lambda r: len(r.path), reverse=True
        )

    def match(self, path: str) -> tuple[Route, str] | None:
        route = self._exact.get(path)
        if route:
            return route, ""
        for route in self._prefixes:
            if path.startswith(route.path):
                return route, path[len(route.path) :]
        return None


def path_arg(req, missing: str) -> str:
    """The name a prefix route's path ends with. Consul refuses an empty one
    with a 400 of the endpoint's own wording (`missing`) rather than looking
    up the name "" and answering an empty result."""
    if not req.arg:
        raise HTTPError(400, missing)
    return req.arg


def check_method(route: Route, method: str) -> None:
    if method not in route.methods:
        raise HTTPError(
            405, f"method {method} not allowed", headers={"Allow": route.allow}
        )
