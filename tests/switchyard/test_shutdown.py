import subprocess
import sys

from switchyard.process import pid_alive, process_start_time
from switchyard.render import Console
from switchyard.shutdown import stop_records, stop_stack
from switchyard.state import ProcessRecord, StackState, read_state, write_state

SLEEPER = "import time\nprint('up', flush=True)\ntime.sleep(60)"
# Stands in for a running `switchyard up`: exits when told to stop, removing nothing itself.
SUPERVISOR = "import signal, sys, time\nsignal.signal(signal.SIGTERM, lambda *a: sys.exit(0))\nprint('up', flush=True)\ntime.sleep(60)"


def spawn(code: str) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, start_new_session=True
    )
    proc.stdout.readline()  # ready: signal handlers are installed
    proc.stdout.close()
    return proc


def record(proc: subprocess.Popen, service: str) -> ProcessRecord:
    return ProcessRecord(
        f"{service}-1", service, 1, proc.pid, process_start_time(proc.pid)
    )


def state_for(
    supervisor: subprocess.Popen | None, *records: ProcessRecord
) -> StackState:
    return StackState(
        supervisor_pid=supervisor.pid if supervisor else 2**22 + 1,
        supervisor_started=process_start_time(supervisor.pid) if supervisor else None,
        consul_addr="127.0.0.1:9",  # nothing listens: deregistration is best effort
        consul_kind="external",
        processes=list(records),
    )


def reap(*procs: subprocess.Popen) -> None:
    for proc in procs:
        proc.wait(timeout=10)


def test_down_asks_the_supervisor_first(tmp_path):
    supervisor = spawn(SUPERVISOR)
    state = state_for(supervisor)
    write_state(tmp_path, state)
    # Our child turns zombie when it exits; pid_alive() counts zombies as gone.
    assert stop_stack(state, tmp_path, Console(quiet=True)) is True
    assert supervisor.wait(timeout=5) == 0


# A hung `switchyard up` that ignores SIGTERM and, as under `make up`, leads no process group.
STUCK_SUPERVISOR = "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\nprint('up', flush=True)\ntime.sleep(60)"


def test_down_kills_a_stuck_supervisor_that_leads_no_process_group(
    tmp_path, monkeypatch
):
    monkeypatch.setattr("switchyard.shutdown.SUPERVISOR_TIMEOUT", 0.5)
    supervisor = subprocess.Popen(
        [sys.executable, "-c", STUCK_SUPERVISOR], stdout=subprocess.PIPE
    )
    supervisor.stdout.readline()
    supervisor.stdout.close()
    state = state_for(supervisor)
    write_state(tmp_path, state)
    assert stop_stack(state, tmp_path, Console(quiet=True)) is False
    assert supervisor.wait(timeout=5) == -9


def test_down_without_a_supervisor_stops_recorded_processes(tmp_path):
    gateway, service = spawn(SLEEPER), spawn(SLEEPER)
    state = state_for(None, record(service, "user-service"), record(gateway, "gateway"))
    write_state(tmp_path, state)
    assert stop_stack(state, tmp_path, Console(quiet=True)) is False
    assert not pid_alive(gateway.pid) and not pid_alive(service.pid)
    reap(gateway, service)
    assert read_state(tmp_path) is None


def test_records_of_dead_processes_are_skipped():
    gone = spawn(SLEEPER)
    rec = record(gone, "user-service")
    gone.kill()
    gone.wait()
    stop_records(state_for(None, rec), Console(quiet=True))  # must not raise
