"""A small HTTP/1.1 client for upstream hops: pooled keep-alive sockets, bytes as given.

Why not urllib3 or requests: both rewrite the request target (urllib3 upper-cases
percent-escapes, requests re-quotes), add default headers the client never sent, and parse
response headers through the `email` package -- which was most of the gateway's CPU time
per request. This client sends the target and headers exactly as the proxy gives them and
parses the response with plain byte operations.

Failure classes map to the proxy's retry rules: ConnectFailed (nothing was sent),
UpstreamTimeout (connect or read timeout after sending), UpstreamBroken (the connection
failed mid-exchange, or the answer was not HTTP).
"""

import contextlib
import socket
import struct
import threading
import time
from collections import deque
from collections.abc import Iterator, Sequence

__all__ = [
    "ConnectFailed",
    "Transport",
    "UpstreamBroken",
    "UpstreamResponse",
    "UpstreamTimeout",
]

MAX_HEAD = 1 << 20  # bytes of one response head, as Go's MaxResponseHeaderBytes
MAX_HEADER_LINES = 200
MAX_LINE = 65536
MAX_POOLS = 512
STREAM_CHUNK = 64 * 1024


class ConnectFailed(OSError):
    """The connection could not be opened: the request never left."""


class UpstreamTimeout(OSError):
    """The upstream did not answer within the read timeout."""


class UpstreamBroken(OSError):
    """The connection broke after the request was (maybe) sent, or the reply was not HTTP."""


class _Conn:
    """A kept-alive upstream socket and the bytes read ahead on it.

    The socket stays in blocking mode and its timeouts are the kernel's (SO_RCVTIMEO,
    SO_SNDTIMEO): with a Python-level timeout CPython polls before every send and recv,
    one more syscall -- and one more hand-off of the GIL between the gateway's threads --
    per operation. A kernel timeout surfaces as EAGAIN, turned into TimeoutError here.
    """

    __slots__ = ("buf", "sock", "timeout")

    def __init__(self, sock: socket.socket):
        sock.settimeout(None)
        self.sock = sock
        self.buf = b""
        self.timeout: float | None = None

    def settimeout(self, timeout: float) -> None:
        if timeout != self.timeout:  # two syscalls: most requests keep the last value
            self.sock.setsockopt(
                socket.SOL_SOCKET, socket.SO_RCVTIMEO, _timeval(timeout)
            )
            self.sock.setsockopt(
                socket.SOL_SOCKET, socket.SO_SNDTIMEO, _timeval(timeout)
            )
            self.timeout = timeout

    def sendall(self, data: bytes) -> None:
        """All of `data` within one timeout, as a Python socket timeout would bound it:
        SO_SNDTIMEO alone bounds each send, so a slow reader could stretch the whole."""
        deadline = time.monotonic() + self.timeout
        view = memoryview(data)
        while True:
            try:
                view = view[self.sock.send(view) :]
            except BlockingIOError as exc:
                raise TimeoutError("upstream write timed out") from exc
            if not view:
                return
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("upstream write timed out")
            # The next send may wait only what is left; settimeout restores it later.
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, _timeval(left))
            self.timeout = None

    def recv(self) -> bytes:
        """The next bytes: the read-ahead first, then the socket; b"" at end of stream."""
        if self.buf:
            data, self.buf = self.buf, b""
            return data
        try:
            return self.sock.recv(STREAM_CHUNK)
        except BlockingIOError as exc:
            raise TimeoutError("upstream read timed out") from exc

    def head(self) -> bytes:
        """One message head, up to and including the empty line that ends it."""
        buf = b""
        while (end := _head_end(buf)) < 0:
            if len(buf) > MAX_HEAD:
                raise UpstreamBroken("response head too large")
            data = self.recv()
            if not data:
                if buf:
                    raise UpstreamBroken("connection closed inside the response head")
                raise _Stale("connection closed before the answer", unsent=False)
            buf += data
        self.buf = buf[end:]
        return buf[:end]

    def line(self) -> bytes:
        buf, self.buf = self.buf, b""
        while (end := buf.find(b"\n")) < 0:
            if len(buf) > MAX_LINE or not (data := self.recv()):
                raise UpstreamBroken("bad or truncated chunk line")
            buf += data
        self.buf = buf[end + 1 :]
        return buf[: end + 1]

    def read(self, size: int) -> bytes:
        """Up to `size` bytes, as soon as some are there; b"" at end of stream."""
        data = self.recv()
        self.buf = data[size:]
        return data[:size]

    def read_exactly(self, size: int) -> bytes:
        parts = []
        while size:
            data = self.read(size)
            if not data:
                raise UpstreamBroken("body shorter than announced")
            parts.append(data)
            size -= len(data)
        return b"".join(parts)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()

    def idle_and_open(self) -> bool:
        """Whether a pooled socket is still quiet: one that turned readable was closed by
        the peer, or holds bytes nobody asked for (a late or stray answer) -- either way
        it cannot carry the next exchange."""
        try:
            self.sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
        except BlockingIOError:
            return True
        except OSError:
            return False
        return False


