"""/v1/kv/<key>: get (single, ?recurse, ?keys), put (?flags, ?cas) and delete."""

from urllib.parse import urlencode

from devconsul import render
from devconsul.decode import parse_uint
from devconsul.errors import HTTPError
from devconsul.messages import Request, Response, json_response
from devconsul.queries import blocking_read, check_datacenter
from devconsul.routing import Route
from devconsul.store import KVEntry

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
    listing = req.has("recurse") or req.has("keys")
    if not key and not listing:
        raise HTTPError(400, "Missing key name")
    if req.has("keys"):
        build, index_fn = (
            (lambda: _keys(req, store, key)),
            (lambda: store.kv_prefix_index(key)),
        )
    elif req.has("recurse"):
        build, index_fn = (
            (lambda: store.kv_list(key)),
            (lambda: store.kv_prefix_index(key)),
        )
    else:
        build, index_fn = (lambda: store.kv.get(key)), (lambda: store.kv_key_index(key))

    def respond(data, headers):
        if req.has("keys"):
            if not data and key:
                return _not_found(headers)
            return json_response(req, data, headers=headers)
        if not data:
            return _not_found(headers)
        entries = data if isinstance(data, list) else [data]
        if req.has("raw") and not req.has("recurse"):
            raw_headers = {**headers, "X-Content-Type-Options": "nosniff"}
            return Response(200, entries[0].value, "text/plain", raw_headers)
        return json_response(
            req, [render.kv_entry(e) for e in entries], headers=headers
        )

    return blocking_read(app, req, index_fn, build, respond)


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
    if not req.arg:
        raise HTTPError(400, "Missing key name")
    _reject_conflicts(req)
    if req.has("acquire") or req.has("release"):
        session = req.param("acquire") or req.param("release")
        raise HTTPError(500, f'invalid session "{session}"')
    if len(req.body) > MAX_VALUE:
        raise HTTPError(
            413,
            f"Request body({len(req.body)} bytes) too large, max size: {MAX_VALUE} "
            f"bytes. See {_DOCS}.",
        )
    entry = KVEntry(req.arg, req.body, flags=_uint_param(req, "flags") or 0)
    ok = app.store.kv_put(entry, cas=_uint_param(req, "cas"))
    return json_response(req, ok)


def _reject_conflicts(req: Request) -> None:
    if sum(req.has(flag) for flag in ("cas", "acquire", "release")) > 1:
        params = sorted((k, v) for k, values in req.query.items() for v in values)
        raise HTTPError(400, "Conflicting flags: " + urlencode(params))


def delete(app, req: Request) -> Response:
    check_datacenter(req, app.config.datacenter)
    recurse = req.has("recurse")
    if not req.arg and not recurse:
        raise HTTPError(400, "Missing key name")
    ok = app.store.kv_delete(req.arg, recurse=recurse, cas=_uint_param(req, "cas"))
    return json_response(req, ok)


ROUTES = [Route("/v1/kv/", ("GET", "PUT", "DELETE"), endpoint, prefix=True)]
