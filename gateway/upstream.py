"""The upstream side of the proxy on the event loop: pooled keep-alive HTTP/1.1 connections.

Each upstream connection is an asyncio Protocol with an httptools response parser (C), so a
request costs no thread and no Python-level byte parsing. The target and headers go out
exactly as the proxy gives them (no re-quoting, no default headers).

Failure classes map to the proxy's retry rules: ConnectFailed (nothing was sent),
UpstreamTimeout (no answer within the read timeout), UpstreamBroken (the connection failed
mid-exchange, or the answer was not HTTP).

Name resolution never blocks the loop: `create_connection` resolves a host name in the
loop's resolver threads (instances are registered by address, so it rarely has to).
"""

import asyncio
import os
import select
from collections import deque
from collections.abc import AsyncIterator, Sequence

import httptools

from gateway.deadline import Deadline
from gateway.flow import WriteFlow

__all__ = [
    "ConnectFailed",
    "Upstream",
    "UpstreamBroken",
    "UpstreamResponse",
    "UpstreamTimeout",
]

MAX_HEAD = 1 << 20  # bytes of one response head, as Go's MaxResponseHeaderBytes
MAX_HEADER_LINES = 200
MAX_POOLS = 512
HIGH_WATER = 256 * 1024  # buffered body bytes past which the upstream is not read
# A body announced this small is awaited whole before the head's reader wakes: upstreams
# often send head and body in two writes, and one wake-up per answer costs less than two.
SMALL_BODY = 64 * 1024


class ConnectFailed(OSError):
    """The connection could not be opened: the request never left."""


class UpstreamTimeout(OSError):
    """The upstream did not answer within the read timeout."""


class UpstreamBroken(OSError):
    """The connection broke after the request was (maybe) sent, or the reply was not HTTP."""


class _Stale(UpstreamBroken):
    """A kept-alive connection closed before any byte of the answer: maybe never read."""


class _Link(WriteFlow, asyncio.Protocol):
    """One upstream connection; carries one exchange at a time."""

    def __init__(self, pool: "_Pool"):
        self.pool = pool
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.fd = -1
        self.poller: select.poll | None = None
        self.closed = False
        self.response: UpstreamResponse | None = None  # the exchange in progress
        # Its successive waits share one timer (gateway.deadline).
        self.read_deadline = Deadline(self.loop)
        self.parser = _parser(self)

    # -- asyncio ------------------------------------------------------------------------

    def connection_made(self, transport) -> None:
        self.transport = transport
        # A descriptor of our own for the same socket: `usable` polls it (a poll object
        # asks the kernel without building select's lists), and `_read_what_is_left` reads
        # through it after uvloop has closed its own.
        self.fd = os.dup(transport.get_extra_info("socket").fileno())
        self.poller = select.poll()
        self.poller.register(self.fd, select.POLLIN)

    def data_received(self, data: bytes) -> None:
        response = self.response
        if response is None:  # bytes nobody asked for: this connection is unusable
            self.close()
            return
        response.received += len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            response.fail(UpstreamBroken(f"bad answer: {exc}"))
            self.close()
        except httptools.HttpParserUpgrade:
            response.fail(UpstreamBroken("upstream switched protocols"))
            self.close()

    def connection_lost(self, exc) -> None:
        self.closed = True
        self.release_writers()
        self.read_deadline.cancel()
        if self.response is not None and exc is not None:
            self._read_what_is_left()
        if self.response is not None:
            self.response.lost()
        os.close(self.fd)

    def _read_what_is_left(self) -> None:
        """An upstream may answer early (a 413 before the body) and reset the connection
        while the body is still going out. A write that meets the reset makes uvloop close
        its descriptor at once, leaving the answer unread in the kernel: read it here."""
        try:
            while self.response is not None and (data := os.read(self.fd, 65536)):
                self.data_received(data)
        except OSError:  # the reset itself, once the answer's bytes are read
            pass

    # -- httptools ----------------------------------------------------------------------

    # A parser replaced after a head without a body may still call back for bytes that
    # followed it in the same read: bytes beyond an answer make the connection unusable.

    def on_message_begin(self) -> None:
        if self.response is None:
            self.close()

    def on_header(self, name: bytes, value: bytes) -> None:
        response = self.response
        if response is None:
            self.close()
            return
        # Here rather than in the response: one call less per header line.
        headers = response.headers
        if len(headers) >= MAX_HEADER_LINES or response.received > MAX_HEAD:
            raise httptools.HttpParserError("response head too large")
        headers.append((name.decode("latin-1"), value.decode("latin-1")))

    def on_headers_complete(self) -> None:
        if self.response is None:
            self.close()
        else:
            self.response.on_head(self.parser.get_status_code(), self.parser)

    def on_body(self, data: bytes) -> None:
        if self.response is None:
            self.close()
        else:
            self.response.on_body(data)

    def on_message_complete(self) -> None:
        if self.response is not None:
            self.response.on_complete()

    # -- read timeout -------------------------------------------------------------------

    def watch(self, timeout: float) -> None:
        """Time the exchange's reader out if it still waits in `timeout`."""
        self.read_deadline.arm(timeout, self._read_late)

    def _read_late(self) -> None:
        if self.response is not None:
            self.response.expire()

    # -- pool ---------------------------------------------------------------------------

    def usable(self) -> bool:
        """Whether a pooled connection is still quiet: one that turned readable was closed
        by the peer, or holds bytes nobody asked for (a late or stray answer) -- either way
        it cannot carry the next exchange. The loop may not have seen it yet: ask the kernel."""
        if self.closed:
            return False
        try:
            return not self.poller.poll(0)  # readable, hung up or failed: not usable
        except (OSError, ValueError):
            return False

    def close(self) -> None:
        """At once: an unsent request body is dropped, not flushed first."""
        self.closed = True
        if self.transport is not None:
            self.transport.abort()


