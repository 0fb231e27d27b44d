"""Read-query plumbing shared by catalog, health, KV and internal/ui endpoints:
?dc, consistency modes, blocking (index/wait with jitter) and the index headers."""

import random
from collections.abc import Callable

from devconsul.decode import parse_uint
from devconsul.durations import MINUTE, SECOND, parse_duration
from devconsul.errors import HTTPError
from devconsul.messages import Request, Response, json_response

DEFAULT_WAIT = 5 * MINUTE
MAX_WAIT = 10 * MINUTE


def check_datacenter(req: Request, datacenter: str) -> None:
    dc = req.param("dc")
    if dc and dc != datacenter:
        raise HTTPError(500, "No path to datacenter")


def parse_blocking(req: Request) -> tuple[int, float]:
    """(index, timeout in seconds); index 0 means answer at once."""
    if req.has("stale") and req.has("consistent"):
        raise HTTPError(
            400, "Cannot specify ?stale with ?consistent, conflicting semantics."
        )
    wait_ns = DEFAULT_WAIT
    if req.param("wait"):
        try:
            wait_ns = parse_duration(req.param("wait"))
        except ValueError:
            raise HTTPError(400, "Invalid wait time") from None
    index = 0
    if req.param("index"):
        try:
            index = parse_uint(req.param("index"))
        except ValueError:
            raise HTTPError(400, "Invalid index") from None
    wait_ns = min(wait_ns if wait_ns > 0 else DEFAULT_WAIT, MAX_WAIT)
    # Jitter spreads the timeouts of many watchers that started together.
    timeout = wait_ns / SECOND
    return index, timeout + random.uniform(0, timeout / 16)


def meta_headers(index: int) -> dict[str, str]:
    return {
        "X-Consul-Index": str(max(1, index)),
        "X-Consul-KnownLeader": "true",
        "X-Consul-LastContact": "0",
    }


def blocking_read(
    app,
    req: Request,
    index_fn: Callable[[], int],
    build: Callable[[], object],
    respond: Callable[[object, dict], Response] | None = None,
) -> Response:
    """Run a read with Consul's blocking semantics and query metadata headers.

    `index_fn` is cheap (called on every store change while blocked); `build`
    makes the answer under the store lock so index and data agree.
    """
    check_datacenter(req, app.config.datacenter)
    index, timeout = parse_blocking(req)
    store = app.store
    if index:
        # Differs, not exceeds: a client holding an index from before an agent
        # restart (greater than ours) gets an answer at once and resyncs.
        store.wait_until(lambda: max(1, index_fn()) != index, timeout)
    with store.lock:
        current = index_fn()
        data = build()
    headers = meta_headers(current)
    if respond:
        return respond(data, headers)
    return json_response(req, data, headers=headers)
