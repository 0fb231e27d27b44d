import json
import os
import re
import signal
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest
import requests

from switchyard.cli import build_parser, main
from switchyard.process import pid_alive
from switchyard.spanstore import SpanStore
from switchyard.traces import trace_table
from tests.support.processes import ManagedProcess, free_port, python_module, wait_until
from tests.switchyard.test_traces import TRACE, WATERFALL, order_trace


def parse(*argv):
    return build_parser().parse_args(list(argv))


def test_up_defaults():
    args = parse("up")
    assert (args.users, args.orders, args.gateway_port, args.consul_port) == (
        2,
        2,
        8000,
        8500,
    )
    assert (args.consul_addr, args.strategy, args.agent) == (
        None,
        "round_robin",
        "auto",
    )
    assert args.data_dir == Path("var")


def test_up_options():
    args = parse(
        "up",
        "--users",
        "3",
        "--orders",
        "1",
        "--gateway-port",
        "9000",
        "--consul-addr",
        "10.0.0.1:8500",
        "--strategy",
        "random",
        "--data-dir",
        "/tmp/x",
        "--token",
        "t",
    )
    assert (args.users, args.orders, args.gateway_port) == (3, 1, 9000)
    assert (args.consul_addr, args.strategy, args.data_dir, args.token) == (
        "10.0.0.1:8500",
        "random",
        Path("/tmp/x"),
        "t",
    )


def test_token_defaults_to_the_consul_environment_variable(monkeypatch):
    monkeypatch.setenv("CONSUL_HTTP_TOKEN", "from-env")
    assert parse("up").token == "from-env"
    assert parse("status").token == "from-env"


