"""/v1/session/*: create, destroy, renew and the blocking reads (info, node, list).

Status codes and texts as agent/session_endpoint.go: an empty path argument is a
400, an unknown ID reads as ``[]`` (never ``null``), renewing one is a 404,
destroying one is a harmless ``true``. Every read blocks on the sessions table's
index, the one Consul reports for all three.
"""

from devconsul import render
from devconsul.errors import HTTPError
from devconsul.messages import Request, Response, json_response
from devconsul.queries import blocking_read, check_datacenter, parse_blocking
from devconsul.routing import GET, PUT, Route, path_arg
from devconsul.sessions import parse_create
from devconsul.store import SESSIONS, named


def _session_id(req: Request) -> str:
    # Consul indexes session IDs lowercased; its UUIDs are lowercase.
    return path_arg(req, "Missing session").lower()


def create(app, req: Request) -> Response:
    check_datacenter(req, app.config.datacenter)
    session = parse_create(req.body, app.agent.node)
    return json_response(req, {"ID": app.agent.sessions.create(session)})


def destroy(app, req: Request) -> Response:
    check_datacenter(req, app.config.datacenter)
    app.agent.sessions.destroy(_session_id(req))
    return json_response(req, True)


def renew(app, req: Request) -> Response:
    check_datacenter(req, app.config.datacenter)
    parse_blocking(req)  # Consul parses (and rejects bad) query options here too
    session_id = _session_id(req)
    session = app.agent.sessions.renew(session_id)
    if session is None:
        raise HTTPError(404, f"Session id '{session_id}' not found")
    return json_response(req, [render.session(session)])


def _sessions_read(app, req: Request, keep) -> Response:
    store = app.store
    return blocking_read(
        app,
        req,
        lambda: store.table_index[SESSIONS],
        lambda: [
            render.session(s) for _, s in sorted(store.sessions.items()) if keep(s)
        ],
    )


def info(app, req: Request) -> Response:
    session_id = _session_id(req)
    return _sessions_read(app, req, lambda s: s.id == session_id)


def node(app, req: Request) -> Response:
    # Consul's sessions table indexes the node name lowercased.
    on_node = named(path_arg(req, "Missing node name"))
    return _sessions_read(app, req, lambda s: on_node(s.node))


def list_all(app, req: Request) -> Response:
    return _sessions_read(app, req, lambda s: True)


ROUTES = [
    Route("/v1/session/create", PUT, create),
    Route("/v1/session/destroy/", PUT, destroy, prefix=True),
    Route("/v1/session/renew/", PUT, renew, prefix=True),
    Route("/v1/session/info/", GET, info, prefix=True),
    Route("/v1/session/node/", GET, node, prefix=True),
    Route("/v1/session/list", GET, list_all),
]
