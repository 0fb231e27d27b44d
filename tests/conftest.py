"""Fixtures shared by every test package: a real devconsul agent process on a free loopback port."""

import gc
import os

import pytest

from tests.support.processes import ManagedProcess, free_port, python_module

POSTGRES_URL = os.environ.get("SWITCHYARD_TEST_POSTGRES_URL", "")


class Agent:
    """A running devconsul process and how to reach it."""

    def __init__(self, port: int, *extra_args: str):
        self.extra_args = extra_args
        self.process = start_devconsul(port, *extra_args)
        self.port = port
        self.addr = f"127.0.0.1:{port}"
        self.url = f"http://127.0.0.1:{port}"

    def restart(self) -> None:
        """Stop and start again on the same port: an agent restart loses all in-memory state."""
        self.process.stop()
        self.process = start_devconsul(self.port, *self.extra_args)


def start_devconsul(port: int, *extra: str) -> ManagedProcess:
    args = [
        "agent",
        "-dev",
        "-client",
        "127.0.0.1",
        "-http-port",
        str(port),
        "-node",
        "test-node",
        *extra,
    ]
    proc = ManagedProcess(
        python_module("devconsul", *args), name=f"devconsul-{port}"
    ).start()
    proc.wait_http(f"http://127.0.0.1:{port}/v1/status/leader", status=200)
    return proc


@pytest.fixture(scope="session", autouse=True)
def process_logs(tmp_path_factory):
    """Every test process's log in this run's temporary directory (see ManagedProcess)."""
    ManagedProcess.log_dir = tmp_path_factory.mktemp("process-logs")
    yield ManagedProcess.log_dir
    ManagedProcess.log_dir = None


@pytest.fixture
def devconsul():
    """A fresh devconsul agent for one test."""
    port = free_port()
    agent = Agent(port)
    yield agent
    agent.process.stop()


@pytest.fixture(scope="session")
def shared_devconsul():
    """One devconsul agent for tests that only read or use unique names."""
    port = free_port()
    agent = Agent(port)
    yield agent
    agent.process.stop()


@pytest.fixture
def unfrozen_gc():
    """The garbage collector as a fresh process has it (nothing frozen), before and after a
    test that runs a process's way out (chassis.worker.skip_exit_collection) in pytest's own."""
    gc.unfreeze()
    yield
    gc.unfreeze()
