"""/v1/coordinate/* against a real devconsul.

Relies on hashicorp/consul agent/coordinate_endpoint.go (shapes, 404 for a node
without coordinates, ?segment), agent/consul/coordinate_endpoint.go (Update's
"invalid coordinate" / "incompatible coordinate", ListNodes blocking on the
coordinates table) and the state store dropping updates for unknown nodes.
"""

import pytest

pytestmark = pytest.mark.integration

ORIGIN = {"Vec": [0.0] * 8, "Error": 1.5, "Adjustment": 0.0, "Height": 1e-05}


def _coord(x: float) -> dict:
    return {"Vec": [x] + [0.0] * 7, "Error": 0.2, "Adjustment": 0.1, "Height": 0.01}


def test_a_lone_agent_sits_at_the_origin(client):
    assert client.coordinate.datacenters() == [
        {
            "Datacenter": "dc1",
            "AreaID": "wan",
            "Coordinates": [{"Node": "test-node", "Segment": "", "Coord": ORIGIN}],
        }
    ]
    index, rows = client.coordinate.nodes()
    assert rows == [{"Node": "test-node", "Segment": "", "Coord": ORIGIN}]
    assert int(index) >= 1
    _, rows = client.coordinate.node("test-node")
    assert rows == [{"Node": "test-node", "Segment": "", "Coord": ORIGIN}]


def test_update_stores_a_catalog_nodes_coordinate_and_wakes_watchers(client, api):
    api.put("/v1/catalog/register", json={"Node": "db-1", "Address": "10.0.0.9"})
    index, _ = client.coordinate.nodes()
    pending = api.block("/v1/coordinate/nodes", index)
    assert client.coordinate.update("db-1", _coord(0.5)) is True
    r = pending.response()
    assert int(r.headers["X-Consul-Index"]) > int(index)
    assert r.json()[0] == {"Node": "db-1", "Segment": "", "Coord": _coord(0.5)}
    assert [row["Node"] for row in r.json()] == ["db-1", "test-node"]
    # An unknown node's update is accepted and dropped, as Consul does.
    assert client.coordinate.update("ghost", _coord(1.0)) is True
    r = api.get("/v1/coordinate/node/ghost")
    assert (r.status_code, r.content) == (404, b"")
    assert "X-Consul-Index" in r.headers
    # Deregistering the node takes its coordinate along.
    api.put("/v1/catalog/deregister", json={"Node": "db-1"})
    assert api.get("/v1/coordinate/node/db-1").status_code == 404
    assert api.get("/v1/coordinate/nodes?segment=alpha").json() == []


@pytest.mark.parametrize(
    "body, status, text",
    [
        ({"Node": "test-node"}, 500, "invalid coordinate"),
        (
            {"Node": "test-node", "Coord": {"Vec": [0.0, 1.0]}},
            500,
            "incompatible coordinate",
        ),
        (
            {"Node": "test-node", "Coord": {"Vec": ["x"]}},
            400,
            "Request decode failed: ",
        ),
        ([], 400, "Request decode failed: json: cannot unmarshal array"),
        (
            {"Node": "test-node", "Coord": {"Vec": "x"}},
            400,
            (
                "Request decode failed: json: cannot unmarshal string into Go struct "
                "field Coordinate.Coord.Vec of type []float64"
            ),
        ),
        (
            {"Node": "test-node", "Coord": {"Vec": [0.0] * 8, "Height": "x"}},
            400,
            (
                "Request decode failed: json: cannot unmarshal string into Go struct "
                "field Coordinate.Coord.Height of type float64"
            ),
        ),
    ],
)
def test_bad_updates(api, body, status, text):
    r = api.put("/v1/coordinate/update", json=body)
    assert r.status_code == status
    assert r.text.startswith(text)


def test_nan_is_not_json(api):
    body = b'{"Node": "test-node", "Coord": {"Vec": [NaN,0,0,0,0,0,0,0]}}'
    r = api.put("/v1/coordinate/update", data=body)
    assert (r.status_code, r.text) == (
        400,
        "Request decode failed: invalid character 'N' looking for beginning of value",
    )
    assert api.get("/v1/coordinate/update").status_code == 405


@pytest.mark.parametrize(
    "body, field",
    [
        ({"Node": "test-node", "Coord": _coord(0.1), "Nodename": "x"}, "Nodename"),
        ({"Node": "test-node", "Coord": {**_coord(0.1), "Spin": 1}}, "Spin"),
    ],
)
def test_unknown_fields_are_refused(api, body, field):
    """agent/coordinate_endpoint.go CoordinateUpdate: decodeBody (unknown
    fields disallowed) into structs.CoordinateUpdateRequest, whose Coord is
    serf's coordinate.Coordinate (Vec, Error, Adjustment, Height)."""
    r = api.put("/v1/coordinate/update", json=body)
    assert (r.status_code, r.text) == (
        400,
        f'Request decode failed: json: unknown field "{field}"',
    )
    # WriteRequest's Token is a field of the request, so it is no stranger.
    fine = {"Node": "test-node", "Coord": _coord(0.1), "Token": ""}
    assert api.put("/v1/coordinate/update", json=fine).status_code == 200


def test_the_agents_coordinate_is_the_one_in_agent_self(client):
    """/v1/agent/self's Coord and the agent's row in /v1/coordinate/nodes
    describe the same node, so they are the same value."""
    (own,) = [r for r in client.coordinate.nodes()[1] if r["Node"] == "test-node"]
    assert client.agent.self()["Coord"] == own["Coord"] == ORIGIN