def _timeval(seconds: float) -> bytes:
    # a zero timeval means "never": the smallest real one instead
    seconds = max(seconds, 1e-6)
    whole = int(seconds)
    return struct.pack("ll", whole, int((seconds - whole) * 1e6))


def _head_end(buf: bytes) -> int:
    """Offset just past the empty line ending a head (lines end in CRLF or LF), or -1."""
    ends = [i for i in (buf.find(b"\n\r\n"), buf.find(b"\n\n")) if i >= 0]
    if not ends:
        return -1
    i = min(ends)
    return i + (3 if buf[i + 1 : i + 2] == b"\r" else 2)


class _Pool:
    def __init__(self, address: str, port: int, maxsize: int):
        self.address, self.port, self.maxsize = address, port, maxsize
        self.idle: deque[_Conn] = deque()

    def get(self, connect_timeout: float) -> tuple[_Conn, bool]:
        """A kept-alive connection if there is one (reused=True), else a new one."""
        while True:
            try:
                conn = self.idle.pop()
            except IndexError:
                break
            if conn.idle_and_open():
                return conn, True
            conn.close()
        return self.connect(connect_timeout), False

    def connect(self, timeout: float) -> _Conn:
        try:
            sock = socket.create_connection((self.address, self.port), timeout=timeout)
        except OSError as exc:
            raise ConnectFailed(
                f"connect to {self.address}:{self.port}: {exc}"
            ) from exc
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return _Conn(sock)

    def put(self, conn: _Conn) -> None:
        if len(self.idle) < self.maxsize:
            self.idle.append(conn)
        else:
            conn.close()

    def close(self) -> None:
        while self.idle:
            self.idle.pop().close()


