"""The gateway's HTTP/1.1 server on the event loop: one Protocol per client connection.

A connection holds a socket and a parser, never a thread, so slow and idle clients cost a
few hundred bytes each (a kept-alive one also keeps the task that served it, waiting:
about 1 KB more, until its keep-alive timeout). Its deadlines are its own -- ready-made asyncio servers do not bound
the time to receive a request (DESIGN.md):

- the head (request line and headers) must be complete within `header_timeout` from its
  first byte (from the connection's opening, for a new one): else 408 and the connection
  is closed (closed silently if no byte came);
- the body must be complete within `client_timeout` from the end of the head (408);
- a kept-alive connection with no request in flight is closed after `keepalive_timeout`;
- past `max_connections` open connections, a new one gets 503 at once and is closed.

Requests the parser (httptools: llhttp, strict) refuses -- both Content-Length and
Transfer-Encoding, two lengths, bad chunking, malformed header lines -- get a JSON 400 and
the connection is closed; limits give 414 (request line) and 431 (a header line, the
number of headers, a whole head). Pipelined requests are answered in order.
"""

import asyncio
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from email.utils import formatdate

import httptools

from gateway.deadline import Deadline
from gateway.flow import WriteFlow
from gateway.messages import (
    NO_BODY,
    Body,
    Request,
    Response,
    json_error,
    status_line,
)
from gateway.settings import GatewaySettings

__all__ = ["Server"]

log = logging.getLogger("gateway.server")

# Seconds a refused connection is read (and dropped) before closing.
TURN_AWAY_LINGER = 1.0
NO_BODY_STATUSES = frozenset({204, 304})


class _Refusal(Exception):
    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _uncounted(status: int, code: str) -> None:
    pass


class Server:
    """What the connections of one worker share: settings, the handler, the open set, and
    `refused(status, code)`, told of every request and connection refused here."""

    def __init__(
        self,
        settings: GatewaySettings,
        handle: Callable[[Request], Awaitable[Response]],
        served_by: str,
        refused: Callable[[int, str], None] = _uncounted,
    ):
        self.settings = settings
        self.handle = handle
        self.served_by = served_by
        self.refused = refused
        self.connections: set[Connection] = set()
        self.closing = False
        s = settings
        # A head larger than every line at its limit cannot be valid: the empty line a
        # client may send first (RFC 9112, section 2.2), the request line (the longest
        # method llhttp takes, the target, the version), the header lines ("name: value"
        # as max_header_bytes counts them -- llhttp counts the whitespace after a value
        # as the value's -- and CRLF) and the blank line that ends them.
        request_line = len("UNSUBSCRIBE ") + s.max_request_line + len(" HTTP/1.1\r\n")
        self.max_head = 2 + request_line + s.max_headers * (s.max_header_bytes + 2) + 2
        self._date, self._date_at = b"", 0

    def __call__(self) -> "Connection":
        return Connection(self)

    def date_header(self) -> bytes:
        now = int(time.time())
        if now != self._date_at:
            self._date_at = now
            self._date = f"Date: {formatdate(now, usegmt=True)}\r\n".encode()
        return self._date

    def close_idle(self) -> None:
        """Stop: idle connections close now, busy ones after their answer."""
        self.closing = True
        for connection in list(self.connections):
            connection.close_when_idle()


