"""`switchyard down`: stop a stack that another terminal started.

The polite way is to SIGTERM the supervisor, which stops everything in order exactly as
Ctrl-C would. If the supervisor is gone (killed, terminal closed) the processes recorded in
the state file are stopped directly, and their instances deregistered from Consul.
"""

import contextlib
import os
import signal
import time
from pathlib import Path

import requests

from switchyard.consul_api import ConsulAPI
from switchyard.process import kill_group
from switchyard.render import Console
from switchyard.stack import STOP_GRACE
from switchyard.state import ProcessRecord, StackState, UnreadableState, remove_state

POLL = 0.2
SUPERVISOR_TIMEOUT = 2 * STOP_GRACE + 10


def wait_gone(records: list[ProcessRecord], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while any(r.alive() for r in records):
        if time.monotonic() > deadline:
            return False
        time.sleep(POLL)
    return True


def stop_stack(state: StackState, data_dir: Path, console: Console) -> bool:
    """Returns True when everything stopped through the supervisor, False if forced."""
    supervisor = state.supervisor()
    if supervisor.alive() and stop_supervisor(supervisor, console):
        return True
    stop_records(state, console)
    remove_state(data_dir)
    return False


def stop_supervisor(supervisor: ProcessRecord, console: Console) -> bool:
    """SIGTERM a running `switchyard up`, which stops its stack as Ctrl-C would.

    Returns False when it had to be killed instead: what it started is then left to its
    reaper, or to the caller.
    """
    console.say(f"stopping switchyard (pid {supervisor.pid})...")
    os.kill(supervisor.pid, signal.SIGTERM)
    if wait_gone([supervisor], SUPERVISOR_TIMEOUT):
        return True
    console.say(f"switchyard did not stop within {SUPERVISOR_TIMEOUT:.0f}s; forcing")
    # Not kill_group: under `make up` the supervisor shares make's process group.
    with contextlib.suppress(ProcessLookupError):
        os.kill(supervisor.pid, signal.SIGKILL)
    return False


def discard_state(data_dir: Path, problem: UnreadableState, console: Console) -> None:
    """Remove a state file nobody can use (no `switchyard up` holds the directory).

    What it listed is unknown, so nothing is stopped: the user has to know that.
    """
    remove_state(data_dir)
    console.say(
        f"WARNING switchyard: {problem}; removed it "
        "(processes it may list were not stopped)"
    )


def stop_records(state: StackState, console: Console) -> None:
    """Stop recorded processes ourselves: gateways, services, then the agent.

    Each group at once, so the services drain together. A record whose pid now belongs to
    another process (its start time differs) is not ours and is left alone.
    """
    order = {"gateway": 0, "consul": 2}
    groups: dict[int, list[ProcessRecord]] = {}
    for record in state.processes:
        if record.alive():
            groups.setdefault(order.get(record.service, 1), []).append(record)
    for _, group in sorted(groups.items()):
        for record in group:
            with contextlib.suppress(ProcessLookupError):
                os.kill(record.pid, signal.SIGTERM)
        if not wait_gone(group, STOP_GRACE):
            console.say(f"still running after {STOP_GRACE:.0f}s: killing")
        for record in group:
            kill_group(record.pid, signal.SIGKILL)
            console.step("[stopped]", record.name, f"pid {record.pid}")
            if record.service != "consul":
                deregister(state, record.name, console)


def deregister(state: StackState, instance_id: str, console: Console) -> None:
    api = ConsulAPI(f"http://{state.consul_addr}", state.consul_token)
    try:
        api.deregister(instance_id)
    except requests.RequestException as exc:
        console.say(f"WARNING switchyard: could not deregister {instance_id}: {exc}")
