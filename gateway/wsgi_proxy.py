"""The `/api/...` request path as plain WSGI, in front of the Flask app.

Proxied requests skip Flask's routing and request context: the route table decides, and
every answer -- upstream or error -- is built here. Paths under `/api/views/` belong to the
gateway's own aggregation views and go to Flask.
"""

import contextlib
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from http import HTTPStatus

from chassis.responses import api_error
from gateway.accesslog import AccessLog
from gateway.directory import Directory
from gateway.headers import (
    downstream_response_headers,
    request_id,
    traceparent,
    upstream_request_headers,
    wsgi_request_headers,
)
from gateway.paths import API_PREFIX, BadPath, clean_target, raw_target
from gateway.proxy import Forwarder, Result
from gateway.settings import GatewaySettings

__all__ = ["METHODS", "BodyError", "ProxyMiddleware", "read_body"]

access_log = AccessLog(logging.getLogger("gateway.access"))

METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
VIEWS_PREFIX = API_PREFIX + "/views/"
READ_CHUNK = 64 * 1024


@dataclass
class Answer:
    """A response as plain WSGI parts: proxied answers skip werkzeug's Response object."""

    status: int
    headers: list[tuple[str, str]]
    body: Iterable[bytes]

    def has(self, name: str) -> bool:
        lower = name.lower()
        return any(n.lower() == lower for n, _ in self.headers)

    @property
    def status_line(self) -> str:
        return _STATUS_LINES.get(self.status) or f"{self.status} Unknown"


_STATUS_LINES = {s.value: f"{s.value} {s.phrase}" for s in HTTPStatus}


class BodyError(Exception):
    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class SlowClientReaper:
    """Ends body reads that miss their deadline, whatever the client's pace.

    A socket timeout bounds each recv, not the whole body: a client sending one byte just
    before every timeout would hold a worker thread for ever. One thread per process shuts
    the read side of overdue sockets, which ends the read at once.
    """

    TICK = 0.1

    def __init__(self):
        self._pending: dict[int, tuple[float, socket.socket]] = {}
        self._reaped: set[int] = set()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._pid = 0

    def watch(self, sock: socket.socket, deadline: float) -> int:
        with self._lock:
            if self._thread is None or self._pid != os.getpid():
                self._pid = os.getpid()
                self._thread = threading.Thread(
                    target=self._run, name="gateway-reaper", daemon=True
                )
                self._thread.start()
            token = id(sock)
            self._pending[token] = (deadline, sock)
            return token

    def release(self, token: int) -> bool:
        """Stop watching; True when the deadline had passed and the read was cut."""
        with self._lock:
            self._pending.pop(token, None)
            if token in self._reaped:
                self._reaped.discard(token)
                return True
            return False

    def _run(self) -> None:
        while True:
            time.sleep(self.TICK)
            now = time.monotonic()
            with self._lock:
                overdue = [t for t, (d, _) in self._pending.items() if d <= now]
                for token in overdue:
                    _, sock = self._pending.pop(token)
                    self._reaped.add(token)
                    # shutdown wakes the recv in progress; the tiny timeout makes the
                    # next one fail even if the client keeps dripping bytes.
                    with contextlib.suppress(OSError):
                        sock.settimeout(0.001)
                        sock.shutdown(socket.SHUT_RD)


_reaper = SlowClientReaper()


def read_body(environ, limit: int, timeout: float) -> bytes:
    """The whole request body (so a retry can resend it), bounded in size and in time."""
    length = environ.get("CONTENT_LENGTH", "")
    chunked = "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
    if not length and not chunked:
        return b""
    if length and not length.isdigit():
        raise BodyError(400, "bad_request", "Content-Length is not a number")
    expected = int(length) if length else None
    if expected is not None and expected > limit:
        raise BodyError(413, "body_too_large", f"request body over {limit} bytes")
    if expected == 0:
        return b""
    sock = environ.get("gunicorn.socket")
    token = None
    if sock is not None:
        # Slow clients (slowloris) must not hold a worker thread for longer than this.
        token = _reaper.watch(sock, time.monotonic() + timeout)
    failure = None
    try:
        data = _read(environ["wsgi.input"], expected, limit)
    except BodyError:
        raise
    except Exception as exc:  # noqa: BLE001 - gunicorn's parse errors have no common base
        failure = exc
    finally:
        reaped = token is not None and _reaper.release(token)
    if reaped:
        sock.settimeout(None)  # the answer itself must not time out
        raise BodyError(408, "request_timeout", "request body arrived too slowly")
    if failure is not None:
        raise BodyError(400, "bad_request", f"unreadable body: {failure}")
    if expected is not None and len(data) < expected:
        raise BodyError(400, "bad_request", "request body shorter than Content-Length")
    return data


