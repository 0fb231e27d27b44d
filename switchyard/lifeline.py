"""One stack per data directory, and a stack that never outlives its `switchyard up`.

The lock: `switchyard up` holds an exclusive flock on `<data-dir>/switchyard.lock` for its
whole life, and writes who it is into the file (pid, kernel start time, wall-clock start), so
a second `switchyard up` there refuses and names the first. The kernel drops a flock however
its holders end, so a stale lock cannot exist.

The lifeline: SIGKILL (or the OOM killer) gives `switchyard up` no chance to stop its stack.
So before it starts anything it starts a reaper, `python -m switchyard.reaper`, in a session
of its own, reading the read end of a pipe whose write end only the supervisor holds. However
the supervisor ends, the kernel closes that end and the reaper reads EOF; if the state file
still lists processes of that supervisor, the reaper stops them as `switchyard down` would:
gateways, then services (each drains and deregisters on SIGTERM, while the agent still
runs), then the agent. The reaper shares the lock, so a new `switchyard up` on the same data
directory waits until that is done.

Why not prctl(PR_SET_PDEATHSIG) in each child: it fires when the *thread* that forked the
child ends, not the process; setting it needs code between fork and exec, which is unsafe
next to our log threads; and every process would get its signal at the same moment, the
agent included, so instances would drain against an agent that is already gone.
"""

import fcntl
import json
import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Self

from switchyard.process import process_start_time, same_process
from switchyard.render import Console
from switchyard.shutdown import SUPERVISOR_TIMEOUT, discard_state, stop_records
from switchyard.state import ProcessRecord, UnreadableState, read_state, remove_state

LOCK_NAME = "switchyard.lock"
POLL = 0.2
REAPER_EXIT_TIMEOUT = 5.0


@dataclass(frozen=True)
class Holder:
    """Who holds the lock: a `switchyard up`."""

    pid: int
    started: int | None  # kernel start time: a reused pid is not the holder
    since: str  # local wall-clock time, for people

    def alive(self) -> bool:
        return same_process(self.pid, self.started)

    def record(self) -> ProcessRecord:
        return ProcessRecord("switchyard", "switchyard", 0, self.pid, self.started)


def read_holder(path: Path) -> Holder | None:
    """None while the holder is still writing its name (or the file is not ours)."""
    try:
        return Holder(**json.loads(path.read_text()))
    except (OSError, ValueError, TypeError):
        return None


def running_holder(data_dir: Path) -> Holder | None:
    """The `switchyard up` that holds `data_dir` now, starting or running; creates nothing.

    The lock file keeps naming its last holder once that has ended, and names the dead
    supervisor while its reaper holds the lock: only a live holder of a held lock counts.
    """
    path = Path(data_dir) / LOCK_NAME
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return None  # nobody holds it (ours goes with the descriptor)
    except BlockingIOError:
        holder = read_holder(path)
        return holder if holder is not None and holder.alive() else None
    finally:
        os.close(fd)


class DataDirLock:
    def __init__(self, data_dir: Path):
        self.path = Path(data_dir) / LOCK_NAME
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)

    def try_acquire(self, announce: bool = True) -> bool:
        """Take the lock; `announce` names us its holder (a `switchyard up`)."""
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        if not announce:
            return True
        me = Holder(
            os.getpid(),
            process_start_time(os.getpid()),
            datetime.now().astimezone().isoformat(sep=" ", timespec="seconds"),
        )
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, json.dumps(asdict(me)).encode(), 0)
        return True

    def holder(self) -> Holder | None:
        return read_holder(self.path)

    def fileno(self) -> int:
        return self._fd

    def close(self) -> None:
        os.close(self._fd)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def claim(
    data_dir: Path,
    console: Console,
    timeout: float = SUPERVISOR_TIMEOUT,
    announce: bool = True,
) -> DataDirLock | None:
    """Take `data_dir` for a new stack, or say who has it and return None.

    A dead holder whose reaper is still stopping its stack is waited for (up to `timeout`).
    What a stack left running with nothing to stop it (its reaper died too) is stopped here,
    recorded pids checked against their start times, so its ports are free again. A state
    file that cannot be read lists nothing we can trust: it is removed, with a warning.
    """
    lock = DataDirLock(data_dir)
    deadline = time.monotonic() + timeout
    waiting = False
    while not lock.try_acquire(announce):
        holder = lock.holder()
        if holder is not None and holder.alive():
            lock.close()
            console.say(
                f"ERROR switchyard: a stack from {data_dir}/ is already running "
                f"(switchyard pid {holder.pid}, started {holder.since}); stop it with "
                f"Ctrl-C in its terminal or `switchyard down --data-dir {data_dir}`"
            )
            return None
        if time.monotonic() > deadline:
            lock.close()
            console.say(
                f"ERROR switchyard: {lock.path} is still locked after {timeout:.0f}s, "
                "by a process that is not a running `switchyard up`"
            )
            return None
        if holder is not None and not waiting:
            waiting = True
            console.say(
                f"switchyard: waiting while the stack of switchyard pid {holder.pid} "
                "(ended without stopping it) is stopped"
            )
        time.sleep(POLL)
    try:
        previous = read_state(data_dir)
    except UnreadableState as problem:
        discard_state(data_dir, problem, console)
        return lock
    if previous is not None:
        console.say("switchyard: stopping what a previous stack left running")
        stop_records(previous, console)
        remove_state(data_dir)
    return lock


def finish_stopping(
    data_dir: Path, console: Console, timeout: float = SUPERVISOR_TIMEOUT
) -> bool:
    """For `switchyard down`, once the supervisor is gone (dead, or killed by down): its
    reaper is stopping the stack, holding the lock; let it finish rather than stop the same
    processes beside it, then stop what the state file still lists (the reaper died too).

    Holds the lock meanwhile without naming itself, so that nobody takes `down` for a
    running stack. False when the lock was not released in `timeout`.
    """
    lock = claim(data_dir, console, timeout, announce=False)
    if lock is None:
        return False
    lock.close()
    return True


class Lifeline:
    """The reaper and the pipe it watches, for as long as `with Lifeline(...)` lasts."""

    def __init__(self, data_dir: Path, lock: DataDirLock):
        read_end, self._write_end = os.pipe()  # neither is inherited by the stack
        try:
            self.reaper = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "switchyard.reaper",
                    str(data_dir),
                    str(os.getpid()),
                ],
                stdin=read_end,
                start_new_session=True,  # neither Ctrl-C nor a closed terminal reach it
                pass_fds=(lock.fileno(),),
            )
        finally:
            os.close(read_end)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    def release(self) -> None:
        """The stack is stopped (or we are crashing): the reaper sees EOF and checks."""
        os.close(self._write_end)
        try:
            self.reaper.wait(REAPER_EXIT_TIMEOUT)
        except subprocess.TimeoutExpired:
            pass  # it is stopping what we could not, holding the lock meanwhile
