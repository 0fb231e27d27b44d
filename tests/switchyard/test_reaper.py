import os
import subprocess

from switchyard.process import pid_alive
from switchyard.state import read_state, state_path, write_state
from tests.support.processes import python_module
from tests.switchyard.standins import (
    SLEEPER,
    fill_pipe,
    reap,
    record,
    spawn,
    state_for,
)


def reaper_sees_eof(
    data_dir, supervisor: int, check: bool = True
) -> subprocess.CompletedProcess:
    """The reaper as the lifeline starts it, its supervisor already gone (stdin at EOF)."""
    return subprocess.run(
        python_module("switchyard.reaper", str(data_dir), str(supervisor)),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=30,
        check=check,
    )


def test_it_stops_what_its_supervisor_left_running(tmp_path):
    gateway, service = spawn(SLEEPER), spawn(SLEEPER)
    supervisor = os.getpid()
    write_state(
        tmp_path,
        state_for(
            supervisor, record(gateway, "gateway"), record(service, "user-service")
        ),
    )
    out = reaper_sees_eof(tmp_path, supervisor).stdout
    reap(gateway, service)
    assert f"switchyard (pid {supervisor}) ended without stopping its stack" in out
    assert out.index("gateway-1") < out.index("user-service-1")  # in stop order
    assert read_state(tmp_path) is None


def test_output_nobody_reads_does_not_hold_its_stop_up(tmp_path):
    service = spawn(SLEEPER)
    write_state(tmp_path, state_for(os.getpid(), record(service, "user-service")))
    read_end, write_end = os.pipe()
    fill_pipe(read_end)  # the terminal of `switchyard up`, paused by Ctrl-S
    try:
        subprocess.run(
            python_module("switchyard.reaper", str(tmp_path), str(os.getpid())),
            stdin=subprocess.DEVNULL,
            stdout=write_end,
            timeout=30,
            check=True,
        )
    finally:
        os.close(write_end)
        os.close(read_end)
    reap(service)
    assert read_state(tmp_path) is None


def test_it_leaves_a_stack_of_another_supervisor_alone(tmp_path):
    # A new `switchyard up` took the data directory over: that stack is not ours to stop.
    service = spawn(SLEEPER)
    write_state(tmp_path, state_for(os.getpid(), record(service, "user-service")))
    assert reaper_sees_eof(tmp_path, os.getpid() + 1).stdout == ""
    assert pid_alive(service.pid)
    assert read_state(tmp_path) is not None
    service.kill()
    reap(service)


def test_after_a_clean_stop_it_does_nothing(tmp_path):
    assert reaper_sees_eof(tmp_path, os.getpid()).stdout == ""


def test_an_unreadable_state_file_is_reported_and_nothing_stopped(tmp_path):
    state_path(tmp_path).write_text("")
    result = reaper_sees_eof(tmp_path, os.getpid(), check=False)
    assert result.returncode == 1
    assert result.stdout == (
        f"WARNING switchyard: cannot read {state_path(tmp_path)}: Expecting value: "
        "line 1 column 1 (char 0); could not stop the stack\n"
    )
