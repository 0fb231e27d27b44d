"""The upstream HTTP/1.1 client on an event loop, against scripted raw-socket servers."""

import asyncio
import select
import socket
import threading
import time

import pytest
import uvloop

from gateway.upstream import (
    ConnectFailed,
    RequestBody,
    Upstream,
    UpstreamBroken,
    UpstreamTimeout,
    _Link,
)
from tests.support.processes import free_port

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Served-By: s\r\n\r\nok"
SILENT = b""  # a scripted reply: none, the connection held open until the client leaves


class Scripted:
    """Accepts connections; answers each request with the next scripted reply (None: close,
    SILENT: no answer)."""

    def __init__(self, *replies, close=False, piece=0):
        self.replies = list(replies)
        self.close = close  # close the connection after each reply
        self.piece = piece  # send each reply in pieces of this size
        self.requests: list[bytes] = []
        self.connections = 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        with self.listener:
            while self.replies:
                conn, _ = self.listener.accept()
                self.connections += 1
                with conn:
                    self._answer(conn)

    def _answer(self, conn):
        while self.replies:
            data = conn.recv(65536)
            if not data:
                return
            self.requests.append(data)
            reply = self.replies.pop(0)
            if reply is None:
                return
            if reply is SILENT:
                conn.recv(65536)  # returns when the client gives up and closes
                return
            step = self.piece or len(reply)
            for start in range(0, len(reply), step):
                conn.sendall(reply[start : start + step])
                if self.piece:
                    time.sleep(0.002)
            if self.close:
                return


class Client:
    """An Upstream and the loop it runs on; `send` and `read` block until done."""

    def __init__(self):
        self.loop = uvloop.new_event_loop()
        self.upstream = Upstream(4)

    def send(self, port, method="GET", target="/x", headers=(), body=b"", **options):
        read, replayable = options.get("read", 2.0), options.get("replayable", True)
        sending = self.upstream.send(
            "127.0.0.1",
            port,
            method,
            target,
            list(headers),
            body,
            0.5,
            read,
            replayable,
        )
        return Answer(self, self.loop.run_until_complete(sending))

    def close(self):
        self.upstream.close()
        self.loop.run_until_complete(asyncio.sleep(0.01))  # let the closes complete
        self.loop.run_until_complete(self.loop.shutdown_asyncgens())
        self.loop.close()


class Answer:
    def __init__(self, client, response):
        self.client, self.response = client, response
        self.status, self.length = response.status, response.length

    def header(self, name):
        lower = name.lower()
        return next((v for n, v in self.response.headers if n.lower() == lower), None)

    def read(self):
        return self.client.loop.run_until_complete(self.response.read())


@pytest.fixture
def transport():
    client = Client()
    yield client
    client.close()


def send(transport, server, method="GET", target="/x", headers=(), body=b"", read=2.0):
    return transport.send(server.port, method, target, headers, body, read=read)


def test_target_and_headers_are_sent_exactly_and_nothing_else(transport):
    server = Scripted(OK)
    response = send(
        transport, server, "POST", "/a%2fb?q=%c3%a9", [("X-A", "1")], b"body"
    )
    assert (response.status, response.read()) == (200, b"ok")
    host = f"Host: 127.0.0.1:{server.port}\r\n".encode()
    assert server.requests[0] == (
        b"POST /a%2fb?q=%c3%a9 HTTP/1.1\r\n" + host + b"X-A: 1\r\n"
        b"Content-Length: 4\r\n\r\nbody"
    )


def test_keep_alive_connections_are_reused(transport):
    server = Scripted(OK, OK, OK)
    assert [send(transport, server).read() for _ in range(3)] == [b"ok"] * 3
    assert server.connections == 1


def test_chunked_body_is_decoded_and_interim_answers_skipped(transport):
    reply = (
        b"HTTP/1.1 100 Continue\r\n\r\n"
        b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"3\r\nabc\r\n2;ext=1\r\nde\r\n0\r\nX-Trailer: t\r\n\r\n"
    )
    response = send(transport, Scripted(reply))
    assert (response.status, response.length) == (201, None)
    assert response.read() == b"abcde"


def test_head_has_no_body_whatever_the_length_says(transport):
    response = send(
        transport, Scripted(b"HTTP/1.1 200 OK\r\nContent-Length: 999\r\n\r\n"), "HEAD"
    )
    assert response.read() == b"" and response.header("content-length") == "999"


def test_a_kept_alive_connection_closed_meanwhile_is_replaced(transport):
    server = Scripted(OK, None, OK)  # the second request finds the connection closed
    assert send(transport, server).read() == b"ok"
    assert send(transport, server).read() == b"ok"
    assert server.connections == 2


