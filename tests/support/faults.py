"""Faults put on a running local stack (switchyard.stack.Stack) whose processes reach Consul
through a DelayProxy: the agent killed, hung, slow or restarted empty; one instance killed,
terminated or frozen. Each fault is a context manager that undoes itself on the way out, so
no test leaves a frozen process behind, and `restore_instances` brings the stack back whole.
"""

import contextlib
import os
import signal
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

from sqlalchemy.engine import make_url

from switchyard.stack import STOP_GRACE, Stack
from tests.support.delay_proxy import DelayProxy
from tests.support.processes import wait_until

CONSUL_FAULTS = ("killed", "hung", "slow", "restarted")
SLOW_SECONDS = 3.0  # below CONSUL_TIMEOUT (5 s): slow, not failing
LOCK_PROBE_SECONDS = 0.2  # live writers hold SQLite's write lock for milliseconds
FREEZE_TRIES = 20


def freeze(pid: int) -> None:
    """SIGSTOP a process group: its sockets still accept (the kernel's backlog), nothing
    answers. Returns once every thread has stopped (one in a system call stops after it)."""
    os.killpg(pid, signal.SIGSTOP)
    wait_until(lambda: stopped(pid), 5, what=f"group {pid} stopped")


def stopped(pgid: int) -> bool:
    """Every thread of every process in group `pgid` is stopped (SIGSTOP has taken hold)."""
    for stat in Path("/proc").glob("[0-9]*/task/*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # gone meanwhile
            continue
        state, group = fields[0], int(fields[3])
        if group == pgid and state not in ("T", "t", "Z", "X"):
            return False
    return True


def sqlite_write_locked(path: str) -> bool:
    """Some connection holds `path`'s write lock for longer than LOCK_PROBE_SECONDS."""
    connection = sqlite3.connect(path, timeout=LOCK_PROBE_SECONDS, isolation_level=None)
    try:
        connection.execute("BEGIN IMMEDIATE")
        connection.execute("ROLLBACK")
        return False
    except sqlite3.OperationalError as exc:
        if "locked" not in str(exc):
            raise
        return True
    finally:
        connection.close()


def freeze_at(
    pid: int, moment: Callable[[], bool], what: str, tries: int = FREEZE_TRIES
) -> int:
    """SIGSTOP group `pid` at a moment when `moment()` holds: wait for one, freeze, and
    freeze again if it passed before the freeze took hold. Returns the freezes it took."""
    for attempt in range(1, tries + 1):
        wait_until(moment, 10, interval=0.0005, what=what)
        freeze(pid)
        if moment():
            return attempt
        thaw(pid)
    raise AssertionError(f"group {pid}: {what} passed before each of {tries} freezes")


def freeze_between_writes(pid: int, database_url: str) -> None:
    """SIGSTOP instance group `pid` at a moment it is not inside a write transaction.

    SQLite lets one connection write at a time, across processes. An instance frozen inside
    a write keeps that lock until it thaws, and every write of its service waits behind it,
    on the other instances too: no instance can answer a POST, whatever the routing does
    (README: When an instance freezes). That is the database's limit, not what these
    scenarios test, so on SQLite the freeze is taken again until it lands between writes
    (a CI run once froze an order-service instance inside one: its POSTs stalled)."""
    url = make_url(database_url) if database_url else None
    if url is None or not url.drivername.startswith("sqlite"):
        freeze(pid)
        return
    freeze_at(pid, lambda: not sqlite_write_locked(url.database), "no write under way")


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
            freeze_between_writes(
                proc.pid, stack.specs[name].env.get("DATABASE_URL", "")
            )
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
