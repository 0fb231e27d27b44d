import os
import signal
import sys
import time

import pytest

from switchyard.process import (
    Supervised,
    pid_alive,
    process_start_time,
    reused,
)
from tests.support.processes import wait_until

# A child that prints, starts a grandchild in its own group, and exits cleanly on SIGTERM.
CHILD = """
import signal, subprocess, sys, time
signal.signal(signal.SIGTERM, lambda *a: sys.exit(3))
grandchild = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
print("grandchild", grandchild.pid, flush=True)
for i in range(5):
    print("line", i, flush=True)
time.sleep(60)
"""


def child(tmp_path, code, sink) -> Supervised:
    return Supervised(
        "child",
        [sys.executable, "-c", code],
        dict(os.environ),
        tmp_path / "logs" / "child.log",
        sink,
    )


def start(tmp_path, code, sink=None, record=lambda proc: None):
    lines = []
    proc = child(
        tmp_path, code, sink or (lambda name, line: lines.append((name, line)))
    )
    return proc.start(record), lines


def grandchild_pid(proc) -> int:
    line = wait_until(
        lambda: [t for t in proc.tail(30) if t.startswith("grandchild")], 10
    )
    return int(line[0].split()[1])


def test_output_goes_to_sink_tail_and_log_file(tmp_path):
    proc, lines = start(tmp_path, CHILD)
    wait_until(lambda: ("child", "line 4") in lines, 10, what="child output")
    assert proc.tail(2) == ["line 3", "line 4"]
    proc.stop(grace=5)
    assert "line 4" in (tmp_path / "logs" / "child.log").read_text()


def test_graceful_stop_signals_the_leader_then_clears_the_group(tmp_path):
    proc, _ = start(tmp_path, CHILD)
    orphan = grandchild_pid(proc)
    assert proc.stop(grace=5) is True
    assert proc.returncode == 3
    wait_until(lambda: not pid_alive(orphan), 5, what="grandchild gone")


def test_stop_kills_after_the_bound(tmp_path):
    stubborn = "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\nprint('ready', flush=True)\ntime.sleep(60)"
    proc, lines = start(tmp_path, stubborn)
    wait_until(lambda: lines, 10, what="child ready")
    started = time.monotonic()
    assert proc.stop(grace=0.5) is False
    assert proc.returncode == -signal.SIGKILL
    assert time.monotonic() - started < 10


def test_kill_takes_the_whole_group(tmp_path):
    proc, _ = start(tmp_path, CHILD)
    orphan = grandchild_pid(proc)
    proc.kill()
    assert not proc.alive()
    wait_until(lambda: not pid_alive(orphan), 5, what="grandchild gone")


def test_tail_keeps_a_crashed_childs_last_words(tmp_path):
    proc, _ = start(
        tmp_path, "import sys\nprint('boom: bad config', flush=True)\nsys.exit(4)"
    )
    wait_until(lambda: not proc.alive(), 10, what="child exit")
    assert proc.returncode == 4
    assert proc.tail() == ["boom: bad config"]


def test_start_time_identifies_a_process():
    assert process_start_time(os.getpid()) == process_start_time(os.getpid())
    assert process_start_time(2**22 + 1) is None


@pytest.mark.parametrize(
    "pid, started, expected",
    [
        (os.getpid(), "ours", False),
        (os.getpid(), 1, True),  # another start time: the pid was given to another
        (os.getpid(), None, False),  # none recorded: the pid is all we know
        (2**22 + 1, 1, False),  # nobody has it
    ],
)
def test_a_pid_is_reused_when_it_names_a_process_started_another_time(
    pid, started, expected
):
    if started == "ours":
        started = process_start_time(pid)
    assert reused(pid, started) is expected


def test_the_recorded_pid_is_the_commands_and_it_runs_only_once_recorded(tmp_path):
    recorded = []
    proc, lines = start(
        tmp_path,
        "import os\nprint(os.getpid(), flush=True)",
        record=lambda p: recorded.append(p.pid),
    )
    wait_until(lambda: lines, 10, what="child output")
    assert lines == [("child", str(proc.pid))]
    assert recorded == [proc.pid]
    proc.stop(grace=5)


def test_a_child_whose_supervisor_failed_to_record_it_never_runs(tmp_path):
    ran = tmp_path / "ran"

    def supervisor_dies(proc):
        raise RuntimeError("killed before writing the state file")

    proc = child(tmp_path, f"open({str(ran)!r}, 'w')", lambda name, line: None)
    with pytest.raises(RuntimeError):
        proc.start(record=supervisor_dies)
    wait_until(lambda: not proc.alive(), 10, what="the gate gives up")
    assert proc.returncode == 1
    assert not ran.exists()