@pytest.mark.parametrize(
    "reply",
    [
        b"garbage\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab",
        b"HTTP/1.1 200 OK\r\nBad Header\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
    ],
    ids=["not-http", "short-body", "bad-header", "bad-length"],
)
def test_malformed_answers_are_broken(transport, reply):
    with pytest.raises(UpstreamBroken):
        send(transport, Scripted(reply, close=True)).read()


def test_silence_is_a_timeout_and_refusal_a_connect_failure(transport):
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
        with pytest.raises(UpstreamTimeout):
            transport.send(port, read=0.2)
    with pytest.raises(ConnectFailed):
        transport.send(free_port(), read=0.2)


@pytest.mark.parametrize("replayable", [True, False], ids=["get", "post"])
@pytest.mark.parametrize("trouble", ["closed", "stray-answer"])
def test_a_pooled_connection_that_turned_readable_is_never_reused(
    transport, trouble, replayable
):
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    released = threading.Event()

    def serve():
        with listener:
            first, _ = listener.accept()
            with first:
                first.recv(65536)
                first.sendall(OK)
                released.wait(5)
                if trouble == "closed":
                    first.shutdown(socket.SHUT_WR)
                else:  # a late answer nobody asked for
                    first.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nstray")
                second, _ = listener.accept()
                with second:
                    second.recv(65536)
                    second.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfresh")

    threading.Thread(target=serve, daemon=True).start()
    assert transport.send(port).read()
    released.set()
    pooled = transport.upstream._pools["127.0.0.1", port].idle[-1].fd
    assert select.select([pooled], [], [], 5)[0]  # the FIN or the stray bytes are here
    method = "GET" if replayable else "POST"
    response = transport.send(port, method, replayable=replayable)
    assert response.read() == b"fresh"


def test_an_upstream_reading_slowly_cannot_stretch_the_upload_past_the_timeout(
    transport,
):
    body = b"x" * (32 << 20)  # far beyond what the socket buffers absorb at once
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    received, slow = [0], threading.Event()
    slow.set()

    def reader():  # 64 KiB every 20 ms while `slow`, then all that was sent
        with listener:
            conn, _ = listener.accept()
            with conn:
                while data := conn.recv(65536):
                    received[0] += len(data)
                    if slow.is_set():
                        time.sleep(0.02)

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    try:
        with pytest.raises(UpstreamTimeout):
            transport.send(port, "PUT", body=body, read=0.3)
    finally:
        slow.clear()
    thread.join(10)  # the gateway closed the connection: the reader sees its end
    assert not thread.is_alive()
    assert received[0] < len(body)  # given up mid-upload, not after it


def test_bytes_beyond_the_answer_keep_the_connection_out_of_the_pool(transport):
    server = Scripted(OK + b"HTTP/1.1 200 OK\r\n", OK)  # junk after the body
    assert send(transport, server).read() == b"ok"
    assert send(transport, server).read() == b"ok"
    assert server.connections == 2


@pytest.mark.parametrize("eol", [b"\r\n", b"\n"], ids=["crlf", "lf"])
def test_a_head_arriving_in_pieces_is_read_whole(transport, eol):
    reply = b"HTTP/1.1 200 OK" + eol + b"Content-Length: 4" + eol + eol + b"body"
    response = send(transport, Scripted(reply, piece=3))
    assert (response.status, response.read()) == (200, b"body")


def test_a_stream_ending_inside_the_head_is_broken(transport):
    with pytest.raises(UpstreamBroken):
        send(transport, Scripted(b"HTTP/1.1 200 OK\r\nA: 1", close=True))


@pytest.mark.parametrize("size", [1, 5, 7])
def test_a_chunked_body_arriving_in_pieces_is_decoded(transport, size):
    reply = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"3\r\nabc\r\n2;ext=1\r\nde\r\n0\r\nX-Trailer: t\r\n\r\n"
    )
    server = Scripted(reply, OK, piece=size)
    assert send(transport, server).read() == b"abcde"
    assert send(transport, server).read() == b"ok"  # nothing beyond the body was eaten
    assert server.connections == 1


class Streamed(RequestBody):
    def __init__(self, *parts, length=None):
        self.parts, self.length = parts, length

    async def chunks(self):
        for part in self.parts:
            yield part


@pytest.mark.parametrize(
    ("length", "framing", "wire"),
    [
        (6, b"Content-Length: 6", b"abcdef"),
        (None, b"Transfer-Encoding: chunked", b"3\r\nabc\r\n3\r\ndef\r\n0\r\n\r\n"),
    ],
    ids=["length", "chunked"],
)
def test_a_streamed_body_goes_out_as_it_comes(transport, length, framing, wire):
    server = Scripted(OK)
    body = Streamed(b"abc", b"def", length=length)
    assert send(transport, server, "POST", body=body).read() == b"ok"
    head, _, sent = server.requests[0].partition(b"\r\n\r\n")
    assert framing in head.split(b"\r\n")
    while len(sent) < len(wire):  # the rest may come in a later recv
        sent += server.requests.pop(1) if len(server.requests) > 1 else b""
        break
    assert wire.startswith(sent)


