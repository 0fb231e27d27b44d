"""Fixtures for devconsul tests: an HTTP client bound to an agent process, and a
local HTTP server that checks can probe."""

import threading
import time
from http.server import BaseHTTPRequestHandler

import pytest
import requests

import consul
from tests.conftest import Agent
from tests.support.loopback import loopback_server, serve_in_background, shut
from tests.support.processes import free_port, wait_until


class Pending:
    """A request running on a background thread: a blocking query in flight."""

    def __init__(self, call):
        self._box: dict = {}
        self._thread = threading.Thread(
            target=lambda: self._box.update(r=call()), daemon=True
        )
        self._thread.start()

    def still_waiting(self, seconds: float) -> bool:
        self._thread.join(seconds)
        return self._thread.is_alive()

    def response(self, timeout: float = 5.0) -> requests.Response:
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "the blocking query did not return"
        return self._box["r"]


class Api:
    """requests against one agent, with the base URL filled in."""

    def __init__(self, agent):
        self.agent = agent
        self.url = agent.url
        self.session = requests.Session()

    def get(self, path: str, **kwargs) -> requests.Response:
        return self.session.get(self.url + path, timeout=30, **kwargs)

    def put(self, path: str, json=None, **kwargs) -> requests.Response:
        return self.session.put(self.url + path, json=json, timeout=30, **kwargs)

    def request(self, method: str, path: str, **kwargs) -> requests.Response:
        return self.session.request(method, self.url + path, timeout=30, **kwargs)

    def block(self, path: str, index: str, wait: str = "10s") -> Pending:
        """Start a blocking GET of `path` from `index` in the background."""
        return Pending(lambda: self.get(path, params={"index": index, "wait": wait}))

    def register(self, body: dict, **params) -> None:
        r = self.put("/v1/agent/service/register", json=body, params=params)
        assert r.status_code == 200, r.text

    def register_web_with_sidecar(self, sidecar_check: dict | None = None) -> None:
        """web-1 (plain) and web-1-sidecar, a connect-proxy for "web"."""
        self.register({"ID": "web-1", "Name": "web", "Port": 80})
        sidecar = {
            "ID": "web-1-sidecar",
            "Name": "web-sidecar-proxy",
            "Kind": "connect-proxy",
            "Port": 21000,
            "Proxy": {"DestinationServiceName": "web", "DestinationServiceID": "web-1"},
        }
        if sidecar_check:
            sidecar["Check"] = sidecar_check
        self.register(sidecar)

    def check(self, check_id: str) -> dict:
        return self.get("/v1/agent/checks").json()[check_id]

    def wait_status(self, check_id: str, status: str, timeout: float = 10.0) -> dict:
        return wait_until(
            lambda: (c := self.check(check_id))["Status"] == status and c,
            timeout=timeout,
            what=f"{check_id} {status}",
        )


@pytest.fixture
def api(devconsul):
    return Api(devconsul)


@pytest.fixture
def client(devconsul):
    """py-consul bound to the test's own agent, as a user's code would use it."""
    return consul.Consul(host="127.0.0.1", port=devconsul.port)


@pytest.fixture(scope="session")
def shared_api(shared_devconsul):
    return Api(shared_devconsul)


@pytest.fixture(scope="module")
def module_api():
    """One agent per test module, for tests that use names of their own."""
    agent = Agent(free_port())
    yield Api(agent)
    agent.process.stop()


@pytest.fixture(scope="module")
def fast_session_api():
    """An agent accepting session TTLs down to 100 ms (dev-only flag)."""
    agent = Agent(free_port(), "-dev-session-ttl-min", "100ms")
    yield Api(agent)
    agent.process.stop()


@pytest.fixture
def fast_reaper_agent():
    """An agent whose reaper runs every 0.2 s with no 1-minute floor (dev-only flags)."""
    agent = Agent(
        free_port(), "-dev-reap-interval", "200ms", "-dev-deregister-minimum", "0s"
    )
    yield agent
    agent.process.stop()


class Target:
    """A local HTTP server with settable answers per path, recording requests."""

    def __init__(self):
        self.routes: dict[str, tuple[int, str]] = {"/health": (200, "ok")}
        self.delay = 0.0
        self.requests: list[dict] = []
        target = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                target.requests.append(
                    {
                        "method": self.command,
                        "path": self.path,
                        "headers": dict(self.headers),
                        "body": body,
                        "at": time.monotonic(),
                    }
                )
                time.sleep(target.delay)
                status, text = target.routes.get(self.path, (404, "missing"))
                if status in (301, 302, 307):
                    self.send_response(status)
                    self.send_header("Location", text)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                data = text.encode()
                self.send_response(status)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_HEAD = _answer

            def log_message(self, *args):
                pass

        self.server = loopback_server(Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        serve_in_background(self.server)

    def close(self):
        shut(self.server)


@pytest.fixture
def target():
    server = Target()
    yield server
    server.close()


@pytest.fixture
def closed_port() -> int:
    """A loopback port nothing listens on (connections are refused)."""
    return free_port()
