"""gunicorn gthread worker whose own error pages are JSON, for every Switchyard service.

gunicorn answers requests it cannot parse (bad request line, 414 request line too long,
431 header too large, invalid header, 501 unsupported transfer coding...) before the app
sees them, and answers an exception that escapes the app with a bare 500 -- each time with
a small HTML page written by `gunicorn.util.write_error`. DESIGN.md promises that no HTML
error page ever leaves a service or the gateway, so this worker hands gunicorn a socket
stand-in that rewrites that page into the shared error shape (chassis.responses.api_error),
same status. `service_hooks` makes it every service's worker (the gateway has its own, gateway.worker).

It also closes a connection whose request body was left unread (an early 413) with a
lingering close, so that the answer reaches the client: see `_linger`.
"""

import contextlib
import socket
import time

from gunicorn.workers.base import Worker
from gunicorn.workers.gthread import ThreadWorker

from chassis.responses import api_error

__all__ = ["JSONErrorWorker"]

# A lingering close reads at most this long and this much of what the client still sends:
# enough to take in the rest of a body of several MiB (tens of milliseconds on a LAN), while a
# client that keeps sending holds a thread of the pool no longer than LINGER_SECONDS.
LINGER_SECONDS = 2.0
LINGER_BYTES = 16 * 1024 * 1024


class _JSONErrorSocket:
    """The client socket, except that the one page gunicorn writes to it leaves as JSON."""

    def __init__(self, sock, served_by: str | None = None):
        self._sock = sock
        self._served_by = served_by

    def __getattr__(self, name):
        return getattr(self._sock, name)

    def sendall(self, data: bytes) -> None:
        status_line = data.split(b"\r\n", 1)[0].decode("latin-1")
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
        if self._served_by:
            head += f"X-Served-By: {self._served_by}\r\n"
        self._sock.sendall(head.encode("latin-1") + b"\r\n" + body)


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

    def handle(self, conn):
        # In a thread of the pool, not on the main thread that gunicorn closes the
        # connection on once this returns False: a lingering close stops no other client.
        keepalive = super().handle(conn)
        if keepalive is False and not conn.is_http2 and _unread(conn.sock):
            _linger(conn.sock)
        return keepalive

    def handle_error(self, req, client, addr, exc):
        super().handle_error(
            req, _JSONErrorSocket(client, self._served_by()), addr, exc
        )

    def _served_by(self) -> str | None:
        # DESIGN.md: every service response carries X-Served-By, gunicorn's own included.
        config = getattr(getattr(self, "wsgi", None), "config", None)
        return config.get("INSTANCE_ID") if isinstance(config, dict) else None


def _unread(sock) -> bool:
    """Whether the client has sent bytes that were not read: closing now would send RST."""
    try:
        return bool(sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT))
    except (OSError, ValueError):  # nothing waiting, socket closed; TLS takes no flags
        return False


def _linger(sock) -> None:
    """Close after an answer given before the request body was read (a 413 for a body
    over the limit), without losing that answer.

    Closing with unread bytes makes the kernel send RST, and the client, still sending its
    body, gets a reset instead of the answer (most clients send the whole body before they
    read). gunicorn reads at most some 64 KiB of it before it closes. Here, as the gateway does
    (gateway.server), the write side is shut after the answer -- the client sees its end --
    and what still comes is read and dropped until the client closes, for at most
    LINGER_SECONDS and LINGER_BYTES. Reading is shut at the end: gunicorn's own drain before
    its close, on the worker's main thread, then stops at what is already received instead
    of waiting for more from a client that goes on sending."""
    deadline = time.monotonic() + LINGER_SECONDS
    dropped = 0
    try:
        sock.shutdown(socket.SHUT_WR)
        while dropped < LINGER_BYTES and (left := deadline - time.monotonic()) > 0:
            sock.settimeout(left)
            data = sock.recv(65536)
            if not data:
                break
            dropped += len(data)
    except OSError:  # timed out, or the client is gone
        pass
    finally:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RD)
