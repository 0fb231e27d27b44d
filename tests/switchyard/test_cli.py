import contextlib
import json
import os
import re
import select
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
import requests

from switchyard.cli import build_parser, main
from switchyard.lifeline import Holder
from switchyard.process import pid_alive, process_start_time, same_process
from switchyard.shutdown import SUPERVISOR_TIMEOUT
from switchyard.spanstore import SpanStore
from switchyard.state import read_state, state_path, write_state
from switchyard.traces import trace_table
from tests.support.processes import (
    REPO,
    ManagedProcess,
    free_port,
    python_module,
    wait_until,
)
from tests.switchyard.standins import (
    SLEEPER,
    dead_pid,
    fill_pipe,
    record,
    registered,
    spawn,
    state_for,
)
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
    assert args.drain_seconds == 3.0


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
        "--drain-seconds",
        "0.5",
    )
    assert (args.users, args.orders, args.gateway_port) == (3, 1, 9000)
    assert args.drain_seconds == 0.5
    assert (args.consul_addr, args.strategy, args.data_dir, args.token) == (
        "10.0.0.1:8500",
        "random",
        Path("/tmp/x"),
        "t",
    )


def test_log_level_in_any_case_defaults_to_the_environment_variable(monkeypatch):
    monkeypatch.delenv("LOG_LEVEL", raising=False)
    assert parse("up").log_level == "INFO"
    assert parse("up", "--log-level", "debug").log_level == "DEBUG"
    monkeypatch.setenv("LOG_LEVEL", "warning")
    assert parse("up").log_level == "WARNING"
    # checked like the option, not passed on for every process to fail with
    monkeypatch.setenv("LOG_LEVEL", "verbose")
    with pytest.raises(SystemExit):
        parse("up")
    assert parse("status").command == "status"  # only up takes it


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
        ["up", "--drain-seconds", "-1"],
        ["up", "--drain-seconds", "11"],  # past what a stop waits for (STOP_GRACE)
        ["up", "--drain-seconds", "soon"],
        ["up", "--log-level", "verbose"],
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


