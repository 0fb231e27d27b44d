import os
import signal
import socket
import threading
import time

import pytest

from switchyard.agent import choose_agent
from switchyard.plan import StackOptions, free_port
from switchyard.stack import Stack, StartupError, port_in_use
from tests.support.processes import wait_until


def test_startup_error_shows_the_last_lines():
    error = StartupError("gateway-1", "exited with code 3 while starting", ["a", "b"])
    assert error.describe().splitlines() == [
        "ERROR switchyard: gateway-1 exited with code 3 while starting",
        "--- last 2 lines of gateway-1 ---",
        "a",
        "b",
    ]


def test_port_in_use():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        assert port_in_use(busy.getsockname()[1])
    assert not port_in_use(free_port())


@pytest.mark.parametrize("which", ["gateway", "consul"])
def test_a_busy_port_stops_the_start_before_anything_runs(tmp_path, which):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        ports = {"gateway": free_port(), "consul": free_port(), which: taken}
        options = StackOptions(
            users=1, orders=1, gateway_port=ports["gateway"], data_dir=tmp_path
        )
        stack = Stack(options, choose_agent(None, ports["consul"], prefer="devconsul"))
        with pytest.raises(
            StartupError, match=f"port {taken} is already in use"
        ) as exc:
            stack.start()
    assert exc.value.name == which
    assert stack.processes == {}
    assert not (tmp_path / "switchyard.json").exists()


@pytest.mark.integration
def test_the_agent_dying_while_the_services_start_fails_the_start_up_at_once(tmp_path):
    options = StackOptions(
        users=1, orders=1, gateway_port=free_port(), data_dir=tmp_path, drain_seconds=0
    )
    agent = choose_agent(None, free_port(), prefer="devconsul")
    stack = Stack(options, agent, startup_timeout=60)
    failures = []

    def start():
        try:
            stack.start()
        except StartupError as exc:
            failures.append(exc)

    starting = threading.Thread(target=start)
    starting.start()
    try:
        # The agent and both services run: start() now waits for them to pass.
        wait_until(lambda: len(stack.processes) == 3, 30, what="the services started")
        os.killpg(stack.processes["consul"].pid, signal.SIGKILL)
        killed = time.monotonic()
        starting.join(timeout=30)
    finally:
        stack.stop()
        starting.join(timeout=30)
    assert str(failures[0]) == "consul: exited with code -9 while starting"
    assert time.monotonic() - killed < 15  # not the start-up timeout (60 s)
    assert not any(proc.alive() for proc in stack.processes.values())
