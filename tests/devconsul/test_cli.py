"""The command line: listen line, flag spellings, port in use, clean stop."""

import signal
import socket
import subprocess

import pytest
import requests

from devconsul.cli import build_parser, config_from_args
from devconsul.durations import SECOND
from tests.support.processes import (
    REPO,
    ManagedProcess,
    free_port,
    python_module,
    wait_until,
)

pytestmark = pytest.mark.integration


def _run(*args: str) -> subprocess.CompletedProcess:
    """The CLI in a child process that is expected to exit by itself."""
    return subprocess.run(
        python_module("devconsul", *args),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )


def test_double_dash_flags_and_listen_line_and_sigterm():
    port = free_port()
    proc = ManagedProcess(
        python_module(
            "devconsul", "agent", "--dev", f"--http-port={port}", "--node", "cli-node"
        ),
        name="devconsul-cli",
    ).start()
    try:
        proc.wait_http(f"http://127.0.0.1:{port}/v1/status/leader", status=200)
        self_info = requests.get(f"http://127.0.0.1:{port}/v1/agent/self", timeout=5)
        assert self_info.json()["Config"]["NodeName"] == "cli-node"
        proc.signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
        output = proc.output()
        assert f"devconsul: HTTP API on http://127.0.0.1:{port}" in output
        assert "devconsul: stopped" in output
    finally:
        proc.stop()


def test_sigint_stops_cleanly(devconsul):
    devconsul.process.signal(signal.SIGINT)
    assert devconsul.process.wait(timeout=10) == 0


def test_port_in_use_is_one_clear_line():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = _run("agent", "-dev", "-http-port", str(port))
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [
        f"devconsul: error: cannot listen on 127.0.0.1:{port}: address already in use"
    ]


def test_dev_is_required():
    result = _run("agent")
    assert result.returncode == 2
    assert "add -dev" in result.stderr


def test_hidden_reaper_flags(fast_reaper_agent):
    url = fast_reaper_agent.url
    body = {
        "Name": "doomed",
        "Check": {"TTL": "30s", "DeregisterCriticalServiceAfter": "100ms"},
    }
    assert requests.put(f"{url}/v1/agent/service/register", json=body, timeout=5).ok
    wait_until(
        lambda: requests.get(f"{url}/v1/agent/services", timeout=5).json() == {},
        timeout=5,
        what="the reaper to remove the critical service",
    )
    assert "dev-reap-interval" not in _run("agent", "--help").stdout


def test_hidden_session_ttl_floor_flag(capsys):
    parse = build_parser().parse_args
    config = config_from_args(parse(["agent", "-dev", "-dev-session-ttl-min", "1s"]))
    assert config.session_ttl_min_ns == SECOND
    assert config_from_args(parse(["agent", "-dev"])).session_ttl_min_ns == 10 * SECOND
    with pytest.raises(SystemExit):
        parse(["agent", "--help"])
    help_text = capsys.readouterr().out
    assert "-acl-token" in help_text
    assert "session-ttl-min" not in help_text


def test_hcl_sets_only_the_prometheus_retention_time():
    """Consul's own way to turn Prometheus output on (-hcl with the telemetry
    block, agent/config/flags.go); devconsul refuses any other -hcl text."""
    parse = build_parser().parse_args
    hcl = 'telemetry { prometheus_retention_time = "60s" }'
    config = config_from_args(parse(["agent", "-dev", "-hcl", hcl]))
    assert config.prometheus_retention_ns == 60 * SECOND
    assert config_from_args(parse(["agent", "-dev"])).prometheus_retention_ns == 0
    result = _run("agent", "-dev", "-hcl", "ui_config { enabled = true }")
    assert result.returncode == 2
    assert "understands only 'telemetry { prometheus_retention_time" in result.stderr
    result = _run(
        "agent", "-dev", "-hcl", 'telemetry { prometheus_retention_time = "x" }'
    )
    assert result.returncode == 2
    assert "argument -hcl" in result.stderr
