"""/v1/coordinate/*: network coordinates (agent/coordinate_endpoint.go).

A lone dev agent has no peers to measure, so its own coordinate stays at
Vivaldi's origin; coordinates sent to /v1/coordinate/update for catalog nodes
are stored at once (Consul batches them every few seconds) and leave with the
node.
"""

import math

from devconsul import schemas, selfinfo
from devconsul.decode import Fields, field_type_error
from devconsul.errors import HTTPError
from devconsul.messages import Request, Response, empty_response, json_response
from devconsul.queries import blocking_read, check_datacenter
from devconsul.routing import GET, PUT, Route
from devconsul.store import COORDINATES, named


def _all(app) -> dict[tuple[str, str], dict]:
    return {(app.agent.node, ""): selfinfo.coordinate(), **app.store.coordinates}


def _rows(app, req: Request, node: str | None = None) -> list[dict]:
    """structs.Coordinate rows sorted by node, narrowed by ?segment= if given."""
    segment = req.param("segment")
    # Consul's coordinates table indexes the node name lowercased.
    on_node = named(node) if node is not None else None
    return [
        {"Node": n, "Segment": s, "Coord": coord}
        for (n, s), coord in sorted(_all(app).items())
        if (on_node is None or on_node(n)) and (segment is None or s == segment)
    ]


def datacenters(app, req: Request) -> Response:
    own = {"Node": app.agent.node, "Segment": "", "Coord": selfinfo.coordinate()}
    return json_response(
        req,
        [{"Datacenter": app.config.datacenter, "AreaID": "wan", "Coordinates": [own]}],
    )


def nodes(app, req: Request) -> Response:
    return blocking_read(
        app, req, lambda: app.store.table_index[COORDINATES], lambda: _rows(app, req)
    )


def node(app, req: Request) -> Response:
    def respond(rows, headers):
        if not rows:
            return Response(404, b"", None, headers)
        return json_response(req, rows, headers=headers)

    return blocking_read(
        app,
        req,
        lambda: app.store.table_index[COORDINATES],
        lambda: _rows(app, req, req.arg),
        respond,
    )


def update(app, req: Request) -> Response:
    fields = Fields(
        req.json(), "structs.CoordinateUpdateRequest", schemas.COORDINATE_UPDATE
    )
    # The body's Datacenter is overwritten by ?dc or the agent's (parseDC).
    check_datacenter(req, app.config.datacenter)
    coord = _coordinate(fields.obj("Coord"))
    app.store.put_coordinate(fields.str("Node"), fields.str("Segment"), coord)
    return empty_response()


def _number(value, field: str) -> float:
    if value is None:
        return 0.0
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise field_type_error(value, f"Coordinate.Coord.{field}", "float64")
    return float(value)


def _coordinate(raw: dict | None) -> dict:
    """A valid coordinate of our dimensionality, or Consul's error (a missing
    Coord, NaN or infinity is invalid; another dimensionality incompatible)."""
    fields = Fields(raw, "coordinate.Coordinate", schemas.COORDINATE)
    vec = fields.raw("Vec") or []
    if not isinstance(vec, list):
        raise field_type_error(vec, "Coordinate.Coord.Vec", "[]float64")
    coord = {
        "Vec": [_number(x, "Vec") for x in vec],
        **{k: _number(fields.raw(k), k) for k in ("Error", "Adjustment", "Height")},
    }
    numbers = [*coord["Vec"], coord["Error"], coord["Adjustment"], coord["Height"]]
    if raw is None or not all(math.isfinite(x) for x in numbers):
        raise HTTPError(500, "invalid coordinate")
    if len(vec) != selfinfo.DIMENSIONS:
        raise HTTPError(500, "incompatible coordinate")
    return coord


ROUTES = [
    Route("/v1/coordinate/datacenters", GET, datacenters),
    Route("/v1/coordinate/nodes", GET, nodes),
    Route("/v1/coordinate/node/", GET, node, prefix=True),
    Route("/v1/coordinate/update", PUT, update),
]
