"""gunicorn gthread worker whose own error pages are JSON, for every Switchyard service.

gunicorn answers requests it cannot parse (bad request line, 414 request line too long,
431 header too large, invalid header, 501 unsupported transfer coding...) before the app
sees them, and answers an exception that escapes the app with a bare 500 -- each time with
a small HTML page written by `gunicorn.util.write_error`. DESIGN.md promises that no HTML
error page ever leaves a service or the gateway, so this worker hands gunicorn a socket
stand-in that rewrites that page into the shared error shape (chassis.responses.api_error),
same status. `service_hooks` makes it every service's worker (the gateway has its own, gateway.worker).

A slow or idle client holds a socket, never a thread. gthread hands a new connection to a
thread of its pool, which waits up to 5 s for its first byte and then reads the request with
blocking calls that have no deadline: a few dozen clients trickling a head or a body, or just
connecting, held every thread, and the Consul check's /health waited behind them until the
instance went critical. Here a thread only ever takes what has arrived: until a request is all
there (chassis.arrival) the connection waits on gunicorn's poller (gthread's own deferral), and
a request not in within arrival.RECEIVE_SECONDS of its first byte gets 408. Nor does a closing
connection hold a thread or the worker's main loop: it lingers on the poller (see `_close`).
"""

import contextlib
import functools
import gc
import selectors
import socket
import time
from dataclasses import dataclass

from gunicorn.http.message import (
    DEFAULT_MAX_HEADERFIELD_SIZE,
    MAX_HEADERS,
    MAX_REQUEST_LINE,
)
from gunicorn.http.parser import RequestParser
from gunicorn.workers.base import Worker
from gunicorn.workers.gthread import _DEFER, ThreadWorker

from chassis import arrival
from chassis.responses import api_error

__all__ = ["JSONErrorWorker", "skip_exit_collection"]

# Held for a request before it is whole when the app sets no MAX_CONTENT_LENGTH.
DEFAULT_MAX_BODY = 1024 * 1024
# A lingering close drops at most this long and this much of what the client still sends:
# enough to take in the rest of a body of several MiB (tens of milliseconds on a LAN), while a
# client that keeps sending is closed on after LINGER_SECONDS.
LINGER_SECONDS = 2.0
LINGER_BYTES = 16 * 1024 * 1024
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


def _json_page(status_line: str, served_by: str | None) -> bytes:
    """A whole response in the shared error shape, for the status of `status_line`."""
    _, status, reason = (status_line.split(" ", 2) + ["", ""])[:3]
    code = reason.lower().replace(" ", "_") or "bad_request"
    response = api_error(int(status) if status.isdigit() else 400, code, reason)
    body = response.get_data()
    head = (
        f"HTTP/1.1 {response.status_code} {reason}\r\n"
        "Connection: close\r\n"
        f"Content-Type: {response.content_type}\r\n"
        f"Content-Length: {len(body)}\r\n"
    )
    if served_by:
        head += f"X-Served-By: {served_by}\r\n"
    return head.encode("latin-1") + b"\r\n" + body


class _JSONErrorSocket:
    """The client socket, except that the one page gunicorn writes to it leaves as JSON."""

    def __init__(self, sock, served_by: str | None = None):
        self._sock = sock
        self._served_by = served_by

    def __getattr__(self, name):
        return getattr(self._sock, name)

    def sendall(self, data: bytes) -> None:
        status_line = data.split(b"\r\n", 1)[0].decode("latin-1")
        self._sock.sendall(_json_page(status_line, self._served_by))


@dataclass
class _Pace:
    """Where a connection is, beyond what gunicorn's TConn knows."""

    # The request under way: its deadline (from its first byte), 100 Continue sent for it,
    # all of it here when a thread took it.
    receive_by: float | None = None
    continued: bool = False
    whole: bool = True
    linger_until: float | None = None  # closing: dropping what the client still sends
    dropped: int = 0


