"""Faults put on a running local stack (switchyard.stack.Stack) whose processes reach Consul
through a DelayProxy: the agent killed, hung, slow or restarted empty; one instance killed,
terminated or frozen. Each fault is a context manager that undoes itself on the way out, so
no test leaves a frozen process behind, and `restore_instances` brings the stack back whole.
"""

import contextlib
import os
import signal
import time

from switchyard.stack import STOP_GRACE, Stack
from tests.support.delay_proxy import DelayProxy

CONSUL_FAULTS = ("killed", "hung", "slow", "restarted")
SLOW_SECONDS = 3.0  # below CONSUL_TIMEOUT (5 s): slow, not failing


def freeze(pid: int) -> None:
    """SIGSTOP a process group: its sockets still accept (the kernel's backlog), nothing answers."""
    os.killpg(pid, signal.SIGSTOP)


def thaw(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGCONT)
    except ProcessLookupError:
        pass


def thaw_all(stack: Stack) -> None:
    for proc in stack.processes.values():
        if proc.pid is not None:
            thaw(proc.pid)


@contextlib.contextmanager
def consul_fault(stack: Stack, proxy: DelayProxy, kind: str):
    """The agent `kind` for the duration of the block (restarted: at its start)."""
    agent = stack.processes["consul"]
    if kind == "killed":
        stack.kill("consul")
        proxy.refuse()  # what the processes see of a dead agent: refused connections
        try:
            yield
        finally:
            proxy.listen()
            stack.start_agent()
    elif kind == "hung":
        freeze(agent.pid)
        try:
            yield
        finally:
            thaw(agent.pid)
    elif kind == "slow":
        proxy.delay = SLOW_SECONDS
        try:
            yield
        finally:
            proxy.delay = 0.0
    elif kind == "restarted":
        stack.restart("consul")  # a new agent on the same port, with nothing registered
        yield
    else:
        raise ValueError(f"unknown Consul fault {kind!r}")


@contextlib.contextmanager
def instance_fault(stack: Stack, name: str, sig: int):
    """Signal instance `name` as a crash (SIGKILL, the whole group), a stop (SIGTERM to the
    gunicorn master, which drains) or a freeze (SIGSTOP, the whole group) would."""
    proc = stack.processes[name]
    try:
        if sig == signal.SIGKILL:
            stack.kill(name)
        elif sig == signal.SIGSTOP:
            freeze(proc.pid)
        else:
            proc.signal(sig)
        yield
    finally:
        thaw(proc.pid)


def restore_instances(stack: Stack) -> None:
    """Start again every instance that is not running, then wait until each passes in
    Consul and every gateway routes to all of them."""
    gateways = stack.instances("gateway")
    for spec in stack.specs.values():
        proc = stack.processes.get(spec.name)
        if proc is not None and proc.alive():
            continue
        if proc is not None:  # exited, or on its way out (draining): let it finish
            proc.wait_stopped(time.monotonic() + STOP_GRACE)
        stack.launch(spec)
    stack.wait_passing([s for s in stack.specs.values() if s not in gateways])
    for spec in gateways:
        stack.wait_gateway(spec)


def fresh_instances(stack: Stack, names: list[str]) -> None:
    """Quick-stop instances `names` and start them again: processes that have served nothing."""
    procs = [stack.processes[name] for name in names]
    for proc in procs:
        proc.signal(signal.SIGINT)  # gunicorn's quick stop; it still deregisters
    deadline = time.monotonic() + STOP_GRACE
    for proc in procs:
        proc.wait_stopped(deadline)
    restore_instances(stack)
