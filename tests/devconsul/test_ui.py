"""The web UI at /ui/, loaded in headless Chromium against a running agent.

Chromium is driven over the DevTools protocol on a pipe (--remote-debugging-pipe:
NUL-separated JSON on fds 3 and 4), so no npm, Selenium or websocket library is
needed, and the test can wait for the page's blocking queries to deliver changes
(--dump-dom cannot: a pending blocking query keeps its virtual clock from running).
"""

import json
import os
import select
import shutil
import subprocess
import sys
import time

import pytest
import requests

from tests.conftest import Agent
from tests.support.processes import free_port, wait_until

pytestmark = [pytest.mark.browser, pytest.mark.integration]

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
TRAMPOLINE = """
import os, sys
commands, replies = os.dup(int(sys.argv[1])), os.dup(int(sys.argv[2]))
os.dup2(commands, 3)
os.dup2(replies, 4)
os.set_inheritable(3, True)
os.set_inheritable(4, True)
os.execv(sys.argv[3], sys.argv[3:])
"""


class Chromium:
    """A headless Chromium controlled through the DevTools protocol over a pipe."""

    FLAGS = (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1280,900",
        "--remote-debugging-pipe",
    )

    def __init__(self, binary: str, profile_dir: str, log_path: str):
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()
        # Chromium expects the pipe on fds 3 (commands) and 4 (replies); a small
        # trampoline moves our pipe ends there (via fresh copies, so the two
        # moves cannot clobber each other) and execs the browser.
        argv = [binary, *self.FLAGS, f"--user-data-dir={profile_dir}", "about:blank"]
        self.log_path = log_path
        with open(log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    TRAMPOLINE,
                    str(to_browser_r),
                    str(from_browser_w),
                    *argv,
                ],
                pass_fds=(to_browser_r, from_browser_w),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._buffer = b""
        self._next_id = 0
        self._tabs: list[str] = []

    def call(
        self,
        method: str,
        params: dict | None = None,
        session: str | None = None,
        timeout: float = 15.0,
    ):
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            reply = self._read(deadline)
            if reply.get("id") != self._next_id:
                continue  # an event
            if "error" in reply:
                raise RuntimeError(f"{method}: {reply['error']}")
            return reply["result"]

    def _read(self, deadline: float) -> dict:
        while b"\0" not in self._buffer:
            remaining = deadline - time.monotonic()
            if (
                remaining <= 0
                or not select.select([self._from_browser], [], [], remaining)[0]
            ):
                raise TimeoutError(f"no DevTools reply; chromium log:\n{self.log()}")
            chunk = os.read(self._from_browser, 65536)
            if not chunk:
                raise RuntimeError(f"chromium exited; log:\n{self.log()}")
            self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(raw)

    def open(self, url: str) -> str:
        """Open `url` in a new tab; returns the DevTools session of that tab."""
        target = self.call("Target.createTarget", {"url": url})["targetId"]
        self._tabs.append(target)
        return self.call(
            "Target.attachToTarget", {"targetId": target, "flatten": True}
        )["sessionId"]

    def evaluate(self, session: str, expression: str):
        result = self.call(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True},
            session,
        )
        if "exceptionDetails" in result:
            raise RuntimeError(f"page error: {result['exceptionDetails']}")
        return result["result"].get("value")

    def close_tabs(self) -> None:
        while self._tabs:
            self.call("Target.closeTarget", {"targetId": self._tabs.pop()})

    def log(self) -> str:
        with open(self.log_path, errors="replace") as log:
            return log.read()[-3000:]

    def close(self) -> None:
        try:
            self.call("Browser.close", timeout=5)
        except (OSError, RuntimeError, TimeoutError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, 9)
            self.proc.wait(timeout=5)
        os.close(self._to_browser)
        os.close(self._from_browser)


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    """One browser for the module; each test opens its own tab."""
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (Debian package `chromium`)")
    home = tmp_path_factory.mktemp("chromium")
    chromium = Chromium(CHROMIUM, str(home / "profile"), str(home / "chromium.log"))
    yield chromium
    chromium.close()


@pytest.fixture(autouse=True)
def close_tabs(browser):
    """Close each test's tabs, so their blocking queries stop with the test's agent."""
    yield
    browser.close_tabs()


@pytest.fixture
def ui_agent():
    agent = Agent(free_port(), "-ui")
    yield agent
    agent.process.stop()