def _read(stream, expected: int | None, limit: int) -> bytes:
    parts, total = [], 0
    want = expected if expected is not None else limit + 1
    while total < want:
        chunk = stream.read(min(READ_CHUNK, want - total))
        if not chunk:
            break
        parts.append(chunk)
        total += len(chunk)
    if total > limit:
        raise BodyError(413, "body_too_large", f"request body over {limit} bytes")
    return b"".join(parts)


class ProxyMiddleware:
    def __init__(
        self,
        app: Callable,
        settings: GatewaySettings,
        directory: Directory,
        forwarder: Forwarder,
        metrics,
        served_by: str,
    ):
        self.app = app
        self.settings = settings
        self.directory = directory
        self.forwarder = forwarder
        self.metrics = metrics
        self.served_by = served_by

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        if not path.startswith(API_PREFIX + "/") or path.startswith(VIEWS_PREFIX):
            return self.app(environ, start_response)
        answer = self.handle(environ)
        start_response(answer.status_line, answer.headers)
        return answer.body

    def handle(self, environ) -> Answer:
        started = time.perf_counter()
        self.directory.start()
        rid = request_id(environ.get("HTTP_X_REQUEST_ID"))
        trace = traceparent(environ.get("HTTP_TRACEPARENT"))
        method = environ.get("REQUEST_METHOD", "GET")
        service, result = "-", None
        try:
            service, result = self._forward(environ, method, rid, trace)
            response = self._response(result)
        except BodyError as exc:
            response = self._error(exc.status, exc.code, exc.message)
        except BadPath as exc:
            response = self._error(400, "bad_path", str(exc))
        if not response.has("X-Request-ID"):
            response.headers.append(("X-Request-ID", rid))
        if result is not None and environ.get("HTTP_X_GATEWAY_DEBUG") == "1":
            attempts = ", ".join(a.describe() for a in result.attempts) or "none"
            response.headers.append(("X-Gateway-Attempts", attempts))
        self._record(environ, method, service, result, response, started, rid, trace)
        return response

    def _forward(self, environ, method, rid, trace) -> tuple[str, Result]:
        path, query = clean_target(raw_target(environ))
        if method not in METHODS:
            return "-", Result(
                405,
                headers=[("Allow", ", ".join(METHODS))],
                error_code="method_not_allowed",
                message=f"method {method} is not proxied",
            )
        upstream_path = path[len(API_PREFIX) :]
        view = self.directory.view()
        route = view.table.match(upstream_path)
        if route is None:
            return "-", Result(
                404, error_code="no_route", message=f"no service claims {path}"
            )
        s = self.settings
        body = read_body(environ, s.max_body_bytes, s.client_timeout)
        headers = upstream_request_headers(
            wsgi_request_headers(environ),
            client_addr=environ.get("REMOTE_ADDR", ""),
            scheme=environ.get("wsgi.url_scheme", "http"),
            request_id=rid,
            traceparent=trace,
            trust_forwarded=s.trust_forwarded,
        )
        target = f"{upstream_path}?{query}" if query else upstream_path
        result = self.forwarder.forward(
            view.services[route.service],
            method,
            target,
            headers,
            body,
            idempotency_key="HTTP_IDEMPOTENCY_KEY" in environ,
        )
        return route.service, result

    def _response(self, result: Result) -> Answer:
        if result.error_code is not None:
            return self._error(
                result.status, result.error_code, result.message, result.headers
            )
        body = result.stream() if result.stream else [result.body]
        return Answer(result.status, downstream_response_headers(result.headers), body)

    def _error(self, status, code, message, headers=()) -> Answer:
        response = api_error(status, code, message, headers=dict(headers))
        response.headers["X-Served-By"] = self.served_by
        return Answer(status, response.headers.to_wsgi_list(), [response.get_data()])

    def _record(self, environ, method, service, result, response, started, rid, trace):
        elapsed = time.perf_counter() - started
        instance = result.instance if result is not None else "-"
        status = response.status
        if service != "-":
            m = self.metrics
            m.child(m.requests, service, str(status), instance).inc()
            m.child(m.latency, service).observe(elapsed)
        if not access_log.enabled():
            return
        if result is not None and len(result.attempts) > 1:
            tried = ", ".join(a.describe() for a in result.attempts)
        else:
            tried = instance
        target = environ.get("RAW_URI") or environ.get("PATH_INFO", "")
        access_log.info(
            f"{method} {target} -> {service} {tried} {status} {elapsed * 1000:.1f}ms"
            f" request_id={rid} traceparent={trace}"
        )