def _parser(link: _Link) -> httptools.HttpResponseParser:
    parser = httptools.HttpResponseParser(link)
    # Heads whose lines end in LF alone are read, as before (and as Go reads them).
    parser.set_dangerous_leniencies(lenient_optional_cr_before_lf=True)
    return parser


class UpstreamResponse:
    """Status, headers and a body to read once (`read()` or `stream()`)."""

    # Defaults at class level: one response is made per request, most keep them.
    status = 0
    length: int | None = None
    received = 0
    _reusable = False
    _close_delimited = False
    _head_done = False
    _sending = False  # a streamed request body is still being written: see _send_stream
    _small = False  # a small body: the reader wakes when it is complete
    _buffered = 0
    _complete = False
    _error: BaseException | None = None
    _waiter: asyncio.Future | None = None

    def __init__(self, link: _Link, method: str, read_timeout: float):
        self.link = link
        self.method = method
        self.read_timeout = read_timeout
        self.headers: list[tuple[str, str]] = []
        self._chunks: deque[bytes] = deque()

    # -- fed by the link ----------------------------------------------------------------

    def on_head(self, status: int, parser) -> None:
        if 100 <= status < 200 and status != 101:
            self.headers = []  # interim answers (100 Continue, 103) are not forwarded
            return
        self.status = status
        coding = length = None  # the last of each, as a dict of them would keep
        for name, value in self.headers:
            size = len(name)  # cheaper than lower-casing every name
            if size == 14 and name.lower() == "content-length":
                length = value
            elif size == 17 and name.lower() == "transfer-encoding":
                coding = value
        no_body = self.method == "HEAD" or status in (204, 304)
        chunked = coding is not None and "chunked" in coding.lower()
        if not no_body and not chunked and length is not None:
            self.length = int(length)  # llhttp checked it
        self._close_delimited = not (no_body or chunked or self.length is not None)
        self._reusable = parser.should_keep_alive() and not self._close_delimited
        self._head_done = True
        self._small = self.length is not None and self.length <= SMALL_BODY
        if no_body:
            self.length = 0
            # httptools cannot be told the body is empty: this parser would read the next
            # bytes as one, so the connection gets a fresh parser -- and any early byte
            # beyond the head makes it unusable (data_received with no exchange).
            self.link.parser = _parser(self.link)
            self._finish()
        if not self._small or self._complete:
            self._wake()

    def on_body(self, data: bytes) -> None:
        if self._complete:
            return
        self._chunks.append(data)
        self._buffered += len(data)
        if self._buffered > HIGH_WATER:
            self.link.transport.pause_reading()
        if not self._small:
            self._wake()

    def on_complete(self) -> None:
        if self._head_done and not self._complete:
            self._finish()
            self._wake()

    def lost(self) -> None:
        if self._complete:
            return
        if self._head_done and self._close_delimited:
            self._finish()  # the end of the stream is the end of this body
        elif self._head_done:
            self._error = UpstreamBroken("connection closed inside the answer")
        elif self.received:
            self._error = UpstreamBroken("connection closed inside the response head")
        else:
            self._error = _Stale("connection closed before the answer")
        self._wake()

    def fail(self, error: BaseException) -> None:
        if not self._complete:
            self._error = error
            self._wake()

    def _finish(self) -> None:
        self._complete = True
        link = self.link
        link.response = None
        if self._reusable and not self._sending and not link.closed:
            link.pool.put(link)
        else:
            link.close()

    def _wake(self, error: BaseException | None = None) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            if error is None:
                waiter.set_result(None)
            else:
                waiter.set_exception(error)

    def expire(self) -> None:
        """Nothing came within the read timeout (the link's timer)."""
        self._wake(UpstreamTimeout("upstream read timed out"))

    def next_event(self) -> asyncio.Future:
        """A future the exchange's next event (head, body bytes, end, failure) resolves, or
        the read timeout fails; a plain future, awaited with no coroutine of its own."""
        if self._error is not None:
            raise self._error
        self._waiter = waiter = self.link.loop.create_future()
        self.link.watch(self.read_timeout)
        return waiter

    # -- read by the proxy --------------------------------------------------------------

    @property
    def answered(self) -> bool:
        """Whether the final answer's head is here (interim 1xx heads do not count)."""
        return self._head_done

    @property
    def has_head(self) -> bool:
        """Whether the head is here (and a small body: see SMALL_BODY)."""
        return self._head_done and (self._complete or not self._small)

    async def read(self) -> bytes:
        # A body already whole and never paused for (the usual small answer): no generator.
        if self._complete and self._error is None and self._buffered <= HIGH_WATER:
            data = b"".join(self._chunks)
            self._chunks.clear()
            self._buffered = 0
            return data
        return b"".join([chunk async for chunk in self.stream()])

    async def stream(self) -> AsyncIterator[bytes]:
        """The body as it arrives; the connection goes back to the pool at its end."""
        try:
            while True:
                if self._chunks:
                    data = self._chunks.popleft()
                    self._buffered -= len(data)
                    if self._buffered <= HIGH_WATER and not self.link.closed:
                        self.link.transport.resume_reading()
                    yield data
                elif self._complete:
                    return
                else:
                    await self.next_event()
        except BaseException:
            self.discard()
            raise

    def discard(self) -> None:
        """Give up on this answer: its connection cannot carry another."""
        if not self._complete:
            self._complete = True
            self.link.response = None
            self.link.close()