def test_an_instance_registered_by_name_is_reached(transport):
    # The loop's resolver looks the name up (never blocking the loop), then connects.
    server = Scripted(OK)
    sending = transport.upstream.send(
        "localhost", server.port, "GET", "/", [], b"", 0.5, 2.0, True
    )
    response = transport.loop.run_until_complete(sending)
    assert transport.loop.run_until_complete(response.read()) == b"ok"


@pytest.mark.parametrize(
    "first_read, pause",
    [(5.0, 0.0), (0.3, 0.2)],
    ids=["timer-set-later", "timer-set-earlier"],
)
def test_each_wait_on_a_kept_alive_connection_has_its_own_read_timeout(
    transport, first_read, pause
):
    # The connection's one timer was armed by the first exchange: for a later moment than
    # the second wait's deadline (it must be moved), or an earlier one (it must not fire
    # the second wait's timeout early).
    port = Scripted(OK, SILENT).port  # the second request gets no answer
    assert transport.send(port, read=first_read).read() == b"ok"
    transport.loop.run_until_complete(asyncio.sleep(pause))
    start = time.monotonic()
    with pytest.raises(UpstreamTimeout):
        transport.send(port, read=0.5)
    assert 0.45 <= time.monotonic() - start < 1.5


TOO_LARGE = b"HTTP/1.1 413 Too Large\r\nContent-Length: 3\r\n\r\nbig"


class Endless(RequestBody):
    """A streamed body of 64 KiB chunks, as many as are asked for (up to a bound)."""

    length = None

    def __init__(self, bound=1000):
        self.bound, self.sent = bound, 0

    async def chunks(self):
        while self.sent < self.bound:
            self.sent += 1
            yield b"x" * 65536


class EarlyAnswer:
    """Answers 413 (kept alive) at a request's first bytes, then reads on, dropping the
    rest of its body, until the client closes; every later connection is answered OK."""

    def __init__(self):
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.connections = 0
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        with self.listener:
            for reply in (TOO_LARGE, OK):
                conn, _ = self.listener.accept()
                self.connections += 1
                with conn:
                    conn.recv(65536)
                    conn.sendall(reply)
                    while conn.recv(65536):
                        pass


def test_an_answer_before_the_body_ends_stops_the_upload_and_the_connection(transport):
    """An upstream may answer (413, say) before reading a streamed body and keep the
    connection alive: the answer stands, the upload stops, and the connection -- its
    request cut short -- never carries another one: a request written on it would land
    inside the rest of the body."""
    server = EarlyAnswer()
    body = Endless()
    response = send(transport, server, "POST", body=body)
    assert (response.status, response.read()) == (413, b"big")
    assert body.sent < body.bound
    assert send(transport, server).read() == b"ok"
    assert server.connections == 2


def test_an_early_answer_survives_a_reset_met_by_the_next_write(transport, monkeypatch):
    """The upstream answers, then closes with the body unread (the kernel sends RST), and
    the gateway's next write meets the reset before its loop has read the answer -- as when
    the loop was busy elsewhere while both arrived. uvloop then closes the socket at once;
    the answer is still read, through the link's own descriptor."""
    links = []

    def made(link, transport, made=_Link.connection_made):
        made(link, transport)
        links.append(link)

    monkeypatch.setattr(_Link, "connection_made", made)
    listener = socket.create_server(("127.0.0.1", 0))

    def answer_then_reset():
        with listener:
            conn, _ = listener.accept()
            conn.recv(65536)
            conn.sendall(TOO_LARGE)
            while not select.select([conn], [], [], 5)[0]:
                pass  # more of the body is waiting: closing now sends RST
            conn.close()

    threading.Thread(target=answer_then_reset, daemon=True).start()

    class AfterTheReset(RequestBody):
        length = None

        async def chunks(self):
            links[0].transport.pause_reading()  # the loop never gets to read the link
            yield b"x" * 65536
            yield b"x" * 65536  # more than the upstream reads before it answers
            poller = select.poll()
            poller.register(links[0].fd, select.POLLIN)
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:  # until the reset is here
                if any(events & select.POLLHUP for _, events in poller.poll(0)):
                    break
                await asyncio.sleep(0.001)
            for _ in range(100):
                yield b"x" * 65536

    port = listener.getsockname()[1]
    response = transport.send(port, "POST", body=AfterTheReset())
    assert (response.status, response.read()) == (413, b"big")