def register_web(agent: Agent, token: str | None = None) -> None:
    headers = {"X-Consul-Token": token} if token else {}
    service = {
        "Name": "web",
        "ID": "web-1",
        "Address": "127.0.0.1",
        "Port": 8080,
        "Tags": ["v1", "primary"],
        "Meta": {"version": "1.4.2"},
        "Weights": {"Passing": 5, "Warning": 1},
        "Check": {"Name": "web heartbeat", "TTL": "60s"},
    }
    requests.put(
        f"{agent.url}/v1/agent/service/register",
        json=service,
        headers=headers,
        timeout=5,
    ).raise_for_status()
    requests.put(
        f"{agent.url}/v1/agent/check/pass/service:web-1?note=all+good",
        headers=headers,
        timeout=5,
    ).raise_for_status()


def page_state(browser: Chromium, session: str) -> dict:
    """What a person would read off the page, gathered from the rendered DOM."""
    return browser.evaluate(
        session,
        """(() => {
          const badge = (sel) => document.querySelector(sel)?.textContent ?? null;
          return {
            text: document.body.innerText,
            title: document.querySelector('h1')?.textContent,
            instances: [...document.querySelectorAll('[data-instance]')].map(e => e.dataset.instance),
            check: badge('[data-instance="web-1"] [data-check="service:web-1"] .badge'),
            output: badge('[data-instance="web-1"] [data-check="service:web-1"] .output'),
            changeSeen: document.querySelector(
              '[data-instance="web-1"] [data-check="service:web-1"] .since')?.dataset.exact,
            serviceRow: badge('tr[data-service="web"] .badge'),
            node: document.getElementById('agent-node')?.textContent,
            live: document.getElementById('live')?.textContent,
            acl: document.body.dataset.acl ?? null,
            aclPanel: document.querySelector('[data-acl="required"] h2')?.textContent ?? null,
            aclForm: !!document.getElementById('acl-form'),
            aclNote: document.querySelector('#acl-form .acl-note')?.textContent ?? null,
            aclHeader: document.getElementById('acl')?.innerText ?? '',
            storedToken: localStorage.getItem('consul:token'),
          };
        })()""",
    )


def test_service_page_shows_instances_and_follows_check_changes(ui_agent, browser):
    register_web(ui_agent)
    session = browser.open(f"{ui_agent.url}/ui/#/services/web")

    state = wait_until(
        lambda: (
            (s := page_state(browser, session))["check"] == "passing"
            and s["node"] == "test-node"
            and s
        ),
        timeout=20,
        what="the service page to render web-1 with a passing check, and the header",
    )
    assert state["instances"] == ["web-1"]
    assert state["title"] == "web"
    assert "127.0.0.1:8080" in state["text"]
    assert "version = 1.4.2" in state["text"]
    assert state["output"] == "all good"

    # No reload: the page's blocking query on /v1/health/service/web brings the change.
    requests.put(
        f"{ui_agent.url}/v1/agent/check/fail/service:web-1?note=down", timeout=5
    ).raise_for_status()
    wait_until(
        lambda: page_state(browser, session)["check"] == "critical",
        timeout=20,
        what="the check badge to turn critical without a reload",
    )
    state = page_state(browser, session)
    assert state["live"] == "live"
    assert state["changeSeen"] == "1"  # "last change" is now the moment the page saw it


def test_services_list_shows_the_registered_service(ui_agent, browser):
    register_web(ui_agent)
    session = browser.open(f"{ui_agent.url}/ui/#/services")
    state = wait_until(
        lambda: (s := page_state(browser, session))["serviceRow"] and s,
        timeout=20,
        what="the services list to show web",
    )
    assert state["serviceRow"] == "passing"
    assert "consul" in state["text"]


def test_services_list_survives_an_agent_restart(ui_agent, browser):
    register_web(ui_agent)
    session = browser.open(f"{ui_agent.url}/ui/#/services")
    wait_until(
        lambda: page_state(browser, session)["serviceRow"],
        timeout=20,
        what="web listed",
    )

    # A restarted dev agent has forgotten everything and counts its index from the start.
    ui_agent.restart()
    wait_until(
        lambda: (
            (s := page_state(browser, session))["serviceRow"] is None
            and "consul" in s["text"]
        ),
        timeout=30,
        what="the list to drop web after the restart",
    )
    register_web(ui_agent)
    wait_until(
        lambda: page_state(browser, session)["serviceRow"] == "passing",
        timeout=30,
        what="web to come back without a reload",
    )


