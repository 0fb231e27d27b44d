"""The gateway's gunicorn worker with one thread: kept-alive connections are served by the
thread that answered them, yet an idle one never keeps another client waiting."""

import json
import socket

import pytest

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


def test_connection_close_is_honoured(port):
    sock, stream = connect(port)
    with sock, stream:
        sock.sendall(get("/bye", "Connection: close\r\n"))
        assert read_response(stream)[0] == 200
        assert stream.read() == b""  # closed by the server
