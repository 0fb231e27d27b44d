"""/v1/event/fire/:name and /v1/event/list against a real devconsul.

Relies on hashicorp/consul agent/event_endpoint.go (fire and list, the index
from uuidToUint64, blocking until the index differs) and agent/user_event.go
(validation messages, node/service/tag filters decide whether this agent keeps
the event).
"""

import base64

import pytest

from devconsul.events import index_of

pytestmark = pytest.mark.integration


def test_fire_answers_the_event_and_list_returns_it(client, api):
    index, events = client.event.list()
    assert (index, events) == ("1", [])  # non-zero even when empty
    fired = client.event.fire("deploy", "v42")
    assert fired == {
        "ID": fired["ID"],
        "Name": "deploy",
        "Payload": "djQy",
        "NodeFilter": "",
        "ServiceFilter": "",
        "TagFilter": "",
        "Version": 1,
        "LTime": 0,
    }
    client.event.fire("other")
    index, events = client.event.list(name="deploy")
    assert [(e["Name"], e["Payload"], e["LTime"]) for e in events] == [
        ("deploy", b"v42", 1)
    ]
    assert index == str(index_of(fired["ID"]))
    _, events = client.event.list()
    assert [e["Name"] for e in events] == ["deploy", "other"]
    assert events[1]["Payload"] is None  # no body: null, not ""


def test_filters_decide_whether_this_agent_keeps_the_event(client, api):
    api.register({"Name": "web", "Tags": ["blue"], "Port": 80})
    client.event.fire("for-me", node="^test-")
    client.event.fire("other-node", node="^elsewhere$")
    client.event.fire("for-web", service="we", tag="bl")
    client.event.fire("other-tag", service="web", tag="green")
    client.event.fire("other-service", service="db")
    _, events = client.event.list()
    assert [e["Name"] for e in events] == ["for-me", "for-web"]


@pytest.mark.parametrize(
    "params, message",
    [
        ({"tag": "x"}, "Cannot provide tag filter without service filter"),
        ({"node": "("}, "Invalid node filter: error parsing regexp"),
        ({"service": "[a"}, "Invalid service filter: error parsing regexp"),
    ],
)
def test_bad_filters_are_refused(api, params, message):
    r = api.put("/v1/event/fire/x", params=params)
    assert r.status_code == 500
    assert r.text.startswith(message)


def test_bad_requests(api):
    assert (
        api.put("/v1/event/fire/").status_code,
        api.put("/v1/event/fire/").text,
    ) == (
        400,
        "Missing name",
    )
    r = api.put("/v1/event/fire/big", data=b"x" * 600)
    assert (r.status_code, r.text) == (
        500,
        "user event exceeds configured limit of 512 bytes before encoding",
    )
    assert api.get("/v1/event/fire/x").status_code == 405
    assert api.get("/v1/event/list?index=x").status_code == 400
    assert api.put("/v1/event/fire/x?dc=elsewhere").status_code == 500


def test_list_blocks_until_a_matching_event(api):
    first = api.put("/v1/event/fire/wake", data=b"1").json()
    index = str(index_of(first["ID"]))
    pending = api.block("/v1/event/list?name=wake", index)
    assert pending.still_waiting(0.3)
    api.put("/v1/event/fire/wake", data=b"2")
    r = pending.response()
    assert [e["Payload"] for e in r.json()] == ["MQ==", "Mg=="]
    assert r.headers["X-Consul-Index"] != index
    # A wait that runs out answers the same index.
    r = api.get("/v1/event/list", params={"name": "none", "index": "1", "wait": "50ms"})
    assert (r.status_code, r.json(), r.headers["X-Consul-Index"]) == (200, [], "1")


def test_a_json_body_is_the_payload_as_sent(api):
    """agent/event_endpoint.go EventFire copies the body into the payload
    without decoding it, so no field of it is known or unknown."""
    body = b'{"Anything": [1, 2], "Unknown": true}'
    r = api.put("/v1/event/fire/raw", data=body)
    assert r.status_code == 200
    (event,) = api.get("/v1/event/list?name=raw").json()
    assert base64.b64decode(event["Payload"]) == body