class JSONErrorWorker(ThreadWorker):
    def handle_quit(self, sig, frame):
        """SIGINT/SIGQUIT: stop at once, as gunicorn's base worker does, but without
        gthread's first step, shutting its thread pool down: that takes the pool's lock,
        which the main thread -- where the handler runs -- holds while it hands a new
        connection to the pool. A quit landing there waited for ever (until the master's
        SIGKILL, graceful_timeout later). `run` shuts the pool down instead."""
        Worker.handle_quit(self, sig, frame)

    def run(self):
        try:
            super().run()
        finally:
            # Past the pool's code, whatever ended the loop (a quit raises SystemExit
            # anywhere in it). Shutting down wakes every thread of the pool, also one whose
            # start a quit interrupted and that the interpreter's exit would wait for.
            self.tpool.shutdown(wait=False)
            skip_exit_collection()

    def handle(self, conn):
        """In a thread of the pool, each time the poller sees the client's bytes: serve the
        request once it is all there; until then hand the connection back to the poller
        (_DEFER: gthread waits for its next bytes without a thread, and closes it if none
        come within its keepalive timeout)."""
        if _pace(conn).linger_until is not None:
            return self._go_on_lingering(conn)
        received = self._receive(conn)
        if received is None:
            return _DEFER
        if received:
            keepalive = super().handle(conn)
        else:
            late = _json_page("HTTP/1.1 408 Request Timeout", self._served_by())
            with contextlib.suppress(OSError):  # gone: nobody to tell
                conn.sock.sendall(late)
            keepalive = False
        if keepalive is False and not conn.is_http2:
            return self._close(conn)
        return keepalive

    def _receive(self, conn) -> bool | None:
        """Take in what the client has sent. True: the request is all here (or gunicorn
        answers it without more); None: wait for more; False: it is late."""
        pace = _pace(conn)
        conn.init()
        if not isinstance(conn.parser, RequestParser):  # HTTP/2: gunicorn's own loop
            return True
        unreader = conn.parser.unreader
        while True:
            fresh, closed = _take_in(conn.sock, self._max_head + self._max_body())
            held = unreader.take_buffered() + fresh
            unreader.unread(held)
            if closed:  # gunicorn answers what there is, or finds the client gone
                pace.whole = True  # nothing more can come
                return True
            if not held:  # idle: gthread's keepalive timeout closes it
                return None
            arrived = arrival.arrived(held, self._max_head, self._max_body())
            now = time.monotonic()
            if arrived.complete:
                pace.receive_by, pace.continued = None, False
                pace.whole = arrived.whole
                return True
            if pace.receive_by is None:
                pace.receive_by = now + arrival.RECEIVE_SECONDS
            if now >= pace.receive_by:
                return False
            if arrived.expects_continue and not pace.continued:
                # gunicorn sends its own once it has the request: a client takes several.
                with contextlib.suppress(OSError):  # gone: its next wake-up says so
                    conn.sock.sendall(CONTINUE)
                pace.continued = True
            if self.alive:
                return None
            # Stopping, gthread hands a deferred connection with bytes held straight back
            # to the pool: wait here instead, for the rest of a request already begun.
            _wait_readable(conn.sock, pace.receive_by - now)

    def _keepalive_after(self, conn, keepalive):
        """gthread keeps a connection alive after the app left its request body unread (an
        early 413) by reading the rest in this thread, for up to 5 s: a client trickling a
        body over the limit held a thread that long, each time. Unless all of it is already
        here, the connection is closed instead, lingering on the poller."""
        return _pace(conn).whole and super()._keepalive_after(conn, keepalive)

    def _close(self, conn):
        """After a connection's last answer, a lingering close (RFC 9112 section 9.6) that
        keeps neither a thread nor the main loop: the write side is shut, and what the
        client still sends is dropped, on the poller, until it closes its end.

        Closing with bytes unread makes the kernel send RST, and a client still sending
        its body (most send the whole body before they read: an early 413) gets a reset
        instead of the answer. Whether it has more to send cannot be told from what has
        arrived so far. gunicorn's own lingering close, after handle() returns False, runs on
        the worker's main thread and waits up to 2 s for each client that keeps its end
        open, while the worker accepts and answers nobody."""
        with contextlib.suppress(OSError):
            conn.sock.shutdown(socket.SHUT_WR)  # the client sees the answer's end
        if conn.parser is not None:
            conn.parser.unreader.take_buffered()  # gthread would take it for a next request
        _pace(conn).linger_until = time.monotonic() + LINGER_SECONDS
        return self._go_on_lingering(conn)

    def _go_on_lingering(self, conn):
        """Drop what the client has sent; close once it closes, or past LINGER_SECONDS or
        LINGER_BYTES."""
        pace = _pace(conn)
        dropped, closed = _take_in(conn.sock, LINGER_BYTES - pace.dropped)
        pace.dropped += len(dropped)
        if (
            closed
            or pace.dropped >= LINGER_BYTES
            or time.monotonic() >= pace.linger_until
        ):
            _stop_reading(conn.sock)
            return False
        return _DEFER

    def handle_error(self, req, client, addr, exc):
        super().handle_error(
            req, _JSONErrorSocket(client, self._served_by()), addr, exc
        )

    def _app_config(self) -> dict:
        config = getattr(getattr(self, "wsgi", None), "config", None)
        return config if isinstance(config, dict) else {}

    def _served_by(self) -> str | None:
        # DESIGN.md: every service response carries X-Served-By, gunicorn's own included.
        return self._app_config().get("INSTANCE_ID")

    def _max_body(self) -> int:
        return self._app_config().get("MAX_CONTENT_LENGTH") or DEFAULT_MAX_BODY

    @functools.cached_property
    def _max_head(self) -> int:
        """The longest head gunicorn reads before it refuses it (gunicorn.http.message);
        the worker's settings are fixed once it runs, so worked out once."""
        cfg = self.cfg
        line = cfg.limit_request_line
        fields = cfg.limit_request_fields
        field = cfg.limit_request_field_size
        return (
            (line if 0 < line < MAX_REQUEST_LINE else MAX_REQUEST_LINE)
            + (fields if 0 < fields <= MAX_HEADERS else MAX_HEADERS)
            * ((field if field > 0 else DEFAULT_MAX_HEADERFIELD_SIZE) + 2)
            + 4
        )


