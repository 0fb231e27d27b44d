"""/v1/kv/<key>: get (single, ?recurse, ?keys), put (?flags, ?cas, ?acquire,
?release) and delete."""

from urllib.parse import urlencode

from devconsul import render
from devconsul.decode import parse_uint
from devconsul.errors import HTTPError
from devconsul.messages import Request, Response, json_response
from devconsul.queries import blocking_read, check_datacenter
from devconsul.routing import Route, path_arg
from devconsul.store import KVEntry, UnknownSession

MAX_VALUE = 512 * 1024
_DOCS = "https://developer.hashicorp.com/consul/docs/agent/config/config-files#kv_max_value_size"


def endpoint(app, req: Request) -> Response:
    handler = {"GET": read, "PUT": write, "DELETE": delete}[req.method]
    return handler(app, req)


def _not_found(headers: dict) -> Response:
    # Clients read X-Consul-Index on 404 too, so a missing key keeps the headers.
    return Response(404, b"", None, headers)


def read(app, req: Request) -> Response:
    key, store = req.arg, app.store
    if req.has("keys"):
        return _read_keys(app, req, key)
    if req.has("recurse"):
        return _read_entries(app, req, lambda: store.kv_list(key), key)
    if not key:
        raise HTTPError(400, "Missing key name")

    def single():
        entry = store.kv.get(key)
        return [entry] if entry else []

    return _read_entries(app, req, single, key, lambda: store.kv_key_index(key))


def _read_entries(app, req: Request, entries, prefix: str, index_fn=None):
    store = app.store

    def respond(found, headers):
        if not found:
            return _not_found(headers)
        if req.has("raw") and not req.has("recurse"):
            raw_headers = {**headers, "X-Content-Type-Options": "nosniff"}
            return Response(200, found[0].value, "text/plain", raw_headers)
        rows = [render.kv_entry(e) for e in found]
        return json_response(req, rows, headers=headers)

    index_fn = index_fn or (lambda: store.kv_prefix_index(prefix))
    return blocking_read(app, req, index_fn, entries, respond)


def _read_keys(app, req: Request, prefix: str) -> Response:
    store = app.store

    def respond(keys, headers):
        # An empty prefix lists the whole store: [] rather than 404.
        if not keys and prefix:
            return _not_found(headers)
        return json_response(req, keys, headers=headers)

    return blocking_read(
        app,
        req,
        lambda: store.kv_prefix_index(prefix),
        lambda: _keys(req, store, prefix),
        respond,
    )


def _keys(req: Request, store, prefix: str) -> list[str]:
    separator = req.param("separator") or req.param("seperator") or ""
    result: list[str] = []
    for entry in store.kv_list(prefix):
        name = entry.key
        if separator:
            cut = name.find(separator, len(prefix))
            if cut >= 0:
                name = name[: cut + len(separator)]
        if not result or result[-1] != name:
            result.append(name)
    return result


def _uint_param(req: Request, name: str) -> int | None:
    if not req.has(name):
        return None
    try:
        return parse_uint(req.param(name))
    except ValueError:
        raise HTTPError(400, f"Invalid {name} value: {req.param(name)!r}") from None


def write(app, req: Request) -> Response:
    check_datacenter(req, app.config.datacenter)
    path_arg(req, "Missing key name")
    _reject_conflicts(req, "cas", "acquire", "release")
    if len(req.body) > MAX_VALUE:
        raise HTTPError(
            413,
            f"Request body({len(req.body)} bytes) too large, max size: {MAX_VALUE} "
            f"bytes. See {_DOCS}.",
        )
    entry = KVEntry(req.arg, req.body, flags=_uint_param(req, "flags") or 0)
    if req.has("acquire"):
        return json_response(req, _acquire(app.store, entry, req.param("acquire")))
    if req.has("release"):
        session = _session_param(req.param("release"))
        return json_response(req, app.store.kv_unlock(entry, session))
    ok = app.store.kv_put(entry, cas=_uint_param(req, "cas"))
    return json_response(req, ok)


def _session_param(value: str) -> str:
    if not value:
        raise HTTPError(500, "missing session")
    # Session IDs are looked up lowercased, as Consul indexes them.
    return value.lower()


def _acquire(store, entry: KVEntry, session: str) -> bool:
    """Lock the key for the session (the value and flags are written too)."""
    try:
        return store.kv_lock(entry, session.lower())
    except UnknownSession:
        # Checked only after the lock-delay, as Consul does (kvsPreApply).
        _session_param(session)
        raise HTTPError(500, f'invalid session "{session}"') from None


def _reject_conflicts(req: Request, *flags: str) -> None:
    """Consul's conflictingFlags: more than one of `flags` is a 400 that
    echoes the whole query as Go's url.Values.Encode writes it (keys sorted,
    each key's values in the order sent), followed by a newline."""
    if sum(req.has(flag) for flag in flags) > 1:
        params = [(k, v) for k in sorted(req.query) for v in req.query[k]]
        raise HTTPError(400, f"Conflicting flags: {urlencode(params)}\n")


def delete(app, req: Request) -> Response:
    # Checked first, as Consul does: a recursive delete cannot be a CAS delete,
    # and ignoring ?cas would delete the whole subtree.
    _reject_conflicts(req, "recurse", "cas")
    check_datacenter(req, app.config.datacenter)
    recurse = req.has("recurse")
    if not req.arg and not recurse:
        raise HTTPError(400, "Missing key name")
    ok = app.store.kv_delete(req.arg, recurse=recurse, cas=_uint_param(req, "cas"))
    return json_response(req, ok)


ROUTES = [Route("/v1/kv/", ("GET", "PUT", "DELETE"), endpoint, prefix=True)]
