"""The HTTP server: one thread per connection (blocked watchers each hold one),
HTTP/1.1 keep-alive, Content-Length on every answer, plain-text errors."""

import logging
import select
import socket
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from devconsul import acl, static
from devconsul.agent import Agent
from devconsul.config import AgentConfig
from devconsul.endpoints import all_routes
from devconsul.errors import HTTPError
from devconsul.events import UserEvents
from devconsul.messages import Request, Response, redirect_response, text_response
from devconsul.queries import AnswerCache
from devconsul.routing import Router, check_method

log = logging.getLogger("devconsul.http")

IDLE_TIMEOUT = 120.0
MAX_BODY = 16 * 1024 * 1024


class App:
    """Everything a handler needs: configuration, agent, store and routes."""

    def __init__(self, config: AgentConfig, agent: Agent | None = None):
        self.config = config
        self.agent = agent or Agent(config)
        self.store = self.agent.store
        self.router = Router(all_routes(), mounts=[static.MOUNT])
        self.answers = AnswerCache()
        self.events = UserEvents()

    def handle(self, req: Request) -> Response:
        try:
            return self._dispatch(req)
        except HTTPError as exc:
            return text_response(exc.status, exc.message, exc.headers)
        except Exception:
            log.exception("%s %s failed", req.method, req.path)
            return text_response(500, "Internal error")

    def _dispatch(self, req: Request) -> Response:
        # Consul wraps its whole mux in cleanhttp.PrintablePathCheckHandler: a
        # decoded path holding a character unicode.IsPrint refuses (as does
        # str.isprintable: controls, format characters, non-ASCII spaces) is
        # a bare 400, before any redirect or handler.
        if not req.path.isprintable():
            return Response(400)
        canonical = self.router.canonical(req.path)
        if canonical != req.path:
            return redirect_response(req, canonical)
        if req.path.startswith(static.MOUNT):
            return static.serve(req)
        if req.path == "/":
            # Consul's Index handler: http.Redirect to the UI, query dropped.
            return redirect_response(req, "/ui/", keep_query=False)
        matched = self.router.match(req.path) if req.path.startswith("/v1/") else None
        if matched is None:
            return unknown_path(req.path)
        route, req.arg = matched
        if req.method == "OPTIONS":
            return Response(200, headers={"Allow": route.allow})
        check_method(route, req.method)
        acl.enforce(req, self.config.acl_token)
        return route.handler(self, req)


def unknown_path(path: str) -> Response:
    """Consul's Index handler, where Go's mux sends every path no pattern
    claims: a 404 whose line of text (Fprintln) depends on "/v1/" being in
    the path anywhere."""
    if "/v1/" in path:
        text = "Invalid URL path: not a recognized HTTP API endpoint"
    else:
        text = (
            "Invalid URL path: if attempting to use the HTTP API, ensure the "
            "path starts with '/v1/'"
        )
    return text_response(404, text + "\n")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = IDLE_TIMEOUT
    server: "AgentHTTPServer"

    def setup(self) -> None:
        super().setup()
        # Headers and body leave in separate writes; with Nagle on, the body
        # waits for the client's delayed ACK (~40 ms) and every watcher wake-up
        # pays for it.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _serve(self) -> None:
        body = self._read_body()
        if body is None:
            return
        # The target as sent: http.server reduces a leading "//" in self.path,
        # which Consul's router would answer with a redirect.
        target = self.requestline.split()[1]
        req = Request(self.command, target, self.headers, body)
        resp = self.server.app.handle(req)
        self._write(resp, head_only=self.command == "HEAD")

    do_GET = do_PUT = do_POST = do_DELETE = do_OPTIONS = do_HEAD = do_PATCH = _serve

    def _read_body(self) -> bytes | None:
        """The whole body, or None after answering a framing error and closing.

        Read before answering anything, or leftovers would be parsed as the next
        request on this keep-alive connection.
        """
        chunked = "chunked" in (self.headers.get("Transfer-Encoding") or "").lower()
        try:
            return self._read_chunked() if chunked else self._read_sized()
        except HTTPError as exc:
            self.close_connection = True
            self._write(text_response(exc.status, exc.message))
            return None

    def _read_sized(self) -> bytes:
        length = self.headers.get("Content-Length") or "0"
        if not length.isdigit():
            raise HTTPError(400, "Invalid Content-Length")
        if int(length) > MAX_BODY:
            raise HTTPError(413, "Request body too large")
        return self.rfile.read(int(length))

    def _read_chunked(self) -> bytes:
        chunks, total = [], 0
        while True:
            try:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
            except ValueError:
                raise HTTPError(400, "Invalid chunked encoding") from None
            total += size
            if total > MAX_BODY:
                raise HTTPError(413, "Request body too large")
            if size == 0:
                while self.rfile.readline().strip():
                    pass
                return b"".join(chunks)
            chunks.append(self.rfile.read(size))
            self.rfile.readline()

    def _write(self, resp: Response, head_only: bool = False) -> None:
        if resp.stream is not None:
            self._write_stream(resp)
            return
        self.send_response(resp.status)
        if resp.content_type:
            self.send_header("Content-Type", resp.content_type)
        for name, value in resp.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(resp.body)))
        self.end_headers()
        if not head_only:
            self.wfile.write(resp.body)

    def _write_stream(self, resp: Response) -> None:
        """A chunked body sent as the stream yields, until it ends or the
        client goes away; the connection is not reused afterwards."""
        self.close_connection = True
        self.send_response(resp.status)
        self.send_header("Content-Type", resp.content_type or "text/plain")
        for name, value in resp.headers.items():
            self.send_header(name, value)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        try:
            self.wfile.flush()
            for chunk in resp.stream:
                if chunk is None:
                    if self._client_gone():
                        return
                    continue
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
        except (ConnectionError, TimeoutError):
            log.debug("%s left a streamed answer", self.address_string())
        finally:
            resp.stream.close()

    def _client_gone(self) -> bool:
        readable, _, _ = select.select([self.connection], [], [], 0)
        if not readable:
            return False
        try:
            return self.connection.recv(1, socket.MSG_PEEK) == b""
        except OSError:
            return True

    def version_string(self) -> str:
        return "devconsul"

    def log_message(self, format: str, *args) -> None:
        log.debug("%s %s", self.address_string(), format % args)


class AgentHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    # Hundreds of watchers may connect at once; the stdlib default backlog is 5.
    request_queue_size = 1024

    def __init__(self, address: tuple[str, int], app: App):
        self.app = app
        super().__init__(address, Handler)

    def handle_error(self, request, client_address) -> None:
        # A client that hung up -- a watcher stopped during its blocking query -- is
        # routine, and Consul logs nothing for it; the stdlib prints a traceback.
        if isinstance(sys.exc_info()[1], ConnectionError):
            log.debug("%s went away before its answer", client_address[0])
            return
        super().handle_error(request, client_address)
