"""The gateway's gunicorn worker with one thread: kept-alive connections are served by the
thread that answered them, yet an idle one never keeps another client waiting."""

import json
import socket

import pytest

from gateway.worker import COALESCE_LIMIT, OneSend
from tests.support.processes import ManagedProcess, free_port, python_module

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def port():
    port = free_port()
    process = ManagedProcess(
        python_module(
            "gunicorn", "-k", "gateway.worker.LingeringWorker", "--threads", "1",
            "-b", f"127.0.0.1:{port}", "tests.gateway.upstream:app",
        ),
        {"UPSTREAM_NAME": "one-thread"},
        name="worker",
    ).start()  # fmt: skip
    process.wait_http(f"http://127.0.0.1:{port}/health", status=200)
    yield port
    process.stop()


def get(path: str, extra: str = "") -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: t\r\n{extra}\r\n".encode()


def read_response(stream) -> tuple[int, dict]:
    """One response from a socket file: (status, the echo's JSON body)."""
    status = int(stream.readline().split(b" ")[1])
    length = 0
    while (line := stream.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        if name.lower() == "content-length":
            length = int(value)
    return status, json.loads(stream.read(length))


def connect(port: int) -> tuple[socket.socket, object]:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    return sock, sock.makefile("rb")


def test_sequential_and_pipelined_requests_on_one_connection(port):
    sock, stream = connect(port)
    with sock, stream:
        for n in range(3):
            sock.sendall(get(f"/seq/{n}"))
            assert read_response(stream)[1]["target"] == f"/seq/{n}"
        body = b"x" * 10
        post = b"POST /post HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\n" + body
        sock.sendall(post + get("/after-post") + get("/last"))
        assert [read_response(stream)[1]["target"] for _ in range(3)] == [
            "/post",
            "/after-post",
            "/last",
        ]


def test_an_idle_kept_alive_connection_does_not_hold_the_only_thread(port):
    idle, idle_stream = connect(port)
    with idle, idle_stream:
        idle.sendall(get("/first"))
        assert read_response(idle_stream)[0] == 200
        # `idle` stays open and silent; the worker's only thread must serve others.
        other, other_stream = connect(port)
        with other, other_stream:
            other.sendall(get("/other"))
            assert read_response(other_stream)[1]["target"] == "/other"
        idle.sendall(get("/again"))
        assert read_response(idle_stream)[1]["target"] == "/again"


def read_head(stream) -> int:
    """The status of a response without a body (HEAD, 204); its head is all there is."""
    status = int(stream.readline().split(b" ")[1])
    while stream.readline() not in (b"\r\n", b""):
        pass
    return status


def test_answers_without_a_body_still_leave(port):
    # The worker holds each head back for its body (OneSend): these have none.
    sock, stream = connect(port)
    with sock, stream:
        sock.sendall(get("/status/204") + b"HEAD /head HTTP/1.1\r\nHost: t\r\n\r\n")
        assert [read_head(stream), read_head(stream)] == [204, 200]
        sock.sendall(get("/after"))
        assert read_response(stream)[1]["target"] == "/after"


def test_connection_close_is_honoured(port):
    sock, stream = connect(port)
    with sock, stream:
        sock.sendall(get("/bye", "Connection: close\r\n"))
        assert read_response(stream)[0] == 200
        assert stream.read() == b""  # closed by the server


class Recorder:
    """A socket stand-in that records each send."""

    def __init__(self):
        self.sent: list[tuple[str, bytes]] = []

    def sendall(self, data):
        self.sent.append(("sendall", bytes(data)))

    def sendfile(self, file, offset=0, count=None):
        self.sent.append(("sendfile", file))

    def getpeername(self):
        return ("127.0.0.1", 1)


HEAD = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n"


def test_a_head_and_its_body_leave_in_one_send():
    sock = Recorder()
    one = OneSend(sock)
    one.sendall(HEAD)
    one.sendall(b"ok")
    one.sendall(b"more")  # later writes go straight through
    one.flush()
    assert sock.sent == [("sendall", HEAD + b"ok"), ("sendall", b"more")]


def test_a_head_alone_leaves_on_flush_and_large_bodies_are_not_copied():
    sock = Recorder()
    one = OneSend(sock)
    one.sendall(HEAD)
    assert sock.sent == []
    one.flush()
    assert sock.sent == [("sendall", HEAD)]
    sock, big = Recorder(), b"x" * (COALESCE_LIMIT + 1)
    one = OneSend(sock)
    one.sendall(HEAD)
    one.sendall(big)
    assert sock.sent == [("sendall", HEAD), ("sendall", big)]


def test_other_ways_of_sending_go_after_the_held_head():
    sock = Recorder()
    one = OneSend(sock)
    one.sendall(HEAD)
    one.sendfile("file")
    assert sock.sent == [("sendall", HEAD), ("sendfile", "file")]
    assert one.getpeername() == ("127.0.0.1", 1)  # the rest is the socket's


def test_an_interim_answer_leaves_at_once():
    sock = Recorder()
    one = OneSend(sock)
    hints = b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n"
    one.sendall(hints)
    assert sock.sent == [("sendall", hints)]  # not held for the final answer
    one.sendall(HEAD)
    one.sendall(b"ok")
    assert sock.sent[1:] == [("sendall", HEAD + b"ok")]
