"""The HTTP server: keep-alive, framing, routing errors and many blocked watchers."""

import http.client
import socket
import struct
import threading
import time
from pathlib import Path

import pytest
import requests

from tests.conftest import Agent
from tests.support.processes import free_port, wait_until

pytestmark = pytest.mark.integration


def test_keep_alive_with_content_length_on_every_answer(shared_devconsul):
    conn = http.client.HTTPConnection("127.0.0.1", shared_devconsul.port, timeout=5)
    try:
        for method, path in [
            ("GET", "/v1/status/leader"),
            ("PUT", "/v1/agent/service/register"),  # 400, body not read by us
            ("GET", "/v1/kv/nothing-here"),
            ("GET", "/v1/nope"),
            ("PUT", "/v1/kv/keepalive"),
            ("GET", "/v1/kv/keepalive?raw"),
        ]:
            conn.request(method, path, body=b"abc" if method == "PUT" else None)
            resp = conn.getresponse()
            body = resp.read()
            assert resp.getheader("Content-Length") == str(len(body))
            assert not resp.will_close
        assert body == b"abc"
    finally:
        conn.close()


def test_chunked_request_body(shared_devconsul):
    with socket.create_connection(("127.0.0.1", shared_devconsul.port), timeout=5) as s:
        s.sendall(
            b"PUT /v1/kv/chunked HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
            b"Connection: close\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
        )
        assert s.recv(4096).startswith(b"HTTP/1.1 200")
    r = requests.get(f"{shared_devconsul.url}/v1/kv/chunked?raw", timeout=5)
    assert r.content == b"abcde"


@pytest.mark.parametrize(
    ("framing", "status"),
    [
        (b"Content-Length: abc\r\n\r\n", b"400"),
        (b"Transfer-Encoding: chunked\r\n\r\nzz\r\n", b"400"),
        (b"Content-Length: 99999999999\r\n\r\n", b"413"),
    ],
)
def test_bad_framing_is_answered_and_closed(shared_devconsul, framing, status):
    with socket.create_connection(("127.0.0.1", shared_devconsul.port), timeout=5) as s:
        s.sendall(b"PUT /v1/kv/framing HTTP/1.1\r\nHost: x\r\n" + framing)
        answer = b""
        while chunk := s.recv(4096):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 " + status)


@pytest.mark.parametrize(
    ("path", "text"),
    [
        ("/v1/nope", "Invalid URL path: not a recognized HTTP API endpoint\n"),
        ("/x/v1/nope", "Invalid URL path: not a recognized HTTP API endpoint\n"),
        (
            "/elsewhere",
            (
                "Invalid URL path: if attempting to use the HTTP API, ensure the "
                "path starts with '/v1/'\n"
            ),
        ),
    ],
)
@pytest.mark.parametrize("method", ["GET", "PUT"])
def test_unknown_paths(shared_devconsul, path, text, method):
    """Consul's Index handler (agent/http.go) answers every path no other
    pattern claims, whatever the method, with one of two lines."""
    r = requests.request(method, f"{shared_devconsul.url}{path}", timeout=5)
    assert (r.status_code, r.text) == (404, text)
    assert r.headers["Content-Type"] == "text/plain; charset=utf-8"


def test_root_redirects_to_ui(shared_devconsul):
    r = requests.get(f"{shared_devconsul.url}/", timeout=5, allow_redirects=False)
    assert (r.status_code, r.headers["Location"]) == (301, "/ui/")
    index = requests.get(f"{shared_devconsul.url}/ui/", timeout=5)
    assert index.status_code == 200
    assert index.headers["Content-Type"] == "text/html; charset=utf-8"


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE"])
def test_ui_pages_answer_any_method(shared_devconsul, method):
    """Consul's UI handler is Go's http.FileServer, which ignores the method,
    over a filesystem that gives index.html for a path naming no file."""
    index = requests.get(f"{shared_devconsul.url}/ui/", timeout=5)
    r = requests.request(method, f"{shared_devconsul.url}/ui/dc1/services", timeout=5)
    assert (r.status_code, r.content) == (200, index.content)
    assert r.headers["Content-Type"] == "text/html; charset=utf-8"


@pytest.mark.parametrize("method", ["GET", "HEAD", "PUT", "POST", "DELETE"])
def test_bare_ui_is_redirected_whatever_the_method(shared_devconsul, method):
    """Go's ServeMux answers "/ui" with a 301 to its "/ui/" pattern before any
    handler runs, so the method does not matter; the query goes along."""
    r = requests.request(
        method, f"{shared_devconsul.url}/ui?x=1", timeout=5, allow_redirects=False
    )
    assert (r.status_code, r.headers["Location"]) == (301, "/ui/?x=1")


@pytest.mark.parametrize(
    "path",
    [
        "/v1/kv/a%09b",
        "/v1/kv/a%0Ab",
        "/v1/kv/%00",
        "/v1/kv/a%C2%A0b",
        "/ui%7F",
        "//%01",
    ],
)
def test_non_printable_path_is_a_bare_400(shared_devconsul, path):
    """cleanhttp.PrintablePathCheckHandler, around Consul's whole mux: an
    empty 400 before any redirect or handler (a KV write would answer true)."""
    r = requests.put(
        f"{shared_devconsul.url}{path}", data=b"x", timeout=5, allow_redirects=False
    )
    assert (r.status_code, r.content) == (400, b"")
    assert "Content-Type" not in r.headers


def test_printable_unicode_and_spaces_pass(shared_devconsul):
    url = f"{shared_devconsul.url}/v1/kv/printable/caf%C3%A9%20%E2%9C%93"
    assert requests.put(url, data=b"x", timeout=5).json() is True
    assert requests.get(url, params={"raw": ""}, timeout=5).content == b"x"