class _Pool:
    def __init__(self, address: str, port: int, maxsize: int):
        self.address, self.port, self.maxsize = address, port, maxsize
        host = f"[{address}]:{port}" if ":" in address else f"{address}:{port}"
        self.host_line = f"Host: {host}"
        self.idle: deque[_Link] = deque()

    def get(self) -> _Link | None:
        """A kept-alive connection that is still usable, if there is one."""
        while self.idle:
            link = self.idle.pop()
            if link.usable():
                return link
            link.close()
        return None

    async def connect(self, timeout: float) -> _Link:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                _, link = await loop.create_connection(
                    lambda: _Link(self), self.address, self.port
                )
        except (OSError, TimeoutError) as exc:
            raise ConnectFailed(
                f"connect to {self.address}:{self.port}: {exc or 'timed out'}"
            ) from exc
        return link

    def put(self, link: _Link) -> None:
        if len(self.idle) < self.maxsize:
            self.idle.append(link)
        else:
            link.close()

    def close(self) -> None:
        while self.idle:
            self.idle.pop().close()


class Upstream:
    """Pools of kept-alive connections, one per instance address."""

    def __init__(self, pool_size: int):
        self.pool_size = pool_size
        self._pools: dict[tuple[str, int], _Pool] = {}

    def _pool(self, address: str, port: int) -> _Pool:
        key = (address, port)
        pool = self._pools.get(key)
        if pool is None:
            if len(self._pools) >= MAX_POOLS:  # instances come and go
                self._pools.pop(next(iter(self._pools))).close()
            pool = self._pools[key] = _Pool(address, port, self.pool_size)
        return pool

    def close(self) -> None:
        """Close every idle connection."""
        pools, self._pools = list(self._pools.values()), {}
        for pool in pools:
            pool.close()

    async def send(
        self,
        address: str,
        port: int,
        method: str,
        target: str,
        headers: Sequence[tuple[str, str]],
        body: "bytes | RequestBody",
        connect_timeout: float,
        read_timeout: float,
        replayable: bool,
    ) -> UpstreamResponse:
        """Send one request; the answer's head is read, its body is the caller's to read.

        A kept-alive connection the upstream closed before answering is replaced once, if
        the request may be sent again (`replayable`, a body held in memory) -- Go's
        net/http rule; the check before reuse makes this rare."""
        pool = self._pool(address, port)
        host = pool.host_line
        link = pool.get()
        # A pooled connection found closed before the answer may be replaced, once.
        replace = link is not None and replayable and isinstance(body, bytes)
        if link is None:
            link = await pool.connect(connect_timeout)
        while True:
            response = UpstreamResponse(link, method, read_timeout)
            try:
                if link.closed:
                    raise _Stale("connection closed while pooled")
                link.response = response
                if isinstance(body, bytes):
                    head = _head(method, target, host, headers, len(body))
                    link.transport.write(head + body)
                else:
                    await _send_stream(
                        link, response, (method, target, host, headers), body
                    )
                # Awaited here, not in a coroutine of the response's: one less to resume.
                while not response.has_head:
                    await response.next_event()
                return response
            except _Stale as stale:
                response.discard()
                if not replace:
                    raise UpstreamBroken(str(stale)) from None
            except BaseException:
                response.discard()
                raise
            replace = False
            link = await pool.connect(connect_timeout)