def skip_exit_collection() -> None:
    """The process is about to exit: spare it the garbage collector's passes over the whole
    heap while the interpreter tears its modules down. With Flask, SQLAlchemy and
    OpenTelemetry loaded those took 0.1-0.9 s in each worker after its last request, and
    0.15-0.3 s in the master: most of an idle instance's stop after its drain. Reference
    counting still frees what it can; objects in reference cycles are left to the exit, which
    releases their memory and the OS their sockets. Objects made after this (the tracing
    flush at exit) are collected as usual."""
    gc.freeze()


def _pace(conn) -> _Pace:
    if not hasattr(conn, "pace"):
        conn.pace = _Pace()
    return conn.pace


def _take_in(sock, limit: int) -> tuple[bytes, bool]:
    """Up to `limit` bytes of what the client has sent, without waiting for more; and
    whether it has closed (or the connection failed)."""
    chunks: list[bytes] = []
    got = 0
    sock.setblocking(False)
    try:
        while got < limit:
            chunk = sock.recv(min(65536, limit - got))
            if not chunk:
                return b"".join(chunks), True
            chunks.append(chunk)
            got += len(chunk)
    except BlockingIOError:  # all of it taken
        pass
    except OSError:  # reset, or closed under us
        return b"".join(chunks), True
    finally:
        with contextlib.suppress(OSError):
            sock.setblocking(True)
    return b"".join(chunks), False


def _wait_readable(sock, seconds: float) -> None:
    with selectors.DefaultSelector() as selector:
        selector.register(sock, selectors.EVENT_READ)
        selector.select(max(0.0, seconds))


def _stop_reading(sock) -> None:
    # gunicorn's own lingering close then finds the end of the stream at once.
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RD)
