"""Script check runs: real child processes, Consul's status and output rules
(agent/checks/check.go, CheckMonitor.check)."""

import os
import sys
import threading

import pytest

from devconsul.durations import MILLISECOND, SECOND
from devconsul.scripts import Scripts, Tail
from tests.support.processes import wait_until

PY = sys.executable


def _python(code: str) -> list[str]:
    return [PY, "-c", code]


@pytest.fixture
def scripts():
    runner = Scripts()
    yield runner
    runner.kill_all()


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("raise SystemExit(0)", "passing"),
        ("raise SystemExit(1)", "warning"),
        ("raise SystemExit(2)", "critical"),
        ("import os, signal; os.kill(os.getpid(), signal.SIGKILL)", "critical"),
    ],
)
def test_exit_code_decides_the_status(scripts, code, status):
    assert scripts.run(_python(code), 10 * SECOND, 4096)[0] == status


def test_stdout_and_stderr_share_the_output(scripts):
    code = "import sys; print('out', flush=True); print('err', file=sys.stderr)"
    assert scripts.run(_python(code), 10 * SECOND, 4096) == ("passing", "out\nerr\n")


def test_arguments_reach_the_command_without_a_shell(scripts):
    status, output = scripts.run(
        _python("import sys; print(sys.argv[1])") + ["$HOME; exit 3"],
        10 * SECOND,
        4096,
    )
    assert (status, output) == ("passing", "$HOME; exit 3\n")


def test_output_keeps_the_tail_with_consuls_note(scripts):
    code = "import sys; sys.stdout.write('a' * 100 + 'b' * 10)"
    status, output = scripts.run(_python(code), 10 * SECOND, 10)
    assert (status, output) == ("passing", "Captured 10 of 110 bytes\n...\nbbbbbbbbbb")


def test_tail_keeps_the_last_bytes_across_writes():
    tail = Tail(4)
    for chunk in (b"ab", b"cdef", b"g"):
        tail.write(chunk)
    assert (tail.total, tail.text()) == (7, "Captured 4 of 7 bytes\n...\ndefg")
    assert Tail(4).text() == ""


def test_missing_command_is_critical_with_gos_text(scripts):
    assert scripts.run(["no-such-command-xyz"], SECOND, 4096) == (
        "critical",
        'exec: "no-such-command-xyz": executable file not found in $PATH',
    )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A killed child of ours stays a zombie until reaped; it runs no more.
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().split(") ")[1][0] != "Z"


def _spawner(pid_file) -> list[str]:
    """A check that starts a grandchild, records its pid, prints, then hangs."""
    code = (
        "import subprocess, sys, time\n"
        "child = subprocess.Popen(['sleep', '60'])\n"
        f"open({str(pid_file)!r}, 'w').write(str(child.pid))\n"
        "print('started', flush=True)\n"
        "time.sleep(60)\n"
    )
    return _python(code)


def test_timeout_kills_the_whole_process_group(scripts, tmp_path):
    pid_file = tmp_path / "pid"
    status, output = scripts.run(_spawner(pid_file), 500 * MILLISECOND, 4096)
    assert (status, output) == (
        "critical",
        "Timed out (500ms) running check\n\nstarted\n",
    )
    grandchild = int(pid_file.read_text())
    wait_until(lambda: not _alive(grandchild), what="grandchild killed")


def test_kill_all_ends_running_checks_and_refuses_new_ones(scripts, tmp_path):
    pid_file = tmp_path / "pid"
    result = {}
    thread = threading.Thread(
        target=lambda: result.update(r=scripts.run(_spawner(pid_file), 60 * SECOND, 64))
    )
    thread.start()
    wait_until(pid_file.exists, what="check started")
    wait_until(pid_file.read_text, what="pid written")
    scripts.kill_all()
    thread.join(10)
    assert not thread.is_alive()
    assert result["r"][0] == "critical"
    wait_until(lambda: not _alive(int(pid_file.read_text())), what="grandchild gone")
    assert scripts.run(_python("pass"), SECOND, 64) == ("critical", "agent stopping")
