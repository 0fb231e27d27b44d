"""Read-query plumbing shared by catalog, health, KV and internal/ui endpoints:
?dc, consistency modes, blocking (index/wait with jitter) and the index headers."""

import random
import threading
from collections import OrderedDict
from collections.abc import Callable

from devconsul.decode import parse_uint
from devconsul.durations import MINUTE, SECOND, parse_duration
from devconsul.errors import HTTPError
from devconsul.messages import Request, Response, json_response

DEFAULT_WAIT = 5 * MINUTE
MAX_WAIT = 10 * MINUTE


def require_local(dc: str | None, datacenter: str) -> None:
    """Consul forwards a request for another datacenter to that datacenter's
    servers; a lone dev agent knows none (structs.ErrNoDCPath)."""
    if dc and dc != datacenter:
        raise HTTPError(500, "No path to datacenter")


def check_datacenter(req: Request, datacenter: str) -> None:
    """?dc= on the endpoints where Consul reads it (``parseDC``)."""
    require_local(req.param("dc"), datacenter)


def names_peer(req: Request) -> bool:
    """?peer=NAME asks for what cluster peer NAME exported to us. A dev agent
    has no peerings, so nothing was imported from any peer: the answer is the
    empty one, with the usual index headers (Consul's state store simply finds
    no rows for that PeerName)."""
    return bool(req.param("peer"))


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


def query_meta(index: int, consistency: str = "") -> dict:
    """structs.QueryMeta as a leader fills it, for answers that embed it in
    their body (read-only transactions, operator usage)."""
    return {
        "Index": max(1, index),
        "LastContact": 0,
        "KnownLeader": True,
        "ConsistencyLevel": consistency,
        "NotModified": False,
        "Backend": 0,
        "ResultsFilteredByACLs": False,
    }


def consistency_level(req: Request) -> str:
    """QueryOptions.ConsistencyLevel(): what the request asked for."""
    if req.has("consistent"):
        return "consistent"
    return "stale" if req.has("stale") else "leader"


class AnswerCache:
    """Finished answers keyed by request and the store's global index.

    Any write moves the global index, so an entry can never be stale; repeated
    identical reads (many watchers of one service, polling clients) then cost
    a dictionary lookup instead of rendering and encoding again.
    """

    def __init__(self, size: int = 256):
        self._size = size
        self._entries: OrderedDict[tuple, Response] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def key(req: Request, store_index: int) -> tuple:
        query = sorted(
            (k, tuple(v)) for k, v in req.query.items() if k not in ("index", "wait")
        )
        # Method and body too: a POST read (discovery-chain overrides) differs
        # from the GET of the same path.
        return req.method, req.path, tuple(query), req.body, store_index

    def get(self, key: tuple) -> Response | None:
        with self._lock:
            found = self._entries.get(key)
            if found is not None:
                self._entries.move_to_end(key)
            return found

    def put(self, key: tuple, response: Response) -> None:
        with self._lock:
            self._entries[key] = response
            if len(self._entries) > self._size:
                self._entries.popitem(last=False)


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
        key = app.answers.key(req, store.index)
        cached = app.answers.get(key)
        if cached is not None:
            return cached
        current = index_fn()
        data = build()
    headers = meta_headers(current)
    if respond:
        answer = respond(data, headers)
    else:
        answer = json_response(req, data, headers=headers)
    app.answers.put(key, answer)
    return answer