class Connection(WriteFlow, asyncio.Protocol):
    def __init__(self, server: Server):
        self.server = server
        self.settings = server.settings
        self.transport: asyncio.Transport | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.parser = httptools.HttpRequestParser(self)
        self.client_addr = ""
        self.closed = False
        self.finished = False  # no further request is read from this client
        self.in_head = False  # bytes of a head arrived, its end has not
        self._woke = False  # it began on an idle connection: see on_message_begin
        self.head_bytes = 0
        self._url = b""
        self._headers: list[tuple[str, str]] = []
        self._names: dict[str, str] = {}  # Request.names of the head arriving
        self._parsing: Request | None = None  # the request whose bytes are arriving
        self._current: Request | None = None  # the request being answered
        self._queue: deque[Request] = deque()  # pipelined, waiting for the current one
        self._task: asyncio.Task | None = None  # serves the requests: see _serve
        self._idle: asyncio.Future | None = None  # the task waits on it when idle
        # One deadline at a time (head, keep-alive, linger): made in connection_made.
        self._deadline: Deadline | None = None
        self._body_timer: asyncio.TimerHandle | None = None
        self._paused = False
        self._writing = False  # an answer's bytes have started to leave

    # -- asyncio ------------------------------------------------------------------------

    def connection_made(self, transport) -> None:
        self.transport = transport
        self.loop = asyncio.get_running_loop()
        self._deadline = Deadline(self.loop)
        server = self.server
        if server.closing or len(server.connections) >= self.settings.max_connections:
            self._turn_away()
            return
        server.connections.add(self)
        peer = transport.get_extra_info("peername")
        self.client_addr = peer[0] if peer else ""
        self._deadline.arm(self.settings.header_timeout, self._head_late)

    def connection_lost(self, exc) -> None:
        self.closed = True
        self.server.connections.discard(self)
        self._deadline.cancel()
        if self._body_timer is not None:
            self._body_timer.cancel()
        self.release_writers()
        for request in (self._parsing, self._current, *self._queue):
            if request is not None:
                request.body.fail(
                    400, "client_gone", "the client closed the connection"
                )
        if self._task is not None:
            self._task.cancel()  # nobody to answer: free the upstream side at once

    def data_received(self, data: bytes) -> None:
        if self.finished:
            return
        if self.in_head or self._parsing is None:
            # Checked once the parser has taken them: the bytes of a read may go past the
            # end of the head (its body, the next request), and a head that ends in them
            # sets the count back to 0.
            self.head_bytes += len(data)
        try:
            self.parser.feed_data(data)
        except _Refusal as refusal:
            self._refuse(refusal.status, refusal.code, refusal.message)
        except httptools.HttpParserUpgrade:
            self._upgrade()
        except httptools.HttpParserError as exc:
            cause = exc.__cause__ or exc.__context__
            if isinstance(cause, _Refusal):
                self._refuse(cause.status, cause.code, cause.message)
            else:
                self._refuse(400, "bad_request", f"malformed request: {exc}")
        else:
            if self.in_head and self.head_bytes > self.server.max_head:
                # Past the bound of its lines, the head has a line too long that has not
                # ended (the parser reports a line at its end), or too many lines.
                self._refuse(431, "head_too_large", "request head too large")
                return
            if self._woke:
                self._woke = False
                if self.in_head:
                    self._deadline.arm(self.settings.header_timeout, self._head_late)

    # -- httptools ----------------------------------------------------------------------

    def on_message_begin(self) -> None:
        self._url = b""
        self._headers = []
        self._names = {}
        if not self.in_head:
            self.in_head = True
            # On an idle kept-alive connection, the head's deadline runs from this first
            # byte; data_received arms it only if the head does not end in the same bytes
            # (most do, and arming costs a few percent of a request's instructions).
            self._woke = self._current is None

    def on_url(self, url: bytes) -> None:
        self._url += url
        if len(self._url) > self.settings.max_request_line:
            raise _Refusal(414, "uri_too_long", "request line too long")

    def on_header(self, name: bytes, value: bytes) -> None:
        s = self.settings
        if len(name) + len(value) + 2 > s.max_header_bytes:
            raise _Refusal(431, "header_too_large", "a request header is too large")
        if len(self._headers) >= s.max_headers:
            raise _Refusal(431, "too_many_headers", "too many request headers")
        name, value = name.decode("latin-1"), value.decode("latin-1")
        self._headers.append((name, value))
        self._names[name.lower()] = value

    def on_headers_complete(self) -> None:
        self.in_head = False
        self.head_bytes = 0
        if self._current is None:
            self._deadline.disarm()
        parser = self.parser
        names = self._names
        # llhttp accepts only codings ending in chunked, and checked Content-Length: digits,
        # one value, never beside Transfer-Encoding.
        chunked = "transfer-encoding" in names
        declared = names.get("content-length")
        length = None if chunked or declared is None else int(declared)
        if chunked or length:
            body = Body(self, length, chunked, self.settings.max_body_bytes)
            if "expect" in names:
                body.expect_continue = names["expect"].lower() == "100-continue"
        else:
            body = NO_BODY
        keep_alive = parser.should_keep_alive()
        # get_http_version formats two numbers, at a cost worth avoiding: llhttp keeps
        # alive a request without a Connection header only when it is HTTP/1.1.
        if keep_alive and "connection" not in names:
            version = "1.1"
        else:
            version = parser.get_http_version()
        if "host" not in names and version == "1.1":  # RFC 9112, section 3.2
            raise _Refusal(
                400, "missing_host", "an HTTP/1.1 request needs a Host header"
            )
        request = Request(
            parser.get_method().decode("ascii"),
            self._url.decode("latin-1"),
            version,
            self._headers,
            names,
            self.client_addr,
            body,
            keep_alive,
        )
        self._parsing = request if body.expected else None
        if self._current is None:
            self._start(request)
        else:
            self._queue.append(request)
            self.pause_reading()  # one request ahead is enough

    def on_body(self, data: bytes) -> None:
        if self._parsing is not None:
            self._parsing.body.feed(data)

    def on_message_complete(self) -> None:
        if self._parsing is not None:
            self._parsing.body.finish()
            self._parsing = None
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None

    # -- answering ----------------------------------------------------------------------

    def _start(self, request: Request) -> None:
        self._current = request
        if not request.body.complete:
            self._body_timer = self.loop.call_later(
                self.settings.client_timeout,
                request.body.fail,
                408,
                "request_timeout",
                "request body arrived too slowly",
            )
        if self._task is None:
            self._task = self.loop.create_task(self._serve())
        elif self._idle is not None:
            self._idle.set_result(None)
            self._idle = None

    async def _serve(self) -> None:
        """Answer the connection's requests in turn, waiting for each while it is idle.
        One task per connection rather than per request: asyncio registers every task in
        a WeakSet, in Python (~7% of a canned answer's instructions)."""
        while True:
            keep_alive = await self._answer(self._current)
            if not self._done(keep_alive):
                return
            if self._current is None:
                self._idle = self.loop.create_future()
                await self._idle  # until _start hands over the next request

    async def _answer(self, request: Request) -> bool:
        """Answer `request`; whether the connection may carry another one."""
        try:
            response = await self.server.handle(request)
        except Exception as exc:  # a bug must not leave the client hanging
            log.error(
                "unhandled %s on %s %s",
                type(exc).__name__,
                request.method,
                request.target,
                exc_info=exc,
            )
            response = json_error(500, "internal_error", "internal server error")
            response.headers.append(("X-Served-By", self.server.served_by))
        keep_alive = (
            request.keep_alive
            and request.body.complete
            and not self.finished
            and not self.server.closing
        )
        self._writing = True
        bodiless = request.method == "HEAD" or response.status in NO_BODY_STATUSES
        try:
            head, keep_alive, chunked = self._head(
                request, response, bodiless, keep_alive
            )
            if bodiless or response.stream is None:
                self.transport.write(head if bodiless else head + response.body)
            else:
                self.transport.write(head)
                await self._stream(response.stream, chunked)
            return keep_alive
        except OSError:  # the client went away, or the upstream broke mid-body
            return False  # closing tells the client its answer is cut short
        finally:
            if response.stream is not None:
                await response.stream.aclose()

    def _done(self, keep_alive: bool) -> bool:
        """After an answer: the next request's turn; whether the connection goes on."""
        self._current = None
        self._writing = False
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None
        if self.closed:
            return False
        if not keep_alive:
            if self._parsing is not None:  # answered before its body came: see below
                self._linger_then_close()
            else:
                self.transport.close()
            return False
        if self._queue:
            self._start(self._queue.popleft())
            self.resume_reading()
            return True
        self.resume_reading()
        if self.in_head:
            self._deadline.arm(self.settings.header_timeout, self._head_late)
        else:
            self._deadline.arm(self.settings.keepalive_timeout, self.transport.close)
        return True

    def _head(
        self, request: Request, response: Response, bodiless: bool, keep_alive: bool
    ) -> tuple[bytes, bool, bool]:
        """The answer's head; whether the connection may carry another request after it,
        and whether a streamed body goes chunked."""
        lines = []
        for name, value in response.headers:
            if bodiless or len(name) != 14 or name.lower() != "content-length":
                lines.append(f"{name}: {value}\r\n")
        head = [
            status_line(response.status),
            "".join(lines).encode("latin-1"),
            self.server.date_header(),
        ]
        chunked = False
        if not bodiless:
            if response.stream is None:
                head.append(b"Content-Length: %d\r\n" % len(response.body))
            elif response.length is not None:
                head.append(b"Content-Length: %d\r\n" % response.length)
            elif request.version == "1.1":
                head.append(b"Transfer-Encoding: chunked\r\n")
                chunked = True
            else:
                keep_alive = False  # HTTP/1.0: the end of the connection ends the body
        if not keep_alive:
            head.append(b"Connection: close\r\n")
        elif request.version == "1.0":
            head.append(b"Connection: keep-alive\r\n")
        head.append(b"\r\n")
        return b"".join(head), keep_alive, chunked

    async def _stream(self, stream: AsyncIterator[bytes], chunked: bool) -> None:
        async for chunk in stream:
            if self.closed:
                raise ConnectionError("client gone")
            self.transport.write(
                b"%x\r\n%s\r\n" % (len(chunk), chunk) if chunked else chunk
            )
            async with asyncio.timeout(self.settings.client_timeout):
                await self.drain()
        if chunked:
            self.transport.write(b"0\r\n\r\n")

    # -- refusals and timers ------------------------------------------------------------

    def _error_bytes(self, status: int, code: str, message: str, *extra) -> bytes:
        response = json_error(status, code, message)
        headers = [*response.headers, ("X-Served-By", self.server.served_by), *extra]
        head = b"".join(f"{n}: {v}\r\n".encode("latin-1") for n, v in headers)
        return (
            status_line(status)
            + head
            + b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(response.body)
            + response.body
        )

    def _refuse(self, status: int, code: str, message: str) -> None:
        """Answer a request that cannot be parsed or is over a limit, and close."""
        self.server.refused(status, code)
        self.finished = True
        if self._writing:
            # An answer is being written: a refusal now would interleave with it.
            self.transport.close()
            return
        if self._task is not None:
            # No request is served after this one. llhttp refuses some heads (an unknown
            # Transfer-Encoding) only after their end, when the request was already
            # handed over: it is not answered.
            self._task.cancel()
            self._task = self._current = None
        self.transport.write(self._error_bytes(status, code, message))
        self._linger_then_close()

    def _turn_away(self) -> None:
        self.server.refused(503, "too_many_connections")
        self.transport.write(
            self._error_bytes(
                503,
                "too_many_connections",
                "the gateway has too many open connections; try again",
                ("Retry-After", str(self.settings.retry_after)),
            )
        )
        self._linger_then_close()

    def _linger_then_close(self) -> None:
        # Closing with unread request bytes would make the kernel send RST, which can
        # destroy the answer before the client reads it: half-close, drop what comes.
        self._deadline.disarm()
        self.finished = True
        if self._paused:  # read on, so what still comes is dropped, not left unread
            self._paused = False
            self.transport.resume_reading()
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self._deadline.arm(TURN_AWAY_LINGER, self.transport.close)

    def _upgrade(self) -> None:
        # No protocol switch through the gateway: the request is answered as a plain one
        # (Upgrade is hop-by-hop) and the connection ends with it.
        self.finished = True
        if self._parsing is not None:
            self._parsing.body.finish()
            self._parsing = None

    def _head_late(self) -> None:
        if self.in_head:
            self.server.refused(408, "request_timeout")
            self.transport.write(
                self._error_bytes(
                    408, "request_timeout", "request head arrived too slowly"
                )
            )
            self._linger_then_close()
        else:
            self.transport.close()

    # -- used by the body and the server ------------------------------------------------

    def write(self, data: bytes) -> None:
        if not self.closed:
            self.transport.write(data)

    def pause_reading(self) -> None:
        if not self._paused and not self.closed:
            self._paused = True
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        if self._paused and not self.closed and not self._queue:
            self._paused = False
            self.transport.resume_reading()

    def close_when_idle(self) -> None:
        if self._current is None and not self.closed:
            self.transport.close()
