"""The services' gunicorn worker. Its own error pages leave a service as JSON: the socket
stand-in alone, then a real user-service under gunicorn (chassis.worker via service_hooks)
fed raw requests. A quit signal stops it at any moment, and an answer given before a large
body was read reaches the client. A thread of its pool only takes a request once all of it is
here, so that slow and idle clients keep nobody waiting, Consul's check least of all."""

import contextlib
import gc
import json
import selectors
import signal
import socket
import threading
import time

import pytest
import requests
from gunicorn.config import Config
from gunicorn.glogging import Logger
from gunicorn.workers.gthread import _DEFER, TConn, ThreadWorker

from chassis import arrival
from chassis import worker as worker_module
from chassis.worker import JSONErrorWorker, _JSONErrorSocket
from discovery.gunicorn_hooks import LIMIT_REQUEST_FIELD_SIZE, LIMIT_REQUEST_LINE
from tests.support.services import start_service, stop_now
from tests.support.slow_clients import dripping

# -- unit: a quit at any moment --------------------------------------------------------


@pytest.fixture
def worker(unfrozen_gc):
    cfg = Config()
    worker = JSONErrorWorker(1, 0, [], None, 30, cfg, Logger(cfg))
    worker.tpool = worker.get_thread_pool()
    worker.tpool.submit(lambda: None).result()  # one thread in the pool
    yield worker
    # No shutdown here: after a failed quit test a stuck thread holds the pool's lock. The
    # pool's idle thread ends once the pool is collected (or at the interpreter's exit).
    worker.tmp.close()


def test_a_quit_landing_while_the_main_thread_hands_over_a_connection_exits(worker):
    """A signal handler runs on the main thread, wherever it is: here inside the pool's
    submit, which holds the pool's lock. gthread's own quit took that lock again and waited
    for ever (seen in CI: a stop that only the master's SIGKILL ended)."""
    exits = []

    def quit_lands_inside_submit():
        with worker.tpool._shutdown_lock:  # what submit holds (CPython's executor)
            try:
                worker.handle_quit(signal.SIGQUIT, None)
            except SystemExit as exc:
                exits.append(exc.code)

    main = threading.Thread(target=quit_lands_inside_submit, daemon=True)
    main.start()
    main.join(5)
    assert exits == [0]
    assert not worker.alive


def test_the_pool_is_shut_down_whatever_ends_the_loop(worker, monkeypatch):
    """A quit raises SystemExit wherever the loop is; the pool's threads must still end, or
    the interpreter's exit waits for one whose start the quit interrupted."""

    def quit_mid_loop(self):
        raise SystemExit(0)

    monkeypatch.setattr(ThreadWorker, "run", quit_mid_loop)
    with pytest.raises(SystemExit):
        worker.run()
    for thread in list(worker.tpool._threads):
        thread.join(5)
        assert not thread.is_alive()


@pytest.mark.parametrize("ending", ["returns", "quit"])
def test_the_collector_is_frozen_for_the_exit_whatever_ends_the_loop(
    worker, monkeypatch, ending
):
    """The worker process exits next: its interpreter's teardown must not walk the whole
    heap with the garbage collector (most of an idle worker's time to exit)."""

    def loop_ends(self):
        if ending == "quit":
            raise SystemExit(0)

    monkeypatch.setattr(ThreadWorker, "run", loop_ends)
    with pytest.raises(SystemExit) if ending == "quit" else contextlib.nullcontext():
        worker.run()
    assert gc.get_freeze_count() > 0


# -- unit: the page gunicorn writes, rewritten --------------------------------------------


class RecordingSocket:
    def __init__(self):
        self.sent = b""

    def sendall(self, data: bytes) -> None:
        self.sent += data

    def gettimeout(self):
        return 0.0