def test_pretty_output(shared_devconsul):
    r = requests.get(f"{shared_devconsul.url}/v1/catalog/datacenters?pretty", timeout=5)
    assert r.text == '[\n    "dc1"\n]\n'


def _thread_count(pid: int) -> int:
    status = Path(f"/proc/{pid}/status")
    if not status.exists():
        pytest.skip("needs /proc to see the agent's connection threads")
    line = next(x for x in status.read_text().splitlines() if x.startswith("Threads:"))
    return int(line.split()[1])


def test_300_blocked_watchers_do_not_starve_other_requests(devconsul):
    url = devconsul.url
    index = requests.get(f"{url}/v1/health/service/crowd", timeout=5).headers[
        "X-Consul-Index"
    ]
    answered = []
    lock = threading.Lock()

    def watch():
        r = requests.get(
            f"{url}/v1/health/service/crowd",
            params={"index": index, "wait": "30s"},
            timeout=60,
        )
        with lock:
            answered.append(r.json())

    baseline = _thread_count(devconsul.process.pid)
    threads = [threading.Thread(target=watch, daemon=True) for _ in range(300)]
    for t in threads:
        t.start()
    # One server thread per connection: wait until (nearly) all watchers are
    # parked; the baseline may still count a few closing probe connections.
    wait_until(
        lambda: _thread_count(devconsul.process.pid) >= baseline + 290,
        timeout=30,
        what="300 watcher connections on the agent",
    )
    # While all of them are parked, ordinary requests still answer quickly.
    session = requests.Session()
    for _ in range(20):
        start = time.monotonic()
        assert session.get(f"{url}/v1/agent/services", timeout=5).status_code == 200
        assert time.monotonic() - start < 3
    assert answered == []
    r = session.put(f"{url}/v1/agent/service/register", json={"Name": "crowd"})
    assert r.status_code == 200
    deadline = time.monotonic() + 30
    for t in threads:
        t.join(max(0.1, deadline - time.monotonic()))
    assert len(answered) == 300
    assert all(body[0]["Service"]["Service"] == "crowd" for body in answered)


def test_a_watcher_that_hangs_up_is_not_an_error():
    agent = Agent(free_port(), "-log-level", "debug")
    try:
        index = requests.get(f"{agent.url}/v1/kv/hangup").headers["X-Consul-Index"]
        with socket.create_connection(("127.0.0.1", agent.port), timeout=5) as watcher:
            watcher.sendall(
                f"GET /v1/kv/hangup?index={index}&wait=30s HTTP/1.1\r\n"
                "Host: t\r\n\r\n".encode()
            )
            # Reset on close: whether the agent is still reading the query or already
            # waiting to answer it, the connection is gone under it.
            linger = struct.pack("ii", 1, 0)
            watcher.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
        requests.put(f"{agent.url}/v1/kv/hangup", data=b"x").raise_for_status()
        wait_until(
            lambda: "went away before its answer" in agent.process.output(),
            5,
            what="the agent to notice",
        )
        assert "Traceback" not in agent.process.output()
    finally:
        agent.process.stop()


def _raw(agent, method: str, target: str, body: bytes | None = None):
    """A request sent as written: requests/urllib3 would resolve /./ and /../."""
    conn = http.client.HTTPConnection("127.0.0.1", agent.port, timeout=5)
    try:
        conn.request(method, target, body=body)
        resp = conn.getresponse()
        return resp, resp.read()
    finally:
        conn.close()


@pytest.mark.parametrize(
    ("method", "target", "location"),
    [
        ("PUT", "/v1/kv/foo//bar", "/v1/kv/foo/bar"),
        ("PUT", "/v1/kv//lead?cas=0", "/v1/kv/lead?cas=0"),
        ("PUT", "//v1/kv/lead", "/v1/kv/lead"),
        ("GET", "/v1/kv/a/./b?raw", "/v1/kv/a/b?raw"),
        ("DELETE", "/v1/kv/a/../b", "/v1/kv/b"),
        ("GET", "/v1/kv/dir//?keys", "/v1/kv/dir/?keys"),
        ("GET", "/v1/kv/sp%20ace//x%2F%2Fy", "/v1/kv/sp%20ace/x/y"),
        ("OPTIONS", "/v1/agent//services", "/v1/agent/services"),
        ("GET", "/v1/kv", "/v1/kv/"),
    ],
)
def test_non_canonical_paths_are_redirected_as_go_servemux_does(
    shared_devconsul, method, target, location
):
    """Consul 1.17 is built with Go 1.20, whose ServeMux answers any method on a
    path that is not clean (or lacks the slash of a prefix pattern) with a 301
    to the cleaned path, the query kept, and runs no handler."""
    resp, body = _raw(
        shared_devconsul, method, target, b"v" if method == "PUT" else None
    )
    assert (resp.status, resp.getheader("Location")) == (301, location)
    if method == "GET":
        assert resp.getheader("Content-Type") == "text/html; charset=utf-8"
        escaped = location.replace("&", "&amp;")
        assert body == f'<a href="{escaped}">Moved Permanently</a>.\n\n'.encode()
    else:
        assert (resp.getheader("Content-Type"), body) == (None, b"")
    if method == "PUT":
        nothing, _ = _raw(shared_devconsul, "GET", location.split("?")[0])
        assert nothing.status == 404


def test_redirect_body_escapes_like_go(shared_devconsul):
    resp, body = _raw(shared_devconsul, "GET", "//v1/kv/a?x=1&y='\"")
    assert resp.getheader("Location") == "/v1/kv/a?x=1&y='\""
    assert body == b'<a href="/v1/kv/a?x=1&amp;y=&#39;&#34;">Moved Permanently</a>.\n\n'
