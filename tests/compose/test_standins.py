"""docker/standins/consul/consul: the stand-in `consul` command runs devconsul for the compose
file's own Consul command and answers the compose healthcheck (`consul members`).

Run here as real processes on loopback, without Docker, so CI checks it too."""

import os
import subprocess
import sys
from pathlib import Path

import requests
import yaml

from tests.compose.tooling import COMPOSE_FILE, REPO
from tests.support.processes import ManagedProcess, free_port

CONSUL = REPO / "docker" / "standins" / "consul" / "consul"
# The stand-in execs `devconsul`: the one installed beside this interpreter.
ENV = {"PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}


def consul(*args: str, address: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(CONSUL), *args],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, **ENV, "CONSUL_HTTP_ADDR": address},
        check=False,
    )


def compose_consul_command() -> list[str]:
    """The compose file's command, with its mounted config dir at its place in the repo."""
    service = yaml.safe_load(COMPOSE_FILE.read_text())["services"]["consul"]
    (volume,) = service["volumes"]
    source, target, _ = volume.split(":")
    return [arg.replace(target, str(REPO / source)) for arg in service["command"]]


def test_compose_command_runs_devconsul_with_the_agent_config_and_members_answers():
    port = free_port()
    address = f"127.0.0.1:{port}"
    agent = ManagedProcess(
        [
            sys.executable,
            str(CONSUL),
            *compose_consul_command(),
            # Later flags win: loopback and a free port instead of the container's 0.0.0.0:8500.
            "-client=127.0.0.1",
            f"-http-port={port}",
        ],
        env=ENV,
        name="standin-consul",
    ).start()
    try:
        agent.wait_http(f"http://{address}/v1/status/leader")
        # node_name and datacenter come from consul/agent.hcl.
        self_info = requests.get(f"http://{address}/v1/agent/self", timeout=5).json()
        assert (self_info["Config"]["NodeName"], self_info["Config"]["Datacenter"]) == (
            "consul",
            "dc1",
        )
        members = consul("members", address=address)
        assert members.returncode == 0, members.stderr
        assert members.stdout.splitlines()[1].split()[:3] == [
            "consul",
            "127.0.0.1:8301",
            "alive",
        ]
    finally:
        agent.stop()
    assert "ignoring setting ui_config.enabled" in agent.output()


def test_members_fails_when_no_agent_answers():
    result = consul("members", address=f"127.0.0.1:{free_port()}")
    assert result.returncode == 1
    assert "Error retrieving members" in result.stderr


def test_commands_it_cannot_stand_in_for_are_refused():
    for args in (["kv", "get", "x"], ["agent", "-dev", "-retry-join=x"], ["agent"]):
        result = consul(*args, address="127.0.0.1:1")
        assert result.returncode == 1, args
        assert "consul (devconsul stand-in):" in result.stderr, args
