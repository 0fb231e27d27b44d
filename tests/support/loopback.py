"""In-process HTTP servers on free loopback ports, served from a daemon thread."""

import threading
from http.server import ThreadingHTTPServer


class QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # a client that timed out and left is expected in these tests


def loopback_server(handler_class) -> QuietServer:
    """`handler_class` bound to a free port on 127.0.0.1 (not serving yet)."""
    return QuietServer(("127.0.0.1", 0), handler_class)


def serve_in_background(server) -> threading.Thread:
    """Serve `server` from a daemon thread that looks for shutdown every 50 ms."""
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    return thread


def shut(server) -> None:
    server.shutdown()
    server.server_close()
