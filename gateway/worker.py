"""gunicorn worker whose own error pages (malformed requests, oversized headers) are JSON.

gunicorn answers requests it cannot parse before the app sees them, with a small HTML page.
DESIGN.md promises that no HTML error leaves the gateway, so the worker hands gunicorn a
socket stand-in that rewrites that page into the shared error shape, same status.
"""

import json

from gunicorn.workers.gthread import ThreadWorker

__all__ = ["JSONErrorWorker"]


class _JSONErrorSocket:
    def __init__(self, sock):
        self._sock = sock

    def __getattr__(self, name):
        return getattr(self._sock, name)

    def sendall(self, data: bytes) -> None:
        status_line = data.split(b"\r\n", 1)[0].decode("latin-1")
        _, status, reason = (status_line.split(" ", 2) + ["", ""])[:3]
        code = reason.lower().replace(" ", "_") or "bad_request"
        body = json.dumps({"error": {"code": code, "message": reason, "details": None}})
        head = (
            f"HTTP/1.1 {status} {reason}\r\n"
            "Connection: close\r\n"
            "Content-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        )
        self._sock.sendall(head.encode("latin-1") + body.encode())


class JSONErrorWorker(ThreadWorker):
    def handle_error(self, req, client, addr, exc):
        super().handle_error(req, _JSONErrorSocket(client), addr, exc)
