"""gunicorn worker for the gateway: kept-alive connections served by the thread that
answered them, on top of chassis.worker.JSONErrorWorker (gunicorn's own error pages as
JSON, as in every service).

Lingering: stock gthread hands every kept-alive connection back to its main loop after each
response (epoll register, a pipe write to wake the loop, a thread-pool submit when the next
request arrives) -- three thread hand-offs and half a dozen syscalls per request, which cost
more CPU than the proxying itself. Here the thread that answered waits a short while for
the next request on the same connection and serves it directly. It gives the connection
back to the loop as soon as another connection is queued for a thread, when the worker
stops, or after `LINGER` seconds of silence, so lingering never keeps anyone waiting
longer than one `LINGER_SLICE`, and idle keep-alive connections still cost no thread.

Every syscall of a request releases the GIL and, with a thread per busy connection, hands
it to another thread: futex calls and context switches that cost more than the syscall.
So the worker also spares the ones that do no work: a response goes out in one send
(gunicorn writes its head and its body separately), and a fully read request is not
"drained" again (two socket mode changes each time).
"""

import contextlib
import select
import threading

from gunicorn.http.body import LengthReader

from chassis.worker import JSONErrorWorker

__all__ = ["LingeringWorker", "OneSend"]

LINGER = 0.1  # seconds a thread waits for the next request on its connection
LINGER_SLICE = 0.002  # how often a lingering thread looks for queued connections
COALESCE_LIMIT = 64 * 1024  # a larger body is not copied to join its head


class OneSend:
    """A client socket that holds a response's head -- gunicorn's first write of a final
    response -- back until the body's first write, and sends both in one syscall.
    Interim answers (1xx: 103 Early Hints) leave at once; other ways of sending (send,
    sendfile) and `flush()` send what is held first; the rest is the socket's own."""

    def __init__(self, sock):
        self._sock = sock
        self._held: bytes | None = None  # None: nothing written yet

    def sendall(self, data) -> None:
        if self._held is None and not _interim(data):
            self._held = bytes(data)
            return
        if self._held and len(data) <= COALESCE_LIMIT:
            data, self._held = self._held + data, b""
        self.flush()
        self._sock.sendall(data)

    def flush(self) -> None:
        if self._held:
            held, self._held = self._held, b""
            self._sock.sendall(held)

    def send(self, data, *flags) -> int:
        self.flush()
        return self._sock.send(data, *flags)

    def sendfile(self, *args, **kwargs):
        self.flush()
        return self._sock.sendfile(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._sock, name)


def _interim(data) -> bool:
    """Whether bytes are an interim (1xx) answer's head: b"HTTP/1.1 103 ..." """
    return bytes(data[:5]) == b"HTTP/" and bytes(data[9:10]) == b"1"


class LingeringWorker(JSONErrorWorker):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._queued = 0  # connections submitted to the pool, not yet picked up
        self._queued_lock = threading.Lock()

    def enqueue_req(self, conn):
        with self._queued_lock:
            self._queued += 1
        super().enqueue_req(conn)

    def handle(self, conn):
        with self._queued_lock:
            self._queued -= 1
        result = super().handle(conn)
        while result is True and self._next_request_arrives(conn):
            result = super().handle(conn)
        return result

    def handle_request(self, req, conn):
        sock, conn.sock = conn.sock, OneSend(conn.sock)
        try:
            return super().handle_request(req, conn)
        finally:
            with contextlib.suppress(OSError):  # a gone client: gunicorn's to notice
                conn.sock.flush()  # a head without a body (HEAD, 204, 304)
            conn.sock = sock

    def _keepalive_after(self, conn, keepalive):
        # gunicorn drains an unread body under a deadline it sets as a socket timeout,
        # and its parser drains again before the next request, restoring the socket's
        # timeout in a `finally`: socket mode changes (syscalls) even when there is
        # nothing to drain. A length-framed body whose bytes are all off the socket
        # needs neither, so the parser also forgets the finished message.
        body = getattr(conn.parser.mesg, "body", None)
        reader = getattr(body, "reader", None)
        if (
            keepalive
            and isinstance(reader, LengthReader)
            and reader.length == 0
            and not body.failed
        ):
            conn.parser.mesg = None
            return True
        return super()._keepalive_after(conn, keepalive)

    def _next_request_arrives(self, conn) -> bool:
        """Whether this thread should serve the connection's next request itself."""
        if conn.parser.unreader.buf.getvalue():
            return self.alive  # pipelined: the next request is already read
        try:
            poller = select.poll()
            poller.register(conn.sock, select.POLLIN)
        except (OSError, ValueError):
            return False  # closed under us: the main loop sorts it out
        waited = 0.0
        while waited < LINGER and self.alive and not self._queued:
            if poller.poll(LINGER_SLICE * 1000):
                return True  # data, or a hang-up that the parser will notice
            waited += LINGER_SLICE
        return False
