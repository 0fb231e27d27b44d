"""Request bodies as the connection feeds them and the handler reads them; the error shape."""

import asyncio
import json

import pytest

from gateway.messages import HIGH_WATER, Body, BodyError, json_error, status_line


class Connection:
    """What a Body asks of its connection, recorded."""

    def __init__(self):
        self.paused = False
        self.written: list[bytes] = []

    def pause_reading(self):
        self.paused = True

    def resume_reading(self):
        self.paused = False

    def write(self, data):
        self.written.append(data)


def run(coroutine):
    return asyncio.run(coroutine)


def test_a_body_is_read_in_order_as_it_arrives():
    async def scenario():
        body = Body(Connection(), 6, False, 100)
        reading = asyncio.ensure_future(body.read())
        for part in (b"ab", b"cd", b"ef"):
            await asyncio.sleep(0)
            body.feed(part)
        body.finish()
        return await reading

    assert run(scenario()) == b"abcdef"


@pytest.mark.parametrize(
    ("length", "chunked", "feed"),
    [
        (101, False, []),  # announced too large: refused before any byte
        (None, True, [b"x" * 60, b"x" * 60]),  # chunked, found too large
    ],
)
def test_bodies_over_the_limit_are_413(length, chunked, feed):
    """With the services' code for a body over their own limit (chassis.responses)."""

    async def scenario():
        body = Body(Connection(), length, chunked, 100)
        for part in feed:
            body.feed(part)
        with pytest.raises(BodyError) as caught:
            await body.read()
        return caught.value.status, caught.value.code

    assert run(scenario()) == (413, "request_entity_too_large")


def test_a_failed_body_raises_for_its_reader():
    async def scenario():
        body = Body(Connection(), 10, False, 100)
        reading = asyncio.ensure_future(body.read())
        await asyncio.sleep(0)
        body.fail(408, "request_timeout", "too slow")
        with pytest.raises(BodyError, match="too slow"):
            await reading

    run(scenario())


def test_past_the_high_water_mark_the_client_is_not_read_until_the_reader_catches_up():
    async def scenario():
        connection = Connection()
        body = Body(connection, None, True, 10 * HIGH_WATER)
        body.feed(b"x" * (HIGH_WATER + 1))
        assert connection.paused
        chunks = body.chunks()
        await chunks.__anext__()
        assert not connection.paused
        await chunks.aclose()

    run(scenario())


def test_expect_100_continue_is_written_when_the_body_is_first_awaited():
    async def scenario():
        connection = Connection()
        body = Body(connection, 2, False, 100)
        body.expect_continue = True
        reading = asyncio.ensure_future(body.read())
        await asyncio.sleep(0)
        assert connection.written == [b"HTTP/1.1 100 Continue\r\n\r\n"]
        body.feed(b"hi")
        body.finish()
        return await reading

    assert run(scenario()) == b"hi"


def test_no_body_is_complete_at_once():
    body = Body(Connection(), None, False, 100)
    assert body.complete and not body.expected
    assert run(body.read()) == b""


def test_json_error_shape_and_status_lines():
    response = json_error(503, "x", "y", {"a": 1}, [("Retry-After", "1")])
    assert json.loads(response.body) == {
        "error": {"code": "x", "message": "y", "details": {"a": 1}}
    }
    assert response.has("retry-after") and response.has("Content-Type")
    assert status_line(431) == b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
    assert status_line(599) == b"HTTP/1.1 599 Unknown\r\n"
