import subprocess
import sys

from switchyard.process import pid_alive
from switchyard.render import Console
from switchyard.shutdown import stop_records, stop_stack
from switchyard.state import ProcessRecord, read_state, write_state
from tests.switchyard.standins import (
    SLEEPER,
    SUPERVISOR,
    reap,
    record,
    spawn,
    state_for,
)


def test_down_asks_the_supervisor_first(tmp_path):
    supervisor = spawn(SUPERVISOR)
    state = state_for(supervisor.pid)
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
    state = state_for(supervisor.pid)
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


def test_a_record_whose_pid_now_belongs_to_another_process_is_left_alone():
    stranger = spawn(SLEEPER)
    reused = ProcessRecord("user-service-1", "user-service", 1, stranger.pid, 1)
    stop_records(state_for(None, reused), Console(quiet=True))
    assert pid_alive(stranger.pid)
    stranger.kill()
    reap(stranger)
