"""/v1/config: config entries -- put (with ?cas), get, list and delete
(agent/config_endpoint.go), blocking on the config-entries table."""

from devconsul import config_entries
from devconsul.decode import go_parse_uint, worded
from devconsul.errors import HTTPError
from devconsul.messages import Request, Response, json_response
from devconsul.queries import blocking_read, check_datacenter
from devconsul.routing import PUT, Route
from devconsul.store import CONFIG


def _cas(req: Request) -> int | None:
    """?cas=: a parse failure is a plain error in Consul (500)."""
    raw = req.param("cas")
    if not raw:
        return None
    try:
        return go_parse_uint(raw)
    except ValueError as exc:
        raise HTTPError(500, str(exc)) from None


def apply(app, req: Request) -> Response:
    check_datacenter(req, app.config.datacenter)
    with worded(config_entries.DECODING_FAILED):
        entry = config_entries.decode(req.json())
    config_entries.validate(entry)
    return json_response(req, app.store.config_put(entry, _cas(req)))


def entries(app, req: Request) -> Response:
    kind, _, name = req.arg.partition("/")
    if req.method == "DELETE":
        return _delete(app, req, kind, name)
    if "/" not in req.arg:
        return _list(app, req, kind)
    return _get(app, req, kind, name)


def _known_kind(kind: str, status: int) -> None:
    try:
        config_entries.check_kind(kind)
    except ValueError as exc:
        raise HTTPError(status, str(exc)) from None


def _get(app, req: Request, kind: str, name: str) -> Response:
    _known_kind(kind, 500)
    store = app.store

    def respond(entry, headers):
        if entry is None:
            raise HTTPError(
                404, f'Config entry not found for "{kind}" / "{name}"', headers
            )
        return json_response(req, entry, headers=headers)

    return blocking_read(
        app,
        req,
        lambda: store.table_index[CONFIG],
        lambda: store.config_entries.get((kind, name)),
        respond,
    )


def _list(app, req: Request, kind: str) -> Response:
    if kind:
        _known_kind(kind, 500)
    store = app.store

    def build():
        return [
            entry
            for (k, _), entry in sorted(store.config_entries.items())
            if not kind or k == kind
        ]

    return blocking_read(app, req, lambda: store.table_index[CONFIG], build)


def _delete(app, req: Request, kind: str, name: str) -> Response:
    check_datacenter(req, app.config.datacenter)
    if "/" not in req.arg:
        raise HTTPError(404, "Must provide both a kind and name to delete")
    _known_kind(kind, 400)
    cas = _cas(req)
    deleted = app.store.config_delete(kind, name, cas)
    # Only a CAS delete answers whether it deleted (backwards compatibility).
    return json_response(req, deleted if cas is not None else {})


ROUTES = [
    Route("/v1/config", PUT, apply),
    Route("/v1/config/", ("GET", "DELETE"), entries, prefix=True),
]
