import io
import subprocess
import sys
from dataclasses import replace

import requests

from switchyard.process import pid_alive
from switchyard.render import Console
from switchyard.shutdown import stop_records, stop_supervisor
from switchyard.state import ProcessRecord
from tests.switchyard.standins import (
    SLEEPER,
    SUPERVISOR,
    dead_pid,
    reap,
    record,
    registered,
    spawn,
    state_for,
)


def test_down_asks_the_supervisor_first():
    supervisor = spawn(SUPERVISOR)
    down = Console(quiet=True)
    # Our child turns zombie when it exits; pid_alive() counts zombies as gone.
    assert stop_supervisor(record(supervisor, "switchyard"), down) is True
    assert supervisor.wait(timeout=5) == 0


def test_down_leaves_a_supervisor_that_died_since_it_was_found_to_its_reaper():
    out = io.StringIO()
    gone = ProcessRecord("switchyard", "switchyard", 0, dead_pid())
    assert stop_supervisor(gone, Console(out)) is False
    assert out.getvalue().endswith("ended meanwhile, without stopping its stack\n")


def test_down_does_not_signal_a_stranger_given_the_supervisors_pid():
    stranger = spawn(SLEEPER)
    out = io.StringIO()
    reused = ProcessRecord("switchyard", "switchyard", 0, stranger.pid, 1)
    try:
        assert stop_supervisor(reused, Console(out)) is False
        assert pid_alive(stranger.pid)
    finally:
        stranger.kill()
        reap(stranger)
    assert out.getvalue().endswith("ended meanwhile, without stopping its stack\n")


# A hung `switchyard up` that ignores SIGTERM and, as under `make up`, leads no process group.
STUCK_SUPERVISOR = "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\nprint('up', flush=True)\ntime.sleep(60)"


def test_down_kills_a_stuck_supervisor_that_leads_no_process_group(monkeypatch):
    monkeypatch.setattr("switchyard.shutdown.SUPERVISOR_TIMEOUT", 0.5)
    supervisor = subprocess.Popen(
        [sys.executable, "-c", STUCK_SUPERVISOR], stdout=subprocess.PIPE
    )
    supervisor.stdout.readline()
    supervisor.stdout.close()
    down = Console(quiet=True)
    assert stop_supervisor(record(supervisor, "switchyard"), down) is False
    assert supervisor.wait(timeout=5) == -9


def test_records_of_dead_processes_are_skipped():
    gone = spawn(SLEEPER)
    rec = record(gone, "user-service")
    gone.kill()
    gone.wait()
    out = io.StringIO()
    stop_records(state_for(None, rec), Console(out))
    # Not signalled, not waited for, not reported as stopped.
    assert "[stopped]" not in out.getvalue()


def test_a_record_whose_pid_now_belongs_to_another_process_is_left_alone():
    stranger = spawn(SLEEPER)
    reused = ProcessRecord("user-service-1", "user-service", 1, stranger.pid, 1)
    stop_records(state_for(None, reused), Console(quiet=True))
    assert pid_alive(stranger.pid)
    stranger.kill()
    reap(stranger)


def test_a_pid_reused_while_its_process_stopped_is_not_killed(monkeypatch):
    ours, stranger = spawn(SLEEPER), spawn(SLEEPER)
    rec = record(ours, "user-service")

    def stopped_and_pid_reused(records, timeout):
        if rec in records:
            reap(ours)  # it ended on SIGTERM, and the kernel gave its pid to another
            rec.pid = stranger.pid  # (no test can make the kernel reuse a given pid)
        return True

    monkeypatch.setattr("switchyard.shutdown.wait_gone", stopped_and_pid_reused)
    try:
        stop_records(state_for(None, rec), Console(quiet=True))
        assert pid_alive(stranger.pid)
    finally:
        stranger.kill()
        reap(stranger)


def register(agent, instance: ProcessRecord) -> None:
    requests.put(
        f"{agent.url}/v1/agent/service/register",
        json={"ID": instance.name, "Name": instance.service, "Port": instance.port},
        timeout=5,
    ).raise_for_status()


def test_instances_still_registered_are_deregistered_dead_or_alive(devconsul):
    # Against an external agent: one instance was SIGKILLed while the stack ran and never
    # deregistered; the other is stopped here but stands in for one that does not
    # deregister itself either.
    gone, running = spawn(SLEEPER), spawn(SLEEPER)
    dead = record(gone, "user-service")
    alive = record(running, "order-service")
    gone.kill()
    reap(gone)
    for instance in (dead, alive):
        register(devconsul, instance)
    state = replace(state_for(None, dead, alive), consul_addr=devconsul.addr)
    out = io.StringIO()
    stop_records(state, Console(out))
    reap(running)
    assert registered(devconsul).isdisjoint({dead.name, alive.name})
    assert "WARNING" not in out.getvalue()
