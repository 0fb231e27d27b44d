"""/v1/status/*: a dev agent is its own (and only) raft peer and leader."""

from devconsul.messages import Request, Response, json_response
from devconsul.queries import check_datacenter
from devconsul.routing import GET, Route
from devconsul.selfinfo import server_address


def leader(app, req: Request) -> Response:
    check_datacenter(req, app.config.datacenter)
    return json_response(req, server_address(app.config))


def peers(app, req: Request) -> Response:
    check_datacenter(req, app.config.datacenter)
    return json_response(req, [server_address(app.config)])


ROUTES = [
    Route("/v1/status/leader", GET, leader),
    Route("/v1/status/peers", GET, peers),
]