def wait_js(browser: Chromium, session: str, expression: str, until, what: str):
    """Evaluate `expression` in the page until `until(value)` holds; returns the value."""

    def ready():
        value = browser.evaluate(session, expression)
        return until(value) and (value,)

    return wait_until(ready, timeout=20, what=what)[0]


def test_nodes_and_kv_pages(ui_agent, browser):
    requests.put(
        f"{ui_agent.url}/v1/kv/config/gateway/lb", data=b"round_robin", timeout=5
    ).raise_for_status()
    session = browser.open(f"{ui_agent.url}/ui/#/nodes")
    wait_js(
        browser,
        session,
        "document.querySelector('tr[data-node=\"test-node\"]')?.innerText",
        bool,
        "the nodes page to list test-node",
    )

    # Navigating is a hash change; the folder listing and the value come from the KV API.
    browser.evaluate(session, "location.hash = '#/kv/config/'")
    wait_js(
        browser,
        session,
        "document.querySelector('.kvlist')?.innerText ?? ''",
        lambda text: "gateway/" in text,
        "the KV folder config/ to list gateway/",
    )
    browser.evaluate(session, "location.hash = '#/kv/config/gateway/lb'")
    wait_js(
        browser,
        session,
        "document.querySelector('pre.value')?.textContent",
        lambda text: text == "round_robin",
        "the KV key page to show the decoded value",
    )


ACL_TOKEN = "ui-test-secret"


@pytest.fixture
def acl_ui_agent():
    agent = Agent(free_port(), "-ui", "-acl-token", ACL_TOKEN)
    yield agent
    agent.process.stop()


def submit_token(browser: Chromium, session: str, token: str) -> None:
    """Type `token` into the header form and submit it, as a person would."""
    browser.evaluate(
        session,
        f"""(() => {{
          const form = document.getElementById('acl-form');
          form.querySelector('input[name=token]').value = {json.dumps(token)};
          form.requestSubmit();
        }})()""",
    )


def test_acl_mode_asks_for_a_token_and_then_shows_services(acl_ui_agent, browser):
    register_web(acl_ui_agent, token=ACL_TOKEN)
    session = browser.open(f"{acl_ui_agent.url}/ui/#/services")

    # Without a token every API call answers 403: the page says so and asks for one.
    state = wait_until(
        lambda: (
            (s := page_state(browser, session))["aclForm"]
            and s["aclPanel"] == "ACL token required"
            and s
        ),
        timeout=20,
        what="the token-required state",
    )
    assert state["acl"] == "required"
    assert state["serviceRow"] is None
    assert "403 Permission denied" in state["text"]
    assert state["live"] == "locked"
    assert state["storedToken"] is None

    # A wrong token is checked against the agent and not kept.
    submit_token(browser, session, "not-the-token")
    wait_until(
        lambda: page_state(browser, session)["aclNote"] == "Rejected: ACL not found",
        timeout=20,
        what="the wrong token to be rejected",
    )
    assert page_state(browser, session)["storedToken"] is None

    submit_token(browser, session, ACL_TOKEN)
    state = wait_until(
        lambda: (
            (s := page_state(browser, session))["serviceRow"] == "passing"
            # /v1/agent/self goes out with the token too (answers independently)
            and s["node"] == "test-node"
            and s
        ),
        timeout=20,
        what="the services list and the header to load once the token is set",
    )
    assert json.loads(state["storedToken"]) == {"SecretID": ACL_TOKEN}
    assert state["acl"] == "ok" and not state["aclForm"]
    assert "token set" in state["aclHeader"]

    # Another tab on the same agent starts with the stored token (localStorage),
    # and its blocking queries carry it as well.
    other = browser.open(f"{acl_ui_agent.url}/ui/#/services/web")
    wait_until(
        lambda: page_state(browser, other)["check"] == "passing",
        timeout=20,
        what="the service page to load with the stored token",
    )
    requests.put(
        f"{acl_ui_agent.url}/v1/agent/check/fail/service:web-1",
        headers={"X-Consul-Token": ACL_TOKEN},
        timeout=5,
    ).raise_for_status()
    wait_until(
        lambda: page_state(browser, other)["check"] == "critical",
        timeout=20,
        what="a blocking query with the token to bring the change",
    )
    assert not page_state(browser, other)["aclForm"]