def rewritten(
    status_line: str, served_by: str | None = None
) -> tuple[str, dict, bytes]:
    """What reaches the client when gunicorn writes its HTML page with `status_line`."""
    html = "<html><body><h1>oops</h1></body></html>"
    page = (
        f"{status_line}\r\nConnection: close\r\nContent-Type: text/html\r\n"
        f"Content-Length: {len(html)}\r\n\r\n{html}"
    )
    sock = RecordingSocket()
    _JSONErrorSocket(sock, served_by).sendall(page.encode("latin-1"))
    return parse(sock.sent)


def parse(raw: bytes) -> tuple[str, dict, bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return status_line, headers, body


@pytest.mark.parametrize(
    "status_line, code",
    [
        ("HTTP/1.1 400 Bad Request", "bad_request"),
        ("HTTP/1.1 414 URI Too Long", "uri_too_long"),
        (
            "HTTP/1.1 431 Request Header Fields Too Large",
            "request_header_fields_too_large",
        ),
        ("HTTP/1.1 501 Bad Request", "bad_request"),
        ("HTTP/1.1 500 Internal Server Error", "internal_server_error"),
    ],
)
def test_the_html_page_becomes_the_shared_error_shape(status_line, code):
    line, headers, body = rewritten(status_line)
    assert line == status_line
    assert headers["content-type"] == "application/json"
    assert headers["connection"] == "close"
    assert int(headers["content-length"]) == len(body)
    message = status_line.split(" ", 2)[2]
    assert json.loads(body) == {
        "error": {"code": code, "message": message, "details": None}
    }
    assert "x-served-by" not in headers


def test_the_instance_id_is_named_when_the_app_has_one():
    _, headers, _ = rewritten("HTTP/1.1 400 Bad Request", "user-service-h-1")
    assert headers["x-served-by"] == "user-service-h-1"


# -- unit: a thread of the pool only ever takes what has arrived ---------------------------


def echo_length(environ, start_response):
    body = environ["wsgi.input"].read()
    start_response("200 OK", [("Content-Length", str(len(str(len(body)))))])
    return [str(len(body)).encode()]


@pytest.fixture
def connection(worker):
    """(server side as gthread's TConn, client socket) of a fresh connection to `worker`,
    which serves echo_length."""
    worker.wsgi = echo_length
    server, client = socket.socketpair()
    conn = TConn(worker.cfg, server, ("127.0.0.1", 1), ("127.0.0.1", 2))
    yield conn, client
    server.close()
    client.close()


def handled(worker, conn):
    """What worker.handle(conn) returns, run in a thread: it must not wait on the client."""
    result = []
    thread = threading.Thread(target=lambda: result.append(worker.handle(conn)))
    thread.start()
    thread.join(5)
    assert not thread.is_alive(), "handle() waited for the client"
    return result[0]


def answer(client) -> bytes:
    client.settimeout(5)
    return client.recv(65536)


HEAD = b"POST /x HTTP/1.1\r\nHost: u\r\nContent-Length: 5\r\n"


@pytest.mark.parametrize(
    "first, rest",
    [(b"", HEAD + b"\r\nabcde"), (HEAD, b"\r\nabcde"), (HEAD + b"\r\nab", b"cde")],
    ids=["idle", "part-of-the-head", "part-of-the-body"],
)
def test_a_request_goes_back_to_the_poller_until_all_of_it_is_here(
    worker, connection, first, rest
):
    conn, client = connection
    client.sendall(first)
    assert handled(worker, conn) is _DEFER
    client.sendall(rest)
    assert handled(worker, conn) is True
    assert answer(client).endswith(b"\r\n\r\n5")


def test_a_request_not_in_by_its_deadline_gets_a_json_408(
    worker, connection, monkeypatch
):
    monkeypatch.setattr(arrival, "RECEIVE_SECONDS", 0.0)
    conn, client = connection
    client.sendall(HEAD)
    # Answered, and lingering until the client closes.
    assert handled(worker, conn) is _DEFER
    line, _, body = parse(answer(client))
    assert line == "HTTP/1.1 408 Request Timeout"
    assert json.loads(body)["error"]["code"] == "request_timeout"


def test_a_client_that_expects_100_continue_gets_it_before_its_body(worker, connection):
    conn, client = connection
    client.sendall(HEAD + b"Expect: 100-continue\r\n\r\n")
    assert handled(worker, conn) is _DEFER
    assert answer(client) == b"HTTP/1.1 100 Continue\r\n\r\n"
    client.sendall(b"abcde")
    assert handled(worker, conn) is True
    assert answer(client).endswith(b"\r\n\r\n5")


def test_a_stopping_worker_waits_for_the_rest_of_a_request_begun(worker, connection):
    """Stopping, gthread hands a deferred connection with bytes held straight back to the
    pool: handle() waits for the rest itself rather than spin."""
    conn, client = connection
    client.sendall(HEAD)
    worker.alive = False
    threading.Timer(0.2, client.sendall, [b"\r\nabcde"]).start()
    assert handled(worker, conn) is _DEFER  # answered, lingering: the worker stops
    assert answer(client).endswith(b"\r\n\r\n5")


def refuse_unread(environ, start_response):
    start_response("413 Request Entity Too Large", [("Content-Length", "0")])
    return [b""]


def test_a_client_still_sending_a_body_refused_unread_is_not_cut_off(
    worker, connection
):
    """All it had sent was taken in before the answer, so nothing unread on the socket
    tells that more is coming: the close lingers until the client closes, or the rest of
    its body would meet a reset and the answer be lost with it."""
    conn, client = connection
    worker.wsgi = refuse_unread
    client.sendall(HEAD.replace(b"5", b"2000000") + b"\r\n" + b"x" * 10)
    assert handled(worker, conn) is _DEFER
    client.sendall(b"x" * 1000)
    assert handled(worker, conn) is _DEFER
    client.shutdown(socket.SHUT_WR)
    assert handled(worker, conn) is False
    assert answer(client).startswith(b"HTTP/1.1 413 ")


# -- unit: a lingering close is bounded and holds no thread --------------------------------


def linger_against(worker, send) -> float:
    """Seconds a lingering close takes on a connection whose client runs `send(its
    socket)` in a thread until the connection fails; each step as the poller would run it."""
    server, client = socket.socketpair()
    conn = TConn(worker.cfg, server, ("127.0.0.1", 1), ("127.0.0.1", 2))

    def keep_sending():
        try:
            send(client)
        except OSError:  # the lingering close is over
            pass

    sender = threading.Thread(target=keep_sending, daemon=True)
    sender.start()
    started = time.monotonic()
    step = worker._close(conn)
    while step is _DEFER:
        with selectors.DefaultSelector() as poller:  # gthread's poller
            poller.register(server, selectors.EVENT_READ)
            poller.select(1.0)
        step = handled(worker, conn)
    elapsed = time.monotonic() - started
    assert step is False
    server.close()
    sender.join(5)
    assert not sender.is_alive()
    client.close()
    return elapsed


def flood(sock):
    while True:
        sock.sendall(b"x" * 65536)


def trickle(sock):
    while True:
        sock.sendall(b"x")
        time.sleep(0.02)


def test_a_lingering_close_stops_reading_after_its_bytes(worker, monkeypatch):
    monkeypatch.setattr(worker_module, "LINGER_BYTES", 1024 * 1024)
    monkeypatch.setattr(worker_module, "LINGER_SECONDS", 30.0)
    assert linger_against(worker, flood) < 5


def test_a_lingering_close_stops_reading_after_its_time(worker, monkeypatch):
    monkeypatch.setattr(worker_module, "LINGER_SECONDS", 0.3)
    assert 0.3 <= linger_against(worker, trickle) < 5


def test_a_lingering_close_ends_when_the_client_closes(worker, monkeypatch):
    # A limit far above the bound, so that the bound tells one from the other under load.
    monkeypatch.setattr(worker_module, "LINGER_SECONDS", 30.0)

    def send_then_close(sock):
        sock.sendall(b"x" * 100_000)
        sock.close()

    assert linger_against(worker, send_then_close) < 5


# -- integration: a real user-service ------------------------------------------------------


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    database = tmp_path_factory.mktemp("worker") / "user-service.db"
    process, url = start_service(
        "user_service", f"sqlite:///{database}", workers=1, threads=2
    )
    yield int(url.rsplit(":", 1)[1])
    stop_now(process)


def exchange(port: int, raw: bytes) -> tuple[str, dict, bytes]:
    """Send raw bytes, read until the server closes: (status line, headers, body)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(raw)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    return parse(data)


@pytest.mark.integration
@pytest.mark.parametrize(
    "raw, status",
    [
        (b"NOT AN HTTP REQUEST LINE\r\n\r\n", 400),
        (
            b"GET /users HTTP/1.1\r\nHost: u\r\nX-Big: "
            + b"a" * LIMIT_REQUEST_FIELD_SIZE
            + b"\r\n\r\n",
            431,
        ),
        (b"GET /" + b"a" * LIMIT_REQUEST_LINE + b" HTTP/1.1\r\nHost: u\r\n\r\n", 414),
        (b"GET /users HTTP/1.1\r\nHost: u\r\nX-A : b\r\n\r\n", 400),
        (b"GET /users HTTP/9.9\r\nHost: u\r\n\r\n", 400),
        (
            b"POST /users HTTP/1.1\r\nHost: u\r\nTransfer-Encoding: xchunked\r\n\r\n",
            501,
        ),
    ],
    ids=[
        "malformed-request-line",
        "header-over-limit",
        "request-line-too-long",
        "invalid-header",
        "bad-version",
        "unsupported-coding",
    ],
)
def test_requests_gunicorn_cannot_parse_get_json_errors(service, raw, status):
    line, headers, body = exchange(service, raw)
    assert int(line.split(" ")[1]) == status, (line, body)
    assert headers["content-type"] == "application/json"
    assert b"<html" not in body.lower()
    error = json.loads(body)["error"]
    assert error["code"] and error["message"] and error["details"] is None
    assert headers["x-served-by"] == f"user-service-127.0.0.1-{service}"


LIMIT = 1024 * 1024  # the services' MAX_BODY_BYTES by default
USER = b'{"name": "T", "email": "t@example.com"}'


def chunked_post(port: int, body: bytes) -> tuple[str, dict, bytes]:
    """POST /users with `body` sent chunked, 64 KiB a chunk (no Content-Length)."""
    chunks = b"".join(
        b"%x\r\n%s\r\n" % (len(part), part)
        for part in (body[i : i + 65536] for i in range(0, len(body), 65536))
    )
    return exchange(
        port,
        b"POST /users HTTP/1.1\r\nHost: u\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        + chunks
        + b"0\r\n\r\n",
    )


@pytest.mark.integration
@pytest.mark.parametrize("past", [1, 100 * 1024], ids=["one-byte-over", "100k-over"])
def test_a_chunked_body_over_the_limit_is_413_not_parsed_cut_short(service, past):
    """Werkzeug hands back a chunked body cut at MAX_CONTENT_LENGTH, without an error: a
    valid JSON object at the front, anything after it, would have been stored."""
    body = USER + b" " * (LIMIT - len(USER)) + b"X" * past
    line, _, reply = chunked_post(service, body)
    assert line.split(" ")[1] == "413", (line, reply)
    assert json.loads(reply)["error"]["code"] == "request_entity_too_large"


@pytest.mark.integration
@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_large_body_refused_before_it_is_read_still_gets_its_413(service, chunked):
    """The 413 goes out before the body is read; the client, like most, sends the whole body
    before it reads. Closed with the rest unread, the connection was reset under the client
    (a broken pipe, the answer lost) nearly every time: many tries show it is not luck."""
    body = b"x" * (5 * 1024 * 1024)
    for _ in range(20):
        if chunked:
            line, headers, reply = chunked_post(service, body)
        else:
            line, headers, reply = exchange(
                service,
                b"POST /users HTTP/1.1\r\nHost: u\r\nContent-Type: application/json\r\n"
                b"Content-Length: %d\r\n\r\n%s" % (len(body), body),
            )
        assert line.split(" ")[1] == "413", (line, reply)
        assert int(headers["content-length"]) == len(reply)
        assert json.loads(reply)["error"]["code"] == "request_entity_too_large"


@pytest.mark.integration
def test_a_chunked_body_of_exactly_the_limit_is_read(service):
    user = USER.replace(b"t@", b"exact@")
    body = user[:-1] + b" " * (LIMIT - len(user)) + b"}"
    line, _, reply = chunked_post(service, body)
    assert line.split(" ")[1] == "201", (line, reply)
    assert json.loads(reply)["email"] == "exact@example.com"


# -- integration: slow and idle clients straight at a service's port -----------------------

HEAD_BEGUN = b"GET /users HTTP/1.1\r\nHost: u\r\n"
BODY_BEGUN = (
    b"POST /users HTTP/1.1\r\nHost: u\r\nContent-Type: application/json\r\n"
    b"Content-Length: 1000\r\n\r\n{"
)
# kind: (what each client sends at once, what it drips afterwards)
SLOW_CLIENTS = {
    "idle": (b"", b""),
    "trickling-a-head": (HEAD_BEGUN, b"X-A: b\r\n"),
    "trickling-a-body": (BODY_BEGUN, b" "),
    "trickling-a-body-over-the-limit": (
        BODY_BEGUN.replace(b"Length: 1000", b"Length: 2000000"),
        b" ",
    ),
    "waiting-for-100-continue": (
        BODY_BEGUN[:-3] + b"Expect: 100-continue\r\n\r\n",
        b"",
    ),
    "answered-never-closing": (b"GET /health HTTP/1.0\r\n\r\n", b""),
}
CHECK_TIMEOUT = 1.0  # the local stack's Consul check timeout (switchyard.plan)
# Stock gthread fails within the first second: its threads are held at once. The rest of the
# watch is for the worker's own timers on these connections, gunicorn's keepalive (idle) and
# the lingering close, each ending (a close) with a second to spare.
WATCH_SECONDS = max(Config().keepalive, worker_module.LINGER_SECONDS) + 1.0


@pytest.mark.integration
@pytest.mark.parametrize("kind", SLOW_CLIENTS)
def test_slow_and_idle_clients_keep_nobody_waiting(service, kind):
    """Consul's HTTP check hits /health on the service's own port, so clients that dawdle
    there must not make it wait. Ten times as many as the worker has threads, through the
    worker's own timers on them (WATCH_SECONDS): /health and a POST are answered within the
    check's timeout all along."""
    first, drip = SLOW_CLIENTS[kind]
    slow = [socket.create_connection(("127.0.0.1", service)) for _ in range(20)]
    try:
        for sock in slow:
            sock.sendall(first)
        with dripping(slow, drip, 0.3):
            until = time.monotonic() + WATCH_SECONDS
            while time.monotonic() < until:
                health = requests.get(
                    f"http://127.0.0.1:{service}/health", timeout=CHECK_TIMEOUT
                )
                assert health.status_code == 200
                created = requests.post(
                    f"http://127.0.0.1:{service}/users",
                    json={"name": "S", "email": f"s-{time.monotonic_ns()}@example.com"},
                    timeout=CHECK_TIMEOUT,
                )
                assert created.status_code == 201, created.text
    finally:
        for sock in slow:
            sock.close()