class UpstreamResponse:
    """Status, headers and a body to read once (`read()` or `stream()`)."""

    def __init__(self, status, headers, conn, pool, length, chunked, reusable):
        self.status = status
        self.headers: list[tuple[str, str]] = headers
        self._conn, self._pool = conn, pool
        self._length, self._chunked, self._reusable = length, chunked, reusable

    def header(self, name: str) -> str | None:
        lower = name.lower()
        return next((v for n, v in self.headers if n.lower() == lower), None)

    @property
    def length(self) -> int | None:
        return self._length

    def read(self) -> bytes:
        return b"".join(self.stream())

    def stream(self) -> Iterator[bytes]:
        try:
            yield from self._body()
        except TimeoutError as exc:
            self._discard()
            raise UpstreamTimeout(str(exc)) from exc
        except OSError as exc:
            self._discard()
            raise UpstreamBroken(str(exc)) from exc
        except BaseException:
            self._discard()
            raise
        self._release()

    def _body(self) -> Iterator[bytes]:
        conn = self._conn
        if self._chunked:
            yield from _chunks(conn)
        elif self._length is not None:
            left = self._length
            while left:
                data = conn.read(left)
                if not data:
                    raise UpstreamBroken("body shorter than Content-Length")
                left -= len(data)
                yield data
        else:
            while data := conn.recv():
                yield data

    def _release(self) -> None:
        if self._conn is not None:
            if self._reusable and not self._conn.buf:  # bytes beyond the answer: unsafe
                self._pool.put(self._conn)
            else:
                self._conn.close()
            self._conn = None

    def _discard(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def _chunks(conn: _Conn) -> Iterator[bytes]:
    while True:
        line = conn.line()
        try:
            size = int(line.split(b";", 1)[0].strip(), 16)
        except ValueError:
            raise UpstreamBroken("bad chunk size") from None
        if size == 0:
            while conn.line() not in (b"\r\n", b"\n"):
                pass  # trailers: dropped, they are hop-by-hop for us
            return
        data = conn.read_exactly(size)
        if conn.line() not in (b"\r\n", b"\n"):
            raise UpstreamBroken("truncated chunk")
        yield data


class Transport:
    def __init__(self, pool_size: int):
        self.pool_size = pool_size
        self._pools: dict[tuple[str, int], _Pool] = {}
        self._lock = threading.Lock()

    def _pool(self, address: str, port: int) -> _Pool:
        key = (address, port)
        pool = self._pools.get(key)
        if pool is None:
            with self._lock:
                pool = self._pools.get(key)
                if pool is None:
                    if len(self._pools) >= MAX_POOLS:  # instances come and go
                        self._pools.pop(next(iter(self._pools))).close()
                    pool = self._pools[key] = _Pool(address, port, self.pool_size)
        return pool

    def close(self) -> None:
        """Close every idle connection (tests; a gateway keeps its pools for life)."""
        with self._lock:
            pools, self._pools = list(self._pools.values()), {}
        for pool in pools:
            pool.close()

    def send(
        self,
        address: str,
        port: int,
        method: str,
        target: str,
        headers: Sequence[tuple[str, str]],
        body: bytes,
        connect_timeout: float,
        read_timeout: float,
        replayable: bool,
    ) -> UpstreamResponse:
        """Send one request. A kept-alive connection the upstream closed meanwhile is
        replaced once: always when sending failed, and when the answer never started
        only if the request is `replayable` (idempotent) -- Go's net/http rule."""
        pool = self._pool(address, port)
        host = f"[{address}]:{port}" if ":" in address else f"{address}:{port}"
        data = _serialise(method, target, host, headers, body)
        conn, reused = pool.get(connect_timeout)
        try:
            return self._exchange(pool, conn, method, data, read_timeout)
        except _Stale as stale:
            if not reused or not (stale.unsent or replayable):
                raise UpstreamBroken(str(stale)) from None
        conn = pool.connect(connect_timeout)
        try:
            return self._exchange(pool, conn, method, data, read_timeout)
        except _Stale as stale:
            raise UpstreamBroken(str(stale)) from None

    def _exchange(self, pool, conn, method, data, read_timeout) -> UpstreamResponse:
        conn.settimeout(read_timeout)
        try:
            conn.sendall(data)
        except TimeoutError as exc:
            conn.close()
            raise UpstreamTimeout(str(exc)) from exc
        except OSError as exc:
            conn.close()
            raise _Stale(str(exc), unsent=True) from exc
        try:
            return _read_head(pool, conn, method)
        except TimeoutError as exc:
            conn.close()
            raise UpstreamTimeout(str(exc)) from exc
        except (_Stale, UpstreamBroken):
            conn.close()
            raise
        except OSError as exc:
            conn.close()
            raise _Stale(str(exc), unsent=False) from exc


class _Stale(OSError):
    def __init__(self, message: str, unsent: bool):
        super().__init__(message)
        self.unsent = unsent


def _serialise(method, target, host, headers, body) -> bytes:
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host}"]
    lines += [f"{name}: {value}" for name, value in headers]
    if body or method in ("POST", "PUT", "PATCH"):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def _read_head(pool, conn, method) -> UpstreamResponse:
    while True:
        lines = conn.head().decode("latin-1").split("\n")
        version, status = _status(lines[0])
        headers = _headers(lines[1:-2])  # the last two: the empty line, and after it
        if not 100 <= status < 200 or status == 101:
            break  # 1xx interim answers (100 Continue, 103) are not forwarded
    names = {n.lower(): v for n, v in headers}
    no_body = method == "HEAD" or status in (204, 304) or 100 <= status < 200
    chunked = not no_body and names.get("transfer-encoding", "").lower().endswith(
        "chunked"
    )
    length = None
    if not no_body and not chunked and "content-length" in names:
        raw = names["content-length"].strip()
        if not raw.isdigit():
            raise UpstreamBroken(f"bad Content-Length {raw!r}")
        length = int(raw)
    connection = names.get("connection", "").lower()
    reusable = (
        "close" not in connection
        and (version == "HTTP/1.1" or "keep-alive" in connection)
        and (no_body or chunked or length is not None)
    )
    return UpstreamResponse(
        status, headers, conn, pool, 0 if no_body else length, chunked, reusable
    )


def _status(line: str) -> tuple[str, int]:
    parts = line.rstrip("\r").split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
        raise UpstreamBroken(f"not an HTTP status line: {line[:80]!r}")
    return parts[0], int(parts[1])


def _headers(lines: list[str]) -> list[tuple[str, str]]:
    if len(lines) > MAX_HEADER_LINES:
        raise UpstreamBroken("too many response headers")
    headers = []
    for line in lines:
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip():
            raise UpstreamBroken(f"bad response header line {line[:80]!r}")
        headers.append((name, value.strip()))
    return headers