class RequestBody:
    """A request body too large to hold, sent as it arrives: `chunks()` yields it once;
    `length` is its Content-Length, None when it arrives chunked."""

    length: int | None

    def chunks(self) -> AsyncIterator[bytes]:
        raise NotImplementedError


async def _send_stream(link, response, head, body):
    """Write a streamed body as it arrives, each write bounded by the read timeout (an
    upstream that stops reading must not hold the request for ever).

    An upstream may answer before it has read the body (a 413, say) and then close: the
    answer stands, the rest of the body is not sent (RFC 9112, section 9.5), and the
    connection, its request cut short, never goes back to the pool."""
    length = body.length
    response._sending = True
    link.transport.write(_head(*head, length))
    chunks = body.chunks()
    try:
        async for chunk in chunks:
            # A write that meets the reset behind an early answer loses nothing: see
            # _Link._read_what_is_left.
            if response.answered:
                break
            if link.closed:
                raise UpstreamBroken("connection closed while sending the body")
            link.transport.write(
                chunk if length is not None else b"%x\r\n%s\r\n" % (len(chunk), chunk)
            )
            try:
                async with asyncio.timeout(response.read_timeout):
                    await link.drain()
            except TimeoutError as exc:
                raise UpstreamTimeout("upstream write timed out") from exc
        else:
            if length is None:
                link.transport.write(b"0\r\n\r\n")
            response._sending = False
    finally:
        await chunks.aclose()


def _head(method, target, host_line, headers, length: int | None) -> bytes:
    lines = [f"{method} {target} HTTP/1.1", host_line]
    lines += map(": ".join, headers)  # "name: value" with no comprehension frame
    if length is None:
        lines.append("Transfer-Encoding: chunked")
    elif length or method in ("POST", "PUT", "PATCH"):
        lines.append(f"Content-Length: {length}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