def test_an_unreadable_state_file_is_reported_and_down_removes_it(tmp_path, capsys):
    path = state_path(tmp_path)
    path.write_text("{not json")
    problem = f"cannot read {path}: Expecting property name enclosed in double quotes"
    assert main(["status", "--data-dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"WARNING switchyard: {problem}")
    assert f"no stack running from {tmp_path}/" in err
    assert main(["down", "--data-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"WARNING switchyard: {problem}")
    assert out.endswith("; removed it (processes it may list were not stopped)\n")
    assert not path.exists()


def test_down_finishes_the_stop_of_a_supervisor_that_dies_as_it_is_found(
    tmp_path, capsys, monkeypatch
):
    supervisor, service = dead_pid(), spawn(SLEEPER)
    write_state(tmp_path, state_for(None, record(service, "user-service")))
    # The lock named it, alive; it died before down's SIGTERM reached it.
    found = Holder(supervisor, None, "just now")
    monkeypatch.setattr("switchyard.cli.running_holder", lambda data_dir: found)
    try:
        assert main(["down", "--data-dir", str(tmp_path)]) == 0
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(service.pid, signal.SIGKILL)  # a no-op once down has stopped it
        ended = service.wait(timeout=10)
    assert ended == -signal.SIGTERM  # stopped by down, as its reaper would have
    out = capsys.readouterr().out
    assert "switchyard had ended meanwhile, without stopping its stack\n" in out
    assert out.endswith("switchyard: stopped (forced)\n")
    assert not state_path(tmp_path).exists()


def test_down_forced_to_finish_a_stop_warns_of_an_unreadable_state_file_once(
    tmp_path, capsys, monkeypatch
):
    path = state_path(tmp_path)
    path.write_text("{not json")
    found = Holder(dead_pid(), None, "just now")  # alive when found, dead at SIGTERM
    monkeypatch.setattr("switchyard.cli.running_holder", lambda data_dir: found)
    assert main(["down", "--data-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert out.count(f"cannot read {path}") == 1, out
    assert "; removed it (processes it may list were not stopped)\n" in out
    assert out.endswith("switchyard: stopped (forced)\n")
    assert not path.exists()


def test_up_sends_spans_to_its_own_receiver_unless_given_an_endpoint():
    assert parse("up").otlp_endpoint is None
    assert parse("up", "--otlp-endpoint", "http://c:4318").otlp_endpoint == (
        "http://c:4318"
    )


def test_traces_without_any_says_so(tmp_path, capsys):
    assert main(["traces", "--data-dir", str(tmp_path)]) == 0
    assert capsys.readouterr().out == f"no traces in {tmp_path}/traces.db yet\n"


def test_traces_from_a_data_directory_not_made_yet_makes_none(tmp_path, capsys):
    data_dir = tmp_path / "var"
    assert main(["traces", "--data-dir", str(data_dir)]) == 0
    assert capsys.readouterr().out == f"no traces in {data_dir}/traces.db yet\n"
    assert main(["traces", "f" * 32, "--data-dir", str(data_dir)]) == 1
    assert not data_dir.exists()


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


@pytest.mark.parametrize(
    "agent",
    [["--consul-port", "8600"], ["--consul-addr", "127.0.0.1:8600"]],
    ids=["managed", "external"],
)
def test_up_refuses_a_gateway_port_that_is_the_agents(tmp_path, capsys, agent):
    argv = ["up", "--data-dir", str(tmp_path), "--gateway-port", "8600", *agent]
    assert main(argv) == 2
    assert "--gateway-port 8600 is the Consul agent's port" in capsys.readouterr().out
    assert list(tmp_path.iterdir()) == []  # refused before anything was claimed


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

    # the gateway's span is the root: its attempt, user-service's request, its statement
    tree = [
        r"gateway POST /api/users +\S+ ms  \|#+ *\|",
        r"  gateway POST http://127\.0\.0\.1:\d+/users +\S+ ms  \|.*\|",
        r"    user-service POST /users +\S+ ms  \|.*\|",
        r"      user-service sqlite INSERT +\S+ ms  \|.*\|",
    ]

    def waterfall():
        result = subprocess.run(
            python_module("switchyard", "traces", request_id, "--data-dir", data_dir),
            check=False,
            capture_output=True,
            text=True,
            timeout=30,
        )
        # spans arrive from each process in its own time: wait for the whole tree
        drawn = result.stdout.splitlines()[2:] if result.returncode == 0 else []
        if len(drawn) == len(tree):
            return drawn
        return None

    drawn = wait_until(waterfall, 15, 0.2, f"the trace of {request_id}")
    for line, pattern in zip(drawn, tree, strict=True):
        assert re.fullmatch(pattern, line), (line, pattern)


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

        second = subprocess.run(
            python_module("switchyard", "up", "--data-dir", str(tmp_path)),
            check=False,
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert second.returncode == 1
        assert f"already running (switchyard pid {proc.pid}, started " in second.stdout
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
    proc = up(
        tmp_path,
        *("--consul-port", str(free_port()), "--agent", "devconsul"),
        *("--drain-seconds", "0.5"),  # what `down` stops matters here, not the drain
    )
    try:
        wait_up(proc)
        pids = started_pids(proc.output())
        assert "consul" in pids
        assert main(["down", "--data-dir", str(tmp_path)]) == 0
        assert proc.wait(timeout=10) == 0
    finally:
        proc.stop()
    assert_nothing_left(pids)


def routing(gateway_url: str) -> dict | None:
    """The gateway's /health while it answers ok (Consul reachable, every service routable)."""
    try:
        health = requests.get(f"{gateway_url}/health", timeout=5).json()
    except (requests.RequestException, ValueError):
        return None
    return health if health["status"] == "ok" else None


@pytest.mark.integration
def test_a_process_that_dies_on_its_own_is_started_again_the_agent_too(tmp_path):
    proc = up(
        tmp_path,
        *("--consul-port", str(free_port()), "--agent", "devconsul"),
        *("--drain-seconds", "0.5"),
    )
    every_pid: set[int] = set()
    try:
        wait_up(proc)
        gateway = re.search(r"^Gateway\s+(\S+)$", proc.output(), re.MULTILINE).group(1)
        first = started_pids(proc.output())
        every_pid.update(first.values())
        user = next(name for name in first if name.startswith("user-service"))

        for name in (user, "consul"):  # an instance crashes; then the agent
            os.killpg(first[name], signal.SIGKILL)
            wait_until(
                lambda name=name: started_pids(proc.output())[name] != first[name],
                30,
                0.2,
                lambda name=name: f"{name} started again\n{proc.output()[-3000:]}",
            )
            every_pid.update(started_pids(proc.output()).values())
            assert f"{name} exited with code -9; starting it again\n" in proc.output()
            # Back in Consul (after the agent's restart, every instance registers again
            # by itself) and routed to: the gateway's /health says ok again.
            health = wait_until(lambda: routing(gateway), 60, 0.2, "/health ok")
            assert health["services"]["user-service"]["routable"] == 1
            assert health["services"]["order-service"]["routable"] == 1
        created = requests.post(
            f"{gateway}/api/users", json={"name": "Ada", "email": "a@x.org"}, timeout=10
        )
        assert created.status_code == 201
        report = status_json(tmp_path)
        now = started_pids(proc.output())
        assert {
            i["id"]: (i["pid"], i["status"])
            for s in report["services"]
            for i in s["instances"]
        } == {name: (pid, "passing") for name, pid in now.items()}
    finally:
        proc.signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    assert_nothing_left({str(pid): pid for pid in every_pid})


def draining(agent) -> bool:
    """Some instance is out of the passing set for its drain (maintenance on)."""
    entries = requests.get(f"{agent.url}/v1/health/state/any", timeout=5).json()
    return any(e["CheckID"].startswith("_service_maintenance:") for e in entries)


@pytest.mark.integration
@pytest.mark.parametrize(
    "ctrl_c", [False, True], ids=["alone", "ctrl-c-while-stopping"]
)
def test_a_process_failing_to_start_stops_everything_with_its_last_lines(
    tmp_path, devconsul, ctrl_c
):
    # A setting only the gateway reads, so the services are up when it fails.
    proc = up(
        tmp_path, "--consul-addr", devconsul.addr, env={"GATEWAY_MAX_ATTEMPTS": "0"}
    )
    try:
        if ctrl_c:  # once stopping has begun, a stop signal must not cut it short
            wait_until(lambda: draining(devconsul), 90, what="the services draining")
            proc.signal(signal.SIGINT)
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


# A stop signal in the instant between a failed start-up and its stop: raised by the stop
# itself, first thing (raise_signal runs the handler before it returns).
SIGNAL_AS_THE_STOP_BEGINS = (
    "import signal, sys\n"
    "from switchyard import cli\n"
    "from switchyard.stack import Stack\n"
    "stop = Stack.stop\n"
    "def signalled_stop(self):\n"
    "    signal.raise_signal(signal.SIGTERM)\n"
    "    stop(self)\n"
    "Stack.stop = signalled_stop\n"
    "sys.exit(cli.main(sys.argv[1:]))"
)


@pytest.mark.integration
def test_a_signal_as_a_failed_start_up_begins_to_stop_does_not_cut_it_short(
    tmp_path, devconsul
):
    args = ["up", "--data-dir", str(tmp_path), "--consul-addr", devconsul.addr]
    args += ["--gateway-port", str(free_port()), "--users", "1", "--orders", "1"]
    args += ["--drain-seconds", "0.5"]
    proc = ManagedProcess(
        [sys.executable, "-c", SIGNAL_AS_THE_STOP_BEGINS, *args],
        env={"GATEWAY_MAX_ATTEMPTS": "0"},  # the services come up, the gateway fails
        name="switchyard",
    ).start()
    try:
        assert proc.wait(timeout=90) == 130
    finally:
        proc.stop()
    out = proc.output()
    pids = started_pids(out)
    assert any(name.startswith("gateway-") for name in pids)
    assert "interrupted during start-up" in out
    # switchyard stopped its stack itself: its reaper found nothing left to do.
    assert "ended without stopping its stack" not in out, out
    assert not state_path(tmp_path).exists()
    assert_nothing_left(pids)
    assert registered(devconsul).isdisjoint(pids)


@pytest.mark.integration
@pytest.mark.parametrize(
    "state_file", [None, "", "{not json"], ids=["none-yet", "empty", "corrupt"]
)
def test_down_and_status_see_a_stack_that_is_still_starting(
    tmp_path, capsys, state_file
):
    # Nothing answers there: `up` waits for the agent and has written no state file.
    proc = up(tmp_path, "--consul-addr", f"127.0.0.1:{free_port()}")
    try:
        wait_until(lambda: "switchyard: starting" in proc.output(), 30)
        if state_file is not None:
            state_path(tmp_path).write_text(state_file)
        assert main(["status", "--data-dir", str(tmp_path)]) == 1
        err = capsys.readouterr().err
        assert f"(switchyard pid {proc.pid}, started " in err
        assert ("is starting" in err) == (state_file is None)
        assert main(["down", "--data-dir", str(tmp_path)]) == 0
        out = capsys.readouterr().out
        assert f"stopping switchyard (pid {proc.pid})" in out
        assert out.count("WARNING switchyard: cannot read") == (state_file is not None)
        assert proc.wait(timeout=30) == 130
    finally:
        proc.stop()
    assert "interrupted during start-up; everything was stopped" in proc.output()
    assert not state_path(tmp_path).exists()


@pytest.mark.parametrize(
    "unusable",
    [
        "a-file",
        "logs-a-file",
        pytest.param(
            "read-only",
            marks=pytest.mark.skipif(os.geteuid() == 0, reason="root writes anyway"),
        ),
    ],
)
def test_an_unusable_data_directory_is_an_error_naming_it(tmp_path, unusable):
    data_dir = tmp_path / "data"
    culprit, problem = data_dir, "File exists"
    if unusable == "a-file":
        data_dir.write_text("")
    elif unusable == "logs-a-file":
        culprit = data_dir / "logs"
        data_dir.mkdir()
        culprit.write_text("")
    else:
        culprit, problem = data_dir / "switchyard.lock", "Permission denied"
        data_dir.mkdir(mode=0o500)
    result = subprocess.run(
        python_module(
            "switchyard",
            *("up", "--data-dir", str(data_dir), "--startup-timeout", "20"),
            *("--agent", "devconsul", "--consul-port", str(free_port())),
            *("--gateway-port", str(free_port())),
        ),
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert re.search(
        rf"^ERROR switchyard: .*{problem}: '{re.escape(str(culprit))}'$",
        result.stdout,
        re.MULTILINE,
    ), result.stdout
    assert "[started]" not in result.stdout


@pytest.mark.parametrize(
    "command, reads",
    [
        (["status"], "switchyard.json"),
        (["down"], "switchyard.json"),
        (["traces"], "traces.db"),
        (["traces", "f" * 32], "traces.db"),
    ],
)
def test_commands_name_a_data_directory_that_is_a_file(
    tmp_path, capsys, command, reads
):
    data_dir = tmp_path / "data"
    data_dir.write_text("")
    assert main([*command, "--data-dir", str(data_dir)]) == 1
    out, err = capsys.readouterr()
    assert out + err == (
        f"ERROR switchyard: cannot use the data directory {data_dir}/: "
        f"[Errno 20] Not a directory: '{data_dir}/{reads}'\n"
    )
    assert data_dir.read_text() == ""  # `down` left it alone


# -- however `switchyard up` ends, nothing of its stack is left (issue 12) -----------------


class Reader:
    """Reads one output of switchyard in a thread, until EOF or until it `leave()`s."""

    def __init__(self, fd: int):
        self.fd = fd
        self.data = b""
        self._leaving = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        # select with a timeout, never a blocking read: leave() must close the descriptor
        # for real, and a read blocked on it would keep it open.
        while not self._leaving.is_set():
            if not select.select([self.fd], [], [], 0.1)[0]:
                continue
            try:
                chunk = os.read(self.fd, 65536)
            except OSError:  # EIO: the terminal's other side is gone
                return
            if not chunk:
                return
            self.data += chunk

    def text(self) -> str:
        return self.data.decode(errors="replace")

    def stop_reading(self) -> None:
        """The reader stays but reads no more (a stuck `| less`): the pipe fills up."""
        self._leaving.set()
        self._thread.join(timeout=5)

    def leave(self) -> None:
        """The reader goes away: the pipe has no reader left, the terminal hangs up."""
        self.stop_reading()
        os.close(self.fd)


# A terminal window: switchyard leads a session whose controlling terminal is the pty.
IN_A_TERMINAL = (
    "import fcntl, os, sys, termios\n"
    "fcntl.ioctl(0, termios.TIOCSCTTY, 0)\n"
    "os.execv(sys.executable, sys.argv[1:])"
)

# A bug in switchyard once the stack is up: supervise() raises when the test says so.
WITH_A_BUG = (
    "import pathlib, sys, time\n"
    "from switchyard import cli\n"
    "trigger = pathlib.Path(sys.argv[1])\n"
    "def supervise(stack, console):\n"
    "    while not trigger.exists():\n"
    "        time.sleep(0.1)\n"
    "    raise RuntimeError('a bug in switchyard')\n"
    "cli.supervise = supervise\n"
    "sys.exit(cli.main(sys.argv[2:]))"
)


def descendants(root: int) -> dict[int, int | None]:
    """Every process under `root` right now, found through /proc: pid -> start time."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError):
            continue  # gone meanwhile
        children.setdefault(parent, []).append(int(stat.parent.name))
    found: dict[int, int | None] = {}
    todo = [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found[child] = process_start_time(child)
            todo.append(child)
    return found


class UpRun:
    """`switchyard up` with 1 user and 1 order instance on devconsul, as a real process.

    Its instances drain for half a second: these tests are about what a stop leaves
    behind, not how long it drains (the default drain is in the table-and-SIGTERM test)."""

    def __init__(
        self, tmp_path: Path, agent, terminal: bool = False, bug: bool = False
    ):
        self.data_dir = tmp_path / "data"
        self.trigger = tmp_path / "bug"
        args = ["up", "--data-dir", str(self.data_dir), "--consul-addr", agent.addr]
        args += ["--gateway-port", str(free_port()), "--users", "1", "--orders", "1"]
        args += ["--drain-seconds", "0.5"]
        argv = python_module("switchyard", *args)
        if bug:
            argv = [sys.executable, "-c", WITH_A_BUG, str(self.trigger), *args]
        if terminal:
            main_end, sub_end = os.openpty()
            self.tty = os.ttyname(sub_end)
            self.proc = self._popen(
                [sys.executable, "-c", IN_A_TERMINAL, *argv], sub_end, sub_end, sub_end
            )
            os.close(sub_end)
            self.out, self.err = Reader(main_end), None
            return
        (out_r, out_w), (err_r, err_w) = os.pipe(), os.pipe()
        self.proc = self._popen(argv, subprocess.DEVNULL, out_w, err_w)
        os.close(out_w)
        os.close(err_w)
        self.out, self.err = Reader(out_r), Reader(err_r)

    @staticmethod
    def _popen(argv, stdin, stdout, stderr) -> subprocess.Popen:
        return subprocess.Popen(
            argv,
            cwd=REPO,
            stdin=stdin,
            stdout=stdout,
            stderr=stderr,
            start_new_session=True,
        )

    def output(self) -> str:
        return self.out.text() + (self.err.text() if self.err else "")

    def wait_up(self) -> None:
        def ready():
            if self.proc.poll() is not None:
                raise AssertionError(f"switchyard exited:\n{self.output()[-3000:]}")
            return "following logs" in self.out.text()

        wait_until(ready, 90, 0.2, "switchyard up")

    def stack(self) -> tuple[dict[int, int | None], set[str]]:
        """Pids (with start times) of the supervisor and everything under it, and the
        instance ids it registered. The state file and /proc must agree."""
        state = read_state(self.data_dir)
        recorded = {r.pid: r.started for r in state.processes}
        found = descendants(self.proc.pid)
        assert recorded.items() <= found.items()
        # The instances, their gunicorn workers and the reaper: more than the records.
        assert len(found) > len(recorded) + 1
        found[self.proc.pid] = process_start_time(self.proc.pid)
        return found, {r.name for r in state.processes}

    def gone(self, pids: dict[int, int | None]) -> None:
        wait_until(
            lambda: (
                not any(same_process(pid, started) for pid, started in pids.items())
            ),
            60,
            0.2,
            lambda: f"every process gone: {pids}\n{self.output()[-3000:]}",
        )

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)


def signal_to_switchyard(sig: int) -> Callable[[UpRun], None]:
    # To its process group, as the terminal sends Ctrl-C and Ctrl-\\.
    return lambda run: os.killpg(run.proc.pid, sig)


def tee_then_ctrl_c(run: UpRun) -> None:
    # `switchyard up 2>&1 | tee log`, Ctrl-C: tee dies at once, every message after fails.
    run.out.leave()
    run.err.leave()
    os.killpg(run.proc.pid, signal.SIGINT)


ENDINGS = [
    pytest.param(signal_to_switchyard(signal.SIGINT), {0}, {}, id="ctrl-c"),
    pytest.param(signal_to_switchyard(signal.SIGTERM), {0}, {}, id="sigterm"),
    pytest.param(signal_to_switchyard(signal.SIGHUP), {0}, {}, id="sighup"),
    pytest.param(signal_to_switchyard(signal.SIGQUIT), {0}, {}, id="sigquit"),
    # SIGHUP, or the hung-up terminal seen first: either way it stops.
    pytest.param(
        lambda run: run.out.leave(), {0, 141}, {"terminal": True}, id="terminal-closed"
    ),
    pytest.param(lambda run: run.out.leave(), {141}, {}, id="stdout-reader-gone"),
    pytest.param(lambda run: run.err.leave(), {141}, {}, id="stderr-reader-gone"),
    pytest.param(tee_then_ctrl_c, {0, 141}, {}, id="tee-then-ctrl-c"),
    pytest.param(
        lambda run: run.trigger.touch(), {1}, {"bug": True}, id="bug-in-switchyard"
    ),
    pytest.param(signal_to_switchyard(signal.SIGKILL), {-9}, {}, id="sigkill"),
]


@pytest.mark.integration
@pytest.mark.parametrize(("end", "codes", "how"), ENDINGS)
def test_however_up_ends_no_process_is_left_and_instances_deregister(
    tmp_path, shared_devconsul, end, codes, how
):
    run = UpRun(tmp_path, shared_devconsul, **how)
    try:
        run.wait_up()
        pids, instances = run.stack()
        assert registered(shared_devconsul) >= instances
        end(run)
        assert run.proc.wait(timeout=60) in codes
    finally:
        run.kill()  # a no-op unless the test failed before the ending
    run.gone(pids)  # after SIGKILL the reaper does the stopping: it is among these pids
    assert registered(shared_devconsul).isdisjoint(instances)
    assert read_state(run.data_dir) is None
    if "bug" in how:
        assert "RuntimeError: a bug in switchyard" in run.err.text()


def pipe_not_read(run: UpRun) -> None:
    run.out.stop_reading()
    fill_pipe(run.out.fd)


def ctrl_s(run: UpRun) -> None:
    os.write(run.out.fd, b"\x13")  # XOFF: the terminal takes no more output

    def paused():  # a write to it now would block
        tty = os.open(run.tty, os.O_WRONLY | os.O_NOCTTY)
        try:
            return not select.select([], [tty], [], 0)[1]
        finally:
            os.close(tty)

    wait_until(paused, 10, what="the terminal paused")


@pytest.mark.integration
@pytest.mark.parametrize(
    ("pause", "how"),
    [(pipe_not_read, {}), (ctrl_s, {"terminal": True})],
    ids=["pipe-not-read", "terminal-paused"],
)
def test_output_nobody_reads_does_not_hold_up_the_stop(
    tmp_path, shared_devconsul, pause, how
):
    run = UpRun(tmp_path, shared_devconsul, **how)
    try:
        run.wait_up()
        pids, instances = run.stack()
        pause(run)
        os.killpg(run.proc.pid, signal.SIGTERM)
        assert run.proc.wait(timeout=SUPERVISOR_TIMEOUT) == 0
    finally:
        run.kill()
    run.gone(pids)
    assert registered(shared_devconsul).isdisjoint(instances)
    assert read_state(run.data_dir) is None


@pytest.mark.integration
def test_sigkill_during_start_up_leaves_nothing_either(tmp_path, shared_devconsul):
    run = UpRun(tmp_path, shared_devconsul)
    try:
        wait_until(lambda: "[started]      user-service" in run.out.text(), 60, 0.1)
        state = read_state(run.data_dir)
        pids = descendants(run.proc.pid)
    finally:
        run.kill()  # SIGKILL to switchyard, in the middle of starting
    assert {r.pid for r in state.processes} <= pids.keys()
    run.gone(pids)
    # Instances may register after the kill: they drain and deregister all the same.
    assert registered(shared_devconsul).isdisjoint(r.name for r in state.processes)
    assert read_state(run.data_dir) is None


@pytest.mark.parametrize("stream", ["1", "2"], ids=["stdout", "stderr"])
def test_up_with_its_output_closed_starts_nothing(tmp_path, stream):
    # Should it start after all, it must not take default ports nor wait long.
    argv = python_module(
        "switchyard",
        *("up", "--data-dir", str(tmp_path), "--gateway-port", str(free_port())),
        *("--consul-addr", f"127.0.0.1:{free_port()}", "--startup-timeout", "3"),
    )
    closed = subprocess.run(
        ["sh", "-c", f'exec "$@" {stream}>&-', "sh", *argv],
        check=False,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert closed.returncode == 141
    assert list(tmp_path.iterdir()) == []


@pytest.mark.integration
def test_after_sigkill_the_reaper_deregisters_instances_that_had_died_too(
    tmp_path, shared_devconsul
):
    run = UpRun(tmp_path, shared_devconsul)
    try:
        run.wait_up()
        pids, instances = run.stack()
        state = read_state(run.data_dir)
        crashed = next(r for r in state.processes if r.service == "user-service")
        # Stopped, switchyard cannot start the instance again before its own SIGKILL.
        os.kill(run.proc.pid, signal.SIGSTOP)
        os.killpg(crashed.pid, signal.SIGKILL)  # dies registered, as in an OOM kill
        wait_until(lambda: not pid_alive(crashed.pid), 10)
        assert crashed.name in registered(shared_devconsul)
    finally:
        run.kill()
    run.gone(pids)
    assert registered(shared_devconsul).isdisjoint(instances)
    assert f"[deregistered] {crashed.name}" in " ".join(run.out.text().split())


@pytest.mark.integration
def test_down_against_a_hung_supervisor_stops_the_stack_once(
    tmp_path, capsys, monkeypatch
):
    monkeypatch.setattr("switchyard.shutdown.SUPERVISOR_TIMEOUT", 1.0)
    proc = up(
        tmp_path,
        *("--consul-port", str(free_port()), "--agent", "devconsul"),
        *("--drain-seconds", "0.5"),
    )
    try:
        wait_up(proc)
        pids = started_pids(proc.output())
        os.kill(proc.pid, signal.SIGSTOP)  # hung: not even SIGTERM gets through
        assert main(["down", "--data-dir", str(tmp_path)]) == 0
        assert proc.wait(timeout=10) == -signal.SIGKILL
    finally:
        proc.stop()
    assert_nothing_left(pids)
    down = capsys.readouterr().out
    # The reaper (its output is switchyard's) does the stopping; `down` waits for it.
    both = " ".join((down + proc.output()).split())
    assert "ended without stopping its stack; stopping it" in both
    assert all(both.count(f"[stopped] {name}") == 1 for name in pids), both
    assert "could not" not in both  # no warning of a stop made twice
    assert down.endswith("switchyard: stopped (forced)\n"), down
    assert not state_path(tmp_path).exists()