@pytest.mark.parametrize(
    "argv",
    [
        ["up", "--users", "0"],
        ["up", "--gateway-port", "70000"],
        ["up", "--strategy", "fastest"],
        ["up", "--consul-port", "8500", "--consul-addr", "127.0.0.1:8500"],
        ["sideways"],
        [],
    ],
)
def test_bad_arguments_exit_with_usage(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        parse(*argv)
    assert exc.value.code == 2
    assert "usage: switchyard" in capsys.readouterr().err


def test_status_without_a_stack_says_so(tmp_path, capsys):
    assert main(["status", "--data-dir", str(tmp_path)]) == 1
    assert "no stack running" in capsys.readouterr().err


def test_down_without_a_stack_is_a_no_op(tmp_path, capsys):
    assert main(["down", "--data-dir", str(tmp_path)]) == 0
    assert "no stack running" in capsys.readouterr().out


def test_up_sends_spans_to_its_own_receiver_unless_given_an_endpoint():
    assert parse("up").otlp_endpoint is None
    assert parse("up", "--otlp-endpoint", "http://c:4318").otlp_endpoint == (
        "http://c:4318"
    )


def test_traces_without_any_says_so(tmp_path, capsys):
    assert main(["traces", "--data-dir", str(tmp_path)]) == 0
    assert capsys.readouterr().out == f"no traces in {tmp_path}/traces.db yet\n"


def test_traces_lists_recent_ones_and_draws_one_by_trace_or_request_id(
    tmp_path, capsys, utc
):
    spans = order_trace()
    spans[0] = replace(spans[0], request_id="req-42")
    SpanStore(tmp_path).add(spans)
    assert main(["traces", "--data-dir", str(tmp_path)]) == 0
    assert capsys.readouterr().out == trace_table([spans]) + "\n"
    for ident in (TRACE, "req-42"):
        assert main(["traces", ident, "--data-dir", str(tmp_path)]) == 0
        assert capsys.readouterr().out == (f"trace {TRACE}, 5 spans\n\n{WATERFALL}\n")


def test_traces_of_an_unknown_id_says_so_and_fails(tmp_path, capsys):
    SpanStore(tmp_path).add(order_trace())
    assert main(["traces", "f" * 32, "--data-dir", str(tmp_path)]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith(f"ERROR switchyard: no trace '{'f' * 32}' in ")


def test_up_rejects_a_malformed_consul_address(tmp_path, capsys):
    assert main(["up", "--data-dir", str(tmp_path), "--consul-addr", "nowhere"]) == 2
    assert "HOST:PORT" in capsys.readouterr().out


# -- `switchyard up` as a user runs it: a real stack on free ports -------------------------

STARTED = re.compile(r"\[started\]\s+(\S+)\s+pid (\d+)")


def switchyard(*args: str, env: dict | None = None) -> ManagedProcess:
    return ManagedProcess(
        python_module("switchyard", *args), env=env, name="switchyard"
    )


def up(tmp_path, *extra: str, env: dict | None = None) -> ManagedProcess:
    args = ["up", "--data-dir", str(tmp_path), "--gateway-port", str(free_port())]
    return switchyard(*args, "--users", "1", "--orders", "1", *extra, env=env).start()


def wait_up(proc: ManagedProcess) -> None:
    def ready():
        if not proc.alive():
            raise AssertionError(f"switchyard exited:\n{proc.output()[-3000:]}")
        return "following logs" in proc.output()

    wait_until(ready, 90, 0.2, "switchyard up")


def started_pids(output: str) -> dict[str, int]:
    return {name: int(pid) for name, pid in STARTED.findall(output)}


def group_gone(pid: int) -> bool:
    try:
        os.killpg(pid, 0)
    except ProcessLookupError:
        return True
    return False


def assert_nothing_left(pids: dict[str, int]) -> None:
    wait_until(
        lambda: all(not pid_alive(p) and group_gone(p) for p in pids.values()),
        10,
        what=f"every process group gone: {pids}",
    )


def registered(agent) -> set[str]:
    return set(requests.get(f"{agent.url}/v1/agent/services", timeout=5).json())


def status_json(tmp_path) -> dict:
    result = subprocess.run(
        python_module("switchyard", "status", "--json", "--data-dir", str(tmp_path)),
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return json.loads(result.stdout)


def assert_traces_kept(data_dir, out: str) -> None:
    """A request through the gateway shows up in `switchyard traces`, by its X-Request-ID."""
    gateway = re.search(r"^Gateway\s+(\S+)$", out, re.MULTILINE).group(1)
    request_id = f"req-{os.getpid()}"
    created = requests.post(
        f"{gateway}/api/users",
        json={"name": "Ada", "email": "ada@example.com"},
        headers={"X-Request-ID": request_id},
        timeout=10,
    )
    assert created.status_code == 201

    def waterfall():
        result = subprocess.run(
            python_module("switchyard", "traces", request_id, "--data-dir", data_dir),
            check=False,
            capture_output=True,
            text=True,
            timeout=30,
        )
        return result.stdout if result.returncode == 0 else None

    drawn = wait_until(waterfall, 15, 0.2, f"the trace of {request_id}")
    assert re.search(r"^user-service POST /users .* ms  \|#+ *\|$", drawn, re.MULTILINE)
    assert "user-service sqlite INSERT" in drawn


@pytest.mark.integration
def test_up_prints_the_table_status_sees_it_and_sigterm_stops_everything(
    tmp_path, devconsul
):
    proc = up(tmp_path, "--consul-addr", devconsul.addr)
    try:
        wait_up(proc)
        out = proc.output()
        pids = started_pids(out)
        assert sorted(n.split("-127")[0] for n in pids) == [
            "gateway",
            "order-service",
            "user-service",
        ]
        assert re.search(r"^INSTANCE\s+ADDRESS\s+PID\s+HEALTH$", out, re.MULTILINE)
        for name, pid in pids.items():
            assert re.search(
                rf"^{name}\s+127\.0\.0\.1:\d+\s+{pid}\s+passing$", out, re.MULTILINE
            ), name
        assert f"Consul UI  {devconsul.url}/ui/  (external)" in out

        report = status_json(tmp_path)
        instances = {i["id"]: i for s in report["services"] for i in s["instances"]}
        assert {n: instances[n]["pid"] for n in pids} == pids
        assert all(instances[n]["status"] == "passing" for n in pids)
        assert all(instances[n]["checks"][0]["output"] for n in pids)
        assert registered(devconsul) >= set(pids)
        assert_traces_kept(tmp_path, out)
    finally:
        proc.signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    assert_nothing_left(pids)
    assert registered(devconsul).isdisjoint(pids)
    assert not (tmp_path / "switchyard.json").exists()
    assert "switchyard: stopped" in proc.output()


@pytest.mark.integration
def test_down_from_another_terminal_stops_the_stack_and_its_agent(tmp_path):
    proc = up(tmp_path, "--consul-port", str(free_port()), "--agent", "devconsul")
    try:
        wait_up(proc)
        pids = started_pids(proc.output())
        assert "consul" in pids
        assert main(["down", "--data-dir", str(tmp_path)]) == 0
        assert proc.wait(timeout=10) == 0
    finally:
        proc.stop()
    assert_nothing_left(pids)


@pytest.mark.integration
def test_a_process_failing_to_start_stops_everything_with_its_last_lines(
    tmp_path, devconsul
):
    # A setting only the gateway reads, so the services are up when it fails.
    proc = up(
        tmp_path, "--consul-addr", devconsul.addr, env={"GATEWAY_MAX_ATTEMPTS": "0"}
    )
    try:
        assert proc.wait(timeout=90) == 1
    finally:
        proc.stop()
    out = proc.output()
    pids = started_pids(out)
    gateway = next(n for n in pids if n.startswith("gateway-"))
    assert re.search(
        rf"ERROR switchyard: {gateway} exited with code \d+ while starting", out
    )
    assert "--- last " in out and "GATEWAY_MAX_ATTEMPTS" in out
    assert "start-up failed; everything else was stopped" in out
    assert_nothing_left(pids)
    assert registered(devconsul).isdisjoint(pids)
