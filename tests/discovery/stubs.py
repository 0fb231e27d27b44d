"""Small in-process HTTP servers on loopback ports for discovery unit tests."""

import socket
import threading
from http.server import BaseHTTPRequestHandler

from tests.support.loopback import loopback_server, serve_in_background, shut
from tests.support.processes import free_port


class StubServer:
    """Answers every request with `handler(request) -> (status, headers, body)` and records
    (method, path, headers) of each request."""

    def __init__(self, handler):
        self.requests: list[tuple[str, str, dict]] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self):
                length = int(self.headers.get("Content-Length") or 0)
                self.last_body = self.rfile.read(length)
                stub.requests.append((self.command, self.path, dict(self.headers)))
                status, headers, body = handler(self)
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_PUT = do_POST = do_DELETE = _serve

            def log_message(self, *args):
                pass

        self.server = loopback_server(Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"

    def __enter__(self):
        serve_in_background(self.server)
        return self

    def __exit__(self, *exc):
        shut(self.server)


def answer(text: str, status: int = 200):
    """A handler that always answers `text`."""
    return lambda request: (status, {"Content-Type": "text/plain"}, text.encode())


class FrozenServer:
    """Listens and never accepts: the kernel completes connections into the backlog and
    nothing ever answers, as with a SIGSTOPped process."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.sock.close()


class HangUpServer(FrozenServer):
    """Accepts TCP connections and closes them without answering: the request left, then
    the connection broke."""

    def __init__(self):
        super().__init__()
        self.accepted = 0
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            conn.recv(65536)
            conn.close()

    def __enter__(self):
        self._thread.start()
        return self


def closed_port_url() -> str:
    """A loopback URL nothing listens on: connecting is refused."""
    return f"http://127.0.0.1:{free_port()}"
