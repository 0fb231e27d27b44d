"""/v1/status/*: a dev agent is its own (and only) raft peer and leader."""

from devconsul.messages import Request, Response, json_response
from devconsul.queries import check_datacenter
from devconsul.routing import GET, Route


def _server_address(app) -> str:
    return f"{app.config.bind_addr}:8300"


def leader(app, req: Request) -> Response:
    check_datacenter(req, app.config.datacenter)
    return json_response(req, _server_address(app))


def peers(app, req: Request) -> Response:
    check_datacenter(req, app.config.datacenter)
    return json_response(req, [_server_address(app)])


ROUTES = [
    Route("/v1/status/leader", GET, leader),
    Route("/v1/status/peers", GET, peers),
]
