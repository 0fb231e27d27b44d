"""gunicorn gthread worker whose own error pages are JSON, for every Switchyard service.

gunicorn answers requests it cannot parse (bad request line, 414 request line too long,
431 header too large, invalid header, 501 unsupported transfer coding...) before the app
sees them, and answers an exception that escapes the app with a bare 500 -- each time with
a small HTML page written by `gunicorn.util.write_error`. DESIGN.md promises that no HTML
error page ever leaves a service or the gateway, so this worker hands gunicorn a socket
stand-in that rewrites that page into the shared error shape (chassis.responses.api_error),
same status. `service_hooks` makes it every service's worker (the gateway has its own, gateway.worker).
"""

from gunicorn.workers.base import Worker
from gunicorn.workers.gthread import ThreadWorker

from chassis.responses import api_error

__all__ = ["JSONErrorWorker"]


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

    def handle_error(self, req, client, addr, exc):
        super().handle_error(
            req, _JSONErrorSocket(client, self._served_by()), addr, exc
        )

    def _served_by(self) -> str | None:
        # DESIGN.md: every service response carries X-Served-By, gunicorn's own included.
        config = getattr(getattr(self, "wsgi", None), "config", None)
        return config.get("INSTANCE_ID") if isinstance(config, dict) else None
