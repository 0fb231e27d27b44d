"""What the gateway's server and its handlers exchange: a parsed request with a body that
arrives over time, and a response to write (bytes, or a stream of them).

Plain objects, no framework: the server (gateway.server) fills requests in and writes
responses out; the app (gateway.app) turns one into the other.
"""

import asyncio
import json
from collections import deque
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus

from gateway.upstream import RequestBody

__all__ = [
    "NO_BODY",
    "Body",
    "BodyError",
    "Request",
    "Response",
    "json_error",
    "method_not_allowed",
    "status_line",
]

HIGH_WATER = 256 * 1024  # body bytes buffered before the client is not read any more

_STATUS_LINES = {
    s.value: f"HTTP/1.1 {s.value} {s.phrase}\r\n".encode() for s in HTTPStatus
}


def status_line(status: int) -> bytes:
    return _STATUS_LINES.get(status) or f"HTTP/1.1 {status} Unknown\r\n".encode()


class BodyError(Exception):
    """The request body cannot be had: too large (413), too slow (408), client gone (400)."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class Body(RequestBody):
    """A request body as the connection receives it, read once by the handler.

    Fed by the connection (`feed`, `finish`, `fail`); read with `read()` (all of it, for
    bodies small enough to keep for retries) or `chunks()` (as it arrives, for large
    ones). Past HIGH_WATER buffered bytes the connection stops reading the client, so a
    fast client cannot fill the gateway's memory with a body nobody reads yet.
    """

    # Defaults at class level: one body is made per request, most keep them.
    expect_continue = False
    received = 0
    _buffered = 0
    _error: BodyError | None = None
    _waiter: asyncio.Future | None = None

    def __init__(self, connection, length: int | None, chunked: bool, limit: int):
        self.connection = connection
        self.length = length  # Content-Length; None when chunked
        self.limit = limit
        self.expected = chunked or bool(length)
        self.complete = not self.expected
        self._chunks: deque[bytes] = deque()

    # -- fed by the connection ----------------------------------------------------------

    def feed(self, data: bytes) -> None:
        self.received += len(data)
        if self.received > self.limit:
            self.fail(*self._too_large())
            return
        self._chunks.append(data)
        self._buffered += len(data)
        if self._buffered > HIGH_WATER:
            self.connection.pause_reading()
        self._wake()

    def finish(self) -> None:
        self.complete = True
        self._wake()

    def fail(self, status: int, code: str, message: str) -> None:
        if self._error is None and not self.complete:
            self._error = BodyError(status, code, message)
            self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    # -- read by the handler ------------------------------------------------------------

    def check_length(self) -> None:
        """413 at once when the announced Content-Length is over the limit."""
        if self.length is not None and self.length > self.limit:
            raise BodyError(*self._too_large())

    def _too_large(self) -> tuple[int, str, str]:
        """The 413 of a body over the limit: announced, or found so as it arrives. Its code
        is the services' for their own limit (Werkzeug's name for the status, through
        chassis.responses): one code for a body too large, whoever refuses it."""
        return 413, "request_entity_too_large", f"request body over {self.limit} bytes"

    async def read(self) -> bytes:
        return b"".join([chunk async for chunk in self.chunks()])

    async def chunks(self) -> AsyncIterator[bytes]:
        self.check_length()
        while True:
            if self._error is not None:
                raise self._error
            if self._chunks:
                data = self._chunks.popleft()
                self._buffered -= len(data)
                if self._buffered <= HIGH_WATER:
                    self.connection.resume_reading()
                yield data
            elif self.complete:
                return
            else:
                await self._more()

    async def _more(self) -> None:
        if self.expect_continue:
            self.expect_continue = False  # the client waits for this before sending
            self.connection.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        self.connection.resume_reading()
        self._waiter = asyncio.get_running_loop().create_future()
        try:
            await self._waiter
        finally:
            self._waiter = None


# The body of every request that has none (most): complete from the start, so nothing
# feeds, fails or reads it, and one instance serves them all.
NO_BODY = Body(None, None, False, 0)


@dataclass(slots=True)
class Request:
    method: str
    target: str  # the raw request target, as the client sent it
    version: str  # "1.1" or "1.0"
    headers: list[tuple[str, str]]
    names: dict[str, str]  # lower-cased header name -> its (last) value
    client_addr: str
    body: Body
    keep_alive: bool = True


@dataclass(slots=True)
class Response:
    """`body` bytes, or `stream` (an async iterator of bytes, `length` long when known)."""

    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    stream: AsyncIterator[bytes] | None = None
    length: int | None = None

    def has(self, name: str) -> bool:
        lower, size = name.lower(), len(name)
        for n, _ in self.headers:  # a loop: asked on every answer, cheaper than any()
            if len(n) == size and n.lower() == lower:
                return True
        return False


def method_not_allowed(method: str, allowed: Sequence[str]) -> Response:
    """405 for a path that answers only `allowed` methods, naming them in Allow."""
    return json_error(
        405,
        "method_not_allowed",
        f"{method} is not allowed here",
        headers=[("Allow", ", ".join(allowed))],
    )


def json_error(
    status: int,
    code: str,
    message: str,
    details=None,
    headers: Sequence[tuple[str, str]] = (),
) -> Response:
    """The shared error shape: {"error": {"code", "message", "details"}}."""
    body = {"error": {"code": code, "message": message, "details": details}}
    return Response(
        status,
        [("Content-Type", "application/json"), *headers],
        json.dumps(body).encode(),
    )
