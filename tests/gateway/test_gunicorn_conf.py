"""Abuse of the gateway under its gunicorn config (issue 7): each gets the right 4xx, as JSON,
and the gateway keeps serving everyone else."""

import json
import socket
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.support.slow_clients import dripping

pytestmark = pytest.mark.integration


def exchange(port: int, raw: bytes, timeout: float = 5.0) -> tuple[int, dict, bytes]:
    """Send raw bytes, read one response: (status, lower-cased headers, body)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(raw)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = dict(
            line.lower().split(": ", 1) for line in lines[1:] if ": " in line
        )
        while len(body) < int(headers.get("content-length", 0)):
            chunk = sock.recv(65536)
            if not chunk:
                break
            body += chunk
    return int(lines[0].split(" ")[1]), headers, body


def error_of(headers: dict, body: bytes) -> str:
    assert headers["content-type"].startswith("application/json"), body
    return json.loads(body)["error"]["code"]


def request(path: str, *headers: str, body: bytes = b"") -> bytes:
    lines = [
        f"POST {path} HTTP/1.1" if body else f"GET {path} HTTP/1.1",
        "Host: gw",
        *headers,
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


@pytest.fixture
def gw(served_gateway):
    yield served_gateway
    # Whatever the abuse, the gateway still answers and logged no unhandled exception.
    assert (
        requests.get(f"{served_gateway.url}/api/echo/ok", timeout=5).status_code == 200
    )
    assert "Traceback" not in served_gateway.process.output()


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        (request("/api/echo/x", "X-Big: " + "a" * 2000), 431),
        (request("/api/echo/x", *[f"X-H{n}: v" for n in range(150)]), 431),
        (request("/api/echo/" + "a" * 9000), 414),
    ],
    ids=["header-too-large", "too-many-headers", "request-line-too-long"],
)
def test_oversized_headers(gw, raw, status):
    got, headers, body = exchange(gw.port, raw)
    assert got == status
    error_of(headers, body)


def test_oversized_bodies(gw):
    status, headers, body = exchange(
        gw.port, request("/api/echo/x", "Content-Length: 2000")
    )
    assert (status, error_of(headers, body)) == (413, "request_entity_too_large")
    chunk = b"5dc\r\n" + b"a" * 1500 + b"\r\n0\r\n\r\n"
    raw = request("/api/echo/x", "Transfer-Encoding: chunked", body=chunk).replace(
        b"GET", b"POST", 1
    )
    status, headers, body = exchange(gw.port, raw)
    assert (status, error_of(headers, body)) == (413, "request_entity_too_large")
    ok = exchange(
        gw.port, request("/api/echo/x", "Content-Length: 1000", body=b"a" * 1000)
    )
    assert ok[0] == 200


def test_slow_bodies_are_cut_and_other_clients_are_served(gw):
    slow = []
    for _ in range(6):  # more than the worker's 4 threads
        sock = socket.create_connection(("127.0.0.1", gw.port), timeout=10)
        sock.sendall(request("/api/echo/slow", "Content-Length: 100", body=b"ab"))
        slow.append(sock)
    started = time.monotonic()
    try:
        with dripping(slow, b"a", 0.3):
            r = requests.get(f"{gw.url}/api/echo/other", timeout=8)
            assert r.status_code == 200
            answers = [sock.recv(4096) for sock in slow]
    finally:
        for sock in slow:
            sock.close()
    assert all(a.startswith(b"HTTP/1.1 408 ") for a in answers), answers
    assert time.monotonic() - started < 8


@pytest.mark.parametrize(
    "headers",
    [
        ("Content-Length: 5", "Transfer-Encoding: chunked"),
        ("Content-Length: 5", "Content-Length: 6"),
        ("Transfer-Encoding: chunked, identity",),
        ("Transfer-Encoding: xchunked",),
    ],
    ids=["cl-and-te", "two-lengths", "te-not-last-chunked", "unknown-coding"],
)
def test_smuggling_attempts_are_refused(gw, headers):
    smuggled = b"0\r\n\r\nGET /api/echo/smuggled HTTP/1.1\r\nHost: gw\r\n\r\n"
    raw = request("/api/echo/x", *headers, body=smuggled).replace(b"GET", b"POST", 1)
    status, resp_headers, body = exchange(gw.port, raw)
    assert status in (400, 501)
    error_of(resp_headers, body)
    assert resp_headers.get("connection") == "close"


@pytest.mark.parametrize(
    "header",
    ["X-A: a\rb", "X-A: a\x00b", "X-A : b", " X-Folded: b"],
    ids=["bare-cr", "nul", "space-before-colon", "obs-fold"],
)
def test_malformed_header_lines_are_400(gw, header):
    status, headers, body = exchange(gw.port, request("/api/echo/x", "X-Ok: 1", header))
    assert status == 400
    error_of(headers, body)


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        (b"GET /api/echo/x HTTP/1.1\r\n\r\n", 400),
        (b"GET /api/echo/x HTTP/1.1\r\nConnection: close\r\n\r\n", 400),
        (b"GET /api/echo/x HTTP/1.0\r\n\r\n", 200),
    ],
    ids=["1.1", "1.1-close", "1.0"],
)
def test_an_http11_request_without_host_is_400(gw, raw, status):
    got, headers, body = exchange(gw.port, raw)
    assert got == status, body
    if status == 400:
        assert error_of(headers, body) == "missing_host"


@pytest.mark.parametrize(
    "raw",
    [
        b"GET /api/echo/x HTTP/1.1\r\nHost: evil.example\r\n\r\n",
        # absolute form: its authority is the Host, and still only the path routes
        b"GET http://evil.example/api/echo/x HTTP/1.1\r\nHost: gw.example\r\n\r\n",
    ],
    ids=["host", "absolute-form"],
)
def test_host_spoofing_changes_nothing_about_where_it_goes(gw, raw):
    status, _, body = exchange(gw.port, raw)
    seen = json.loads(body)
    assert status == 200
    assert seen["target"] == "/echo/x"
    assert seen["headers"]["host"].startswith("127.0.0.1:")
    assert seen["headers"]["x-forwarded-host"] == "evil.example"


@pytest.mark.parametrize(
    "path",
    [
        "/api/echo/../../admin/instances",
        "/api/echo/%2e%2e/%2e%2e/health",
        "/api/echo%2F..%2F..%2Fhealth",
        "/api/echo/%2fetc%2fpasswd",
        "/api/echo/..%5c..%5chealth",
        "/api/echo/%00",
        "/api/echo/%0d%0aSet-Cookie:%20x=1",
    ],
)
def test_traversal_and_encoded_separators_are_400(gw, path):
    status, headers, body = exchange(gw.port, request(path))
    assert (status, error_of(headers, body)) == (400, "bad_path")


def test_flood_to_an_unknown_prefix_is_404_and_others_are_served(gw):
    def hit(n):
        with requests.Session() as s:
            return [
                s.get(f"{gw.url}/api/nowhere/{n}-{i}", timeout=10).status_code
                for i in range(50)
            ]

    with ThreadPoolExecutor(8) as pool:
        flood = [pool.submit(hit, n) for n in range(8)]
        during = requests.get(f"{gw.url}/api/echo/during", timeout=5)
        codes = [c for f in flood for c in f.result()]
    assert during.status_code == 200
    assert set(codes) == {404} and len(codes) == 400
