"""Stand-ins for the processes of a stack, and a state file listing them, for the tests of
stopping a stack (switchyard.shutdown, lifeline, reaper)."""

import contextlib
import os
import subprocess
import sys

import requests

from switchyard.process import process_start_time
from switchyard.state import ProcessRecord, StackState

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


def state_for(supervisor: int | None, *records: ProcessRecord) -> StackState:
    """A stack of `supervisor` (a pid; None: a pid nothing has)."""
    return StackState(
        supervisor_pid=supervisor or 2**22 + 1,
        supervisor_started=process_start_time(supervisor) if supervisor else None,
        consul_addr="127.0.0.1:9",  # nothing listens: deregistration is best effort
        consul_kind="external",
        processes=list(records),
    )


def dead_pid() -> int:
    """The pid of a process that has exited and been reaped."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def reap(*procs: subprocess.Popen) -> None:
    for proc in procs:
        proc.wait(timeout=10)


def registered(agent) -> set[str]:
    """The service ids a (dev)consul agent has registered."""
    return set(requests.get(f"{agent.url}/v1/agent/services", timeout=5).json())


def fill_pipe(fd: int) -> None:
    """Fill the pipe of `fd` (either end) to the brim: a writer to it now blocks.

    Through a descriptor of our own, non-blocking: O_NONBLOCK on `fd` would be shared."""
    filler = os.open(f"/proc/self/fd/{fd}", os.O_WRONLY | os.O_NONBLOCK)
    with contextlib.suppress(BlockingIOError):
        while True:
            os.write(filler, b"." * 65536)
    os.close(filler)
