"""`switchyard down`: stop a stack that another terminal started.

The polite way is to SIGTERM the supervisor, which stops everything in order exactly as
Ctrl-C would. If the supervisor is gone (killed, terminal closed) its reaper stops the
processes recorded in the state file, and deregisters their instances from Consul; `down`
waits for it (switchyard.lifeline) and stops them itself only if nobody else does.
"""

import os
import signal
import time
from pathlib import Path

from switchyard.consul_api import ConsulAPI, deregister_leftovers
from switchyard.process import kill_group, reused
from switchyard.render import Console
from switchyard.stack import STOP_GRACE
from switchyard.state import ProcessRecord, StackState, UnreadableState, remove_state

POLL = 0.2
# A stack's stop at worst (the supervisor's, or stop_records for a reaper or `down`):
# three groups (gateways, services, the agent), each given STOP_GRACE, and a few Consul calls.
SUPERVISOR_TIMEOUT = 3 * STOP_GRACE + 10
# A SIGKILLed process is gone as soon as the kernel has freed it: a bound all the same.
KILLED_EXIT_TIMEOUT = 5.0


def wait_gone(records: list[ProcessRecord], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while any(r.alive() for r in records):
        if time.monotonic() > deadline:
            return False
        time.sleep(POLL)
    return True


def stop_supervisor(supervisor: ProcessRecord, console: Console) -> bool:
    """SIGTERM a running `switchyard up`, which stops its stack as Ctrl-C would.

    Returns False when it had to be killed instead, or had died already (since the caller
    found it alive): what it started is then left to its reaper, which the caller waits for.
    """
    console.say(f"stopping switchyard (pid {supervisor.pid})...")
    if not signal_record(supervisor, signal.SIGTERM):
        console.say("switchyard had ended meanwhile, without stopping its stack")
        return False
    if wait_gone([supervisor], SUPERVISOR_TIMEOUT):
        return True
    console.say(f"switchyard did not stop within {SUPERVISOR_TIMEOUT:.0f}s; forcing")
    # Not kill_group: under `make up` the supervisor shares make's process group.
    signal_record(supervisor, signal.SIGKILL)
    # So that nobody takes it for alive after this.
    wait_gone([supervisor], KILLED_EXIT_TIMEOUT)
    return False


def signal_record(record: ProcessRecord, sig: int) -> bool:
    """Signal a recorded process while its pid still names it (same start time): once it
    has died, its pid can be a stranger's. False when it is gone."""
    if not record.alive():
        return False
    try:
        os.kill(record.pid, sig)
    except ProcessLookupError:
        return False
    return True


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

    Before the agent stops, every instance of the stack that Consul still lists is
    deregistered, alive or not: one that died unstopped (SIGKILL, crash) would otherwise
    linger in an external agent.
    """
    instances = [r for r in state.processes if r.service != "consul"]
    stop_group([r for r in instances if r.service == "gateway"], console)
    stop_group([r for r in instances if r.service != "gateway"], console)
    deregister_leftovers(
        ConsulAPI(f"http://{state.consul_addr}", state.consul_token),
        {r.name: r.service for r in instances},
        console,
    )
    stop_group([r for r in state.processes if r.service == "consul"], console)


def stop_group(records: list[ProcessRecord], console: Console) -> None:
    """SIGTERM the live ones at once (services drain together), kill what outlives
    STOP_GRACE. A record whose pid now belongs to another process (its start time
    differs) is not ours and is left alone."""
    running = [r for r in records if signal_record(r, signal.SIGTERM)]
    if not wait_gone(running, STOP_GRACE):
        console.say(f"still running after {STOP_GRACE:.0f}s: killing")
    for record in running:
        # Workers orphaned by a dead leader keep its pid taken, as their group id: a pid
        # naming another process means the group is empty, and that one a stranger.
        if not reused(record.pid, record.started):
            kill_group(record.pid, signal.SIGKILL)
        console.step("[stopped]", record.name, f"pid {record.pid}")
