"""The route table: exact paths and prefixes (whose remainder is the path argument),
each with its allowed methods, as Consul registers its endpoints."""

from collections.abc import Callable, Iterable
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
    def __init__(self, routes: list[Route], mounts: Iterable[str] = ()):
        """`mounts` are prefix patterns served outside the table (the UI's
        "/ui/"): they take part in the canonical-path redirects only."""
        self._exact = {r.path: r for r in routes if not r.prefix}
        # Longest prefix first, so /v1/agent/service/register beats /v1/agent/service/.
        self._prefixes = sorted(
            (r for r in routes if r.prefix), key=lambda r: len(r.path), reverse=True
        )
        self._prefix_paths = {r.path for r in self._prefixes} | set(mounts)

    def canonical(self, path: str) -> str:
        """Where Consul's router, Go's http.ServeMux, sends a request for `path`.

        Consul 1.17 is built with Go < 1.22, whose ServeMux cleans the decoded
        path (cleanPath) and, when only a prefix pattern ("/v1/kv/") exists
        for it, adds the slash (redirectToPathSlash). A request for any other
        path gets a 301 to this one, whatever its method, and no handler runs:
        a ``PUT /v1/kv/a//b`` stores nothing.
        """
        path = clean_path(path)
        if path not in self._exact and path + "/" in self._prefix_paths:
            path += "/"
        return path

    def match(self, path: str) -> tuple[Route, str] | None:
        route = self._exact.get(path)
        if route:
            return route, ""
        for route in self._prefixes:
            if path.startswith(route.path):
                return route, path[len(route.path) :]
        return None


def clean_path(path: str) -> str:
    """Go's net/http cleanPath: path.Clean (no empty, "." or ".." segments,
    ".." stopping at the root), keeping a trailing slash."""
    segments: list[str] = []
    for segment in path.split("/"):
        if segment == "..":
            if segments:
                segments.pop()
        elif segment not in ("", "."):
            segments.append(segment)
    cleaned = "/" + "/".join(segments)
    if path.endswith("/") and cleaned != "/":
        cleaned += "/"
    return cleaned


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
