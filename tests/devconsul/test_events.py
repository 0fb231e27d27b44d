"""devconsul.events: filters, index and the ring (agent/user_event.go,
agent/event_endpoint.go in hashicorp/consul)."""

import pytest

from devconsul.events import BUFFER, UserEvent, UserEvents, accepts, index_of


def test_index_xors_the_uuid_halves():
    assert index_of("00000000-0000-0001-0000-000000000003") == 1 ^ 3


@pytest.mark.parametrize(
    "filters, kept",
    [
        ({}, True),
        ({"node_filter": "^n"}, True),
        ({"node_filter": "x$"}, False),
        ({"service_filter": "web"}, True),
        ({"service_filter": "web", "tag_filter": "^v2$"}, True),
        ({"service_filter": "web", "tag_filter": "v3"}, False),
        ({"service_filter": "db"}, False),
    ],
)
def test_accepts(filters, kept):
    event = UserEvent("id", "e", **filters)
    assert accepts(event, "node-1", {"web": ["v1", "v2"]}) is kept


def test_the_ring_keeps_the_newest_events():
    events = UserEvents()
    for i in range(BUFFER + 2):
        events.fire(UserEvent("", f"e{i}"), "n", {})
    found, index = events.list("", 0, 0)
    assert [e.name for e in found][:2] == ["e2", "e3"]
    assert len(found) == BUFFER
    assert index == index_of(found[-1].id)
    assert found[-1].ltime == BUFFER + 2
