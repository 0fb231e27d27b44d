"""The gateway's server on its event loop, in-process: deadlines, limits, keep-alive,
pipelining, bodies that stream both ways. Slow and idle clients must cost nothing."""

import asyncio
import json
import socket
import threading

import pytest
import uvloop

from gateway.messages import Response
from gateway.server import Server
from gateway.settings import GatewaySettings
from tests.gateway.fakes import echo_instance
from tests.support.processes import wait_until
from tests.support.slow_clients import dripping

FAST = {"header_timeout": 0.5, "keepalive_timeout": 60.0, "client_timeout": 1.0}


@pytest.fixture
def gw(world, upstream):
    def make(**settings):
        w = world(**{**FAST, **settings})
        w.publish("echo", echo_instance("a", upstream("a")))
        return w

    return make


def get(path: str, extra: str = "") -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: t\r\n{extra}\r\n".encode()


def connect(port: int) -> tuple[socket.socket, object]:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    return sock, sock.makefile("rb")


def read_response(stream) -> tuple[int, dict, bytes]:
    """One response from a socket file: (status, lower-cased headers, body)."""
    status = int(stream.readline().split(b" ")[1])
    headers = {}
    while (line := stream.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    if headers.get("transfer-encoding") == "chunked":
        body = b""
        while size := int(stream.readline(), 16):
            body += stream.read(size)
            stream.readline()
        stream.readline()
        return status, headers, body
    return status, headers, stream.read(int(headers.get("content-length", 0)))


def target_of(body: bytes) -> str:
    return json.loads(body)["target"]


def test_slow_head_gets_408_at_the_deadline_while_another_client_is_served(gw):
    w = gw()
    slow = []
    for _ in range(8):
        sock, stream = connect(w.served.port)
        sock.sendall(b"GET /api/echo/slow HTTP/1.1\r\nHost: x\r\n")
        slow.append((sock, stream))
    try:
        # A header line now and then, never the blank line that ends the head.
        with dripping([sock for sock, _ in slow], b"X-A: b\r\n", 0.1):
            assert w.client.get("/api/echo/other").status_code == 200
            answers = [read_response(stream) for _, stream in slow]
    finally:
        for sock, stream in slow:
            stream.close()
            sock.close()
    assert {status for status, _, _ in answers} == {408}
    assert all(json.loads(b)["error"]["code"] == "request_timeout" for *_, b in answers)
    assert all(h["connection"] == "close" for _, h, _ in answers)


def test_a_slow_head_on_a_kept_alive_connection_gets_408_from_its_first_byte(gw):
    w = gw()  # the head deadline (0.5 s) is far shorter than the keep-alive one (60 s)
    sock, stream = connect(w.served.port)
    with sock, stream:
        sock.sendall(get("/api/echo/first"))
        assert read_response(stream)[0] == 200
        sock.sendall(b"GET /api/echo/slow HTTP/1.1\r\nHost: x\r\n")
        status, headers, body = read_response(stream)
    assert (status, json.loads(body)["error"]["code"]) == (408, "request_timeout")
    assert headers["connection"] == "close"


def test_hundreds_of_idle_connections_do_not_stop_a_request(gw):
    w = gw(header_timeout=30.0)
    idle = [socket.create_connection(("127.0.0.1", w.served.port)) for _ in range(400)]
    try:
        for sock in idle[
            :200
        ]:  # kept-alive after one answer each; the rest never spoke
            sock.sendall(get("/api/echo/first"))
            with sock.makefile("rb") as stream:
                assert read_response(stream)[0] == 200
        assert w.client.get("/api/echo/during").status_code == 200
        open_ones = w.served.server.connections
        wait_until(lambda: len(open_ones) >= 400, 10, what="400 open connections")
    finally:
        for sock in idle:
            sock.close()


def test_past_the_connection_cap_a_client_is_refused_at_once_and_cleanly(gw):
    w = gw(max_connections=3)
    held = [connect(w.served.port) for _ in range(3)]
    try:
        wait_until(lambda: len(w.served.server.connections) == 3, 5, what="3 open")
        sock, stream = connect(w.served.port)
        with sock, stream:
            sock.sendall(get("/api/echo/x"))
            status, headers, body = read_response(stream)
            assert (status, json.loads(body)["error"]["code"]) == (
                503,
                "too_many_connections",
            )
            assert headers["connection"] == "close" and headers["retry-after"] == "1"
            assert stream.read() == b""  # closed
        # One of the held connections is served as usual.
        held_sock, held_stream = held[0]
        held_sock.sendall(get("/api/echo/held"))
        assert read_response(held_stream)[0] == 200
    finally:
        for sock, stream in held:
            stream.close()
            sock.close()
    wait_until(lambda: not w.served.server.connections, 5, what="all closed")
    assert w.client.get("/api/echo/after").status_code == 200


def test_a_silent_connection_is_closed_without_an_answer(gw):
    w = gw()
    sock, stream = connect(w.served.port)
    with sock, stream:
        assert stream.read() == b""  # at the header deadline, nothing to answer


def test_an_idle_kept_alive_connection_is_closed_after_its_timeout(gw):
    w = gw(keepalive_timeout=0.3)
    sock, stream = connect(w.served.port)
    with sock, stream:
        sock.sendall(get("/api/echo/once"))
        assert read_response(stream)[0] == 200
        assert stream.read() == b""


def test_a_body_read_with_its_head_does_not_count_as_head(gw):
    """The head and body of a request arrive in one read, together over the bound of a
    head (every line at its limit: 637 bytes here). The body's bytes were counted as
    head bytes: 431 for a head of 60."""
    w = gw(max_request_line=100, max_headers=5, max_header_bytes=100)
    body = b"x" * 20_000
    sock, stream = connect(w.served.port)
    with sock, stream:
        sock.sendall(
            b"POST /api/echo/x HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n%s"
            % (len(body), body)
        )
        status, _, answer = read_response(stream)
    assert status == 200, answer
    assert json.loads(answer)["body"] == body.decode()


@pytest.mark.parametrize(
    ("head", "code"),
    [
        (b"X-Long: " + b"a" * 100 + b"\r\n\r\n", "header_too_large"),
        (b"".join(b"X-%d: v\r\n" % n for n in range(6)) + b"\r\n", "too_many_headers"),
        # A line that does not end: the parser would see it only at its end.
        (b"X-Endless: " + b"a" * 5000, "head_too_large"),
    ],
    ids=["one-line", "too-many-lines", "line-not-ended"],
)
def test_a_head_over_its_limits_is_431_naming_which(gw, head, code):
    w = gw(max_request_line=100, max_headers=5, max_header_bytes=100)
    sock, stream = connect(w.served.port)
    with sock, stream:
        sock.sendall(b"GET /api/echo/x HTTP/1.1\r\nHost: t\r\n" + head)
        status, _, answer = read_response(stream)
    assert (status, json.loads(answer)["error"]["code"]) == (431, code)


def head_at_every_limit(method: str, settings: GatewaySettings) -> bytes:
    """The longest legal head the limits admit: a leading empty line, the request line
    with a target at its limit, and every header line at its limit ("name: value")."""
    target = b"/api/echo/"
    target += b"a" * (settings.max_request_line - len(target))
    lines = [b"Host: t"]
    while len(lines) < settings.max_headers:
        name = b"X-%03d" % len(lines)
        lines.append(name + b": " + b"v" * (settings.max_header_bytes - len(name) - 2))
    lines[0] += b" " * (
        settings.max_header_bytes - len(lines[0])
    )  # trailing whitespace
    return b"\r\n%s %s HTTP/1.1\r\n%s\r\n\r\n" % (method, target, b"\r\n".join(lines))


@pytest.mark.parametrize(
    ("method", "status"),
    # The longest method llhttp takes (the gateway proxies no such method), and the
    # longest the gateway proxies.
    [(b"UNSUBSCRIBE", 405), (b"OPTIONS", 200)],
)
def test_a_head_at_every_limit_is_served_whichever_way_it_arrives(gw, method, status):
    w = gw(max_request_line=100, max_headers=5, max_header_bytes=100)
    head = head_at_every_limit(method, w.gateway.settings)
    # As long as a head with this method may be:
    assert len(head) == w.served.server.max_head - len(b"UNSUBSCRIBE") + len(method)
    sock, stream = connect(w.served.port)
    with sock, stream:
        wait_until(lambda: w.served.server.connections, 5)
        (connection,) = w.served.server.connections
        # All but its final CRLF, taken in before the rest comes: the head's bound must
        # not refuse it in the meantime.
        sock.sendall(head[:-2])
        wait_until(
            lambda: connection.finished or connection.head_bytes == len(head) - 2, 5
        )
        sock.sendall(head[-2:])
        answer = read_response(stream)
    assert answer[0] == status, answer


def test_sequential_and_pipelined_requests_on_one_connection(gw):
    w = gw()
    sock, stream = connect(w.served.port)
    with sock, stream:
        for n in range(3):
            sock.sendall(get(f"/api/echo/seq/{n}"))
            assert target_of(read_response(stream)[2]) == f"/echo/seq/{n}"
        body = b"x" * 10
        post = b"POST /api/echo/post HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\n"
        sock.sendall(post + body + get("/api/echo/after-post") + get("/api/echo/last"))
        assert [target_of(read_response(stream)[2]) for _ in range(3)] == [
            "/echo/post",
            "/echo/after-post",
            "/echo/last",
        ]


def read_head(stream) -> tuple[int, dict]:
    """A response that has no body (HEAD, 204): its head is all there is."""
    status = int(stream.readline().split(b" ")[1])
    headers = {}
    while (line := stream.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers


def test_answers_without_a_body_and_connection_close(gw):
    w = gw()
    sock, stream = connect(w.served.port)
    with sock, stream:
        head = b"HEAD /api/echo/h HTTP/1.1\r\nHost: t\r\n\r\n"
        sock.sendall(get("/api/echo/status/204") + head)
        assert read_head(stream)[0] == 204
        status, headers = read_head(stream)
        assert status == 200
        assert int(headers["content-length"]) > 0  # the upstream's, and no body follows
        sock.sendall(get("/api/echo/bye", "Connection: close\r\n"))
        assert target_of(read_response(stream)[2]) == "/echo/bye"
        assert stream.read() == b""  # closed by the server


def test_http_10_gets_its_answer_and_the_end_of_the_connection(gw):
    w = gw()
    sock, stream = connect(w.served.port)
    with sock, stream:
        sock.sendall(b"GET /api/echo/old HTTP/1.0\r\n\r\n")
        assert target_of(read_response(stream)[2]) == "/echo/old"
        assert stream.read() == b""


def test_http_10_keep_alive_is_kept_and_said_so(gw):
    w = gw()
    sock, stream = connect(w.served.port)
    with sock, stream:
        for n in range(2):
            sock.sendall(
                f"GET /api/echo/old/{n} HTTP/1.0\r\nConnection: keep-alive\r\n\r\n".encode()
            )
            status, headers, body = read_response(stream)
            assert (status, target_of(body)) == (200, f"/echo/old/{n}")
            assert headers["connection"] == "keep-alive"


def test_expect_100_continue_is_answered_before_the_body_is_sent(gw):
    w = gw()
    sock, stream = connect(w.served.port)
    with sock, stream:
        sock.sendall(
            b"POST /api/echo/e HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n"
            b"Expect: 100-continue\r\n\r\n"
        )
        assert stream.readline() == b"HTTP/1.1 100 Continue\r\n"
        assert stream.readline() == b"\r\n"
        sock.sendall(b"hi")
        status, _, body = read_response(stream)
        assert (status, json.loads(body)["body"]) == (200, "hi")


def test_large_bodies_stream_both_ways(gw):
    w = gw(max_body_bytes=8 << 20)
    body = bytes(range(256)) * (12 << 10)  # 3 MiB: above what is held for retries
    r = w.client.post(
        "/api/echo/big", body, {"Content-Type": "application/octet-stream"}
    )
    assert r.status_code == 200
    assert r.json()["body"].encode("latin-1") == body
    assert int(r.headers["Content-Length"]) == len(r.content)  # the upstream's length


def test_a_body_that_arrives_too_slowly_is_408(gw):
    w = gw(client_timeout=0.3)
    sock, stream = connect(w.served.port)
    with sock, stream:
        sock.sendall(
            b"POST /api/echo/b HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nab"
        )
        status, headers, body = read_response(stream)
    assert (status, json.loads(body)["error"]["code"]) == (408, "request_timeout")
    assert headers["connection"] == "close"


def test_an_upstream_breaking_mid_body_ends_the_clients_connection(world):
    listener = socket.create_server(("127.0.0.1", 0))
    announced = 4 << 20

    def serve():
        with listener:
            conn, _ = listener.accept()
            with conn:
                conn.recv(65536)
                head = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % announced
                conn.sendall(head + b"x" * (2 << 20))  # half, then gone

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    w = world()
    w.publish("echo", echo_instance("r", listener.getsockname()[1]))
    sock, stream = connect(w.served.port)
    with sock, stream:
        sock.sendall(get("/api/echo/big"))
        status, headers = read_head(stream)
        assert (status, int(headers["content-length"])) == (200, announced)
        assert len(stream.read()) < announced  # cut short, and closed: not left hanging
    thread.join(5)
    assert w.client.get("/api/echo/after").status_code in (502, 503)  # nothing there


def test_an_upgrade_is_answered_as_a_plain_request_and_ends_the_connection(gw):
    w = gw()
    sock, stream = connect(w.served.port)
    with sock, stream:
        sock.sendall(
            get("/api/echo/ws", "Connection: Upgrade\r\nUpgrade: websocket\r\n")
        )
        status, headers, body = read_response(stream)
        assert status == 200 and headers["connection"] == "close"
        assert "upgrade" not in json.loads(body)["headers"]  # hop-by-hop: not passed on
        assert stream.read() == b""


def serve_recording(scenario, **settings):
    """Run `scenario(port)` on a fresh loop against a Server whose handler answers 200 and
    records each request; the requests it saw."""
    seen = []

    async def handle(request):
        seen.append(request)
        return Response(200, [("Content-Type", "text/plain")], b"ok")

    async def main():
        server = Server(GatewaySettings(**{**FAST, **settings}), handle, "gw-test")
        listener = await asyncio.get_running_loop().create_server(
            server, "127.0.0.1", 0
        )
        async with listener:
            await scenario(listener.sockets[0].getsockname()[1])

    uvloop.run(main())
    return seen


async def exchange_all(port: int, raw: bytes, answers: int) -> list[bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    heads = []
    try:
        writer.write(raw)
        for _ in range(answers):
            head = await reader.readuntil(b"\r\n\r\n")
            await reader.readexactly(2)  # the body, "ok"
            heads.append(head)
    finally:
        # Also when an answer is missing: a connection left open would hold the loop's
        # close (uvloop waits for its handles) past any test timeout.
        writer.close()
        await writer.wait_closed()
    return heads


def test_the_handler_sees_each_requests_http_version_and_keep_alive():
    raw = (
        b"GET /a HTTP/1.1\r\nHost: t\r\n\r\n"
        b"GET /b HTTP/1.1\r\nHost: t\r\nConnection: keep-alive\r\n\r\n"
        b"GET /c HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
        b"GET /d HTTP/1.0\r\n\r\n"
    )

    async def scenario(port):
        await exchange_all(port, raw, 4)

    seen = serve_recording(scenario)
    assert [(r.target, r.version, r.keep_alive) for r in seen] == [
        ("/a", "1.1", True),
        ("/b", "1.1", True),
        ("/c", "1.0", True),
        ("/d", "1.0", False),
    ]


def test_a_closed_connection_leaves_no_task_behind():
    async def scenario(port):
        before = asyncio.all_tasks()
        # Closed by the client after two answers; closed by the server when idle.
        await exchange_all(port, get("/a") + get("/b"), 2)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(get("/c"))
        assert await reader.read() != b""  # read to the end: keep-alive timed out
        writer.close()
        for _ in range(100):
            if asyncio.all_tasks() == before:
                break
            await asyncio.sleep(0.01)
        assert asyncio.all_tasks() == before

    assert len(serve_recording(scenario, keepalive_timeout=0.2)) == 3
