"""Process supervision: children in their own process groups, output pumped line by line.

Each child gets its own session (so Ctrl-C in the terminal reaches only the supervisor,
which then stops children in order) and its own log file. A reader thread copies every
output line to that file, keeps the last lines in memory for error messages, and, once the
stack is up, forwards it to the console prefixed with the child's name.
"""

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

TAIL_LINES = 30

LineSink = Callable[[str, str], None]  # (process name, line without newline)

# A child waits at this gate until the supervisor has recorded its pid, then becomes the
# command (same pid). Should the supervisor die first (SIGKILL), the gate reads EOF and the
# command never runs: no process of the stack exists that the state file, and so the
# reaper (switchyard.lifeline), does not know.
GATE = ("/bin/sh", "-c", 'read -r _ || exit 1; exec "$@" </dev/null', "gate")


def _ignore(name: str, line: str) -> None:
    """The default sink: lines only go to the log file and the in-memory tail."""


class Supervised:
    """One child process: start, signal, stop within a bound, and its recent output."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        env: Mapping[str, str],
        log_path: Path,
        sink: LineSink = _ignore,
    ):
        self.name = name
        self.argv = list(argv)
        self.env = dict(env)
        self.log_path = log_path
        self.sink = sink
        self._tail: deque[str] = deque(maxlen=TAIL_LINES)
        self._popen: subprocess.Popen | None = None
        self._reader: threading.Thread | None = None

    def start(
        self, record: Callable[["Supervised"], None] = lambda proc: None
    ) -> "Supervised":
        """Start the child; it runs its command once `record(self)` has returned."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._tail.clear()
        self._popen = subprocess.Popen(
            [*GATE, *self.argv],
            env=self.env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self._reader = threading.Thread(
            target=self._pump, name=f"log-{self.name}", daemon=True
        )
        self._reader.start()
        gate = self._popen.stdin
        try:
            record(self)
            gate.write(b"go\n")
        finally:  # without the word (record failed), the gate only sees EOF
            with contextlib.suppress(BrokenPipeError):
                gate.close()
        return self

    def _pump(self) -> None:
        assert self._popen is not None and self._popen.stdout is not None
        with (
            open(self.log_path, "a", encoding="utf-8", errors="replace") as log,
            self._popen.stdout as stream,
        ):
            for raw in stream:
                line = raw.decode("utf-8", errors="replace").rstrip("\n")
                self._tail.append(line)
                log.write(line + "\n")
                log.flush()
                self.sink(self.name, line)

    @property
    def pid(self) -> int | None:
        return self._popen.pid if self._popen else None

    def alive(self) -> bool:
        return self._popen is not None and self._popen.poll() is None

    @property
    def returncode(self) -> int | None:
        return self._popen.poll() if self._popen else None

    def tail(self, lines: int = 15) -> list[str]:
        # Wait briefly for the reader so a crashed child's last words are not lost.
        if self._reader is not None and not self.alive():
            self._reader.join(timeout=1.0)
        return list(self._tail)[-lines:]

    def signal(self, sig: int) -> None:
        """Signal the leader only: gunicorn's master drains and then stops its workers."""
        if self.alive():
            os.kill(self._popen.pid, sig)

    def kill(self) -> None:
        """SIGKILL the whole process group, as a crash or the OOM killer would."""
        if self._popen is not None:
            kill_group(self._popen.pid, signal.SIGKILL)
            self._popen.wait(timeout=10)

    def request_stop(self) -> None:
        self.signal(signal.SIGTERM)

    def wait_stopped(self, deadline: float) -> bool:
        """Wait for exit until `deadline` (monotonic), then kill what is left of the group.

        Returns True when the child exited on its own.
        """
        if self._popen is None:
            return True
        try:
            self._popen.wait(timeout=max(0.0, deadline - time.monotonic()))
            graceful = True
        except subprocess.TimeoutExpired:
            graceful = False
        # Workers orphaned by a dead master still carry the group id: clear them too.
        kill_group(self._popen.pid, signal.SIGKILL)
        self._popen.wait(timeout=10)
        if self._reader is not None:
            self._reader.join(timeout=2.0)
        return graceful

    def stop(self, grace: float) -> bool:
        self.request_stop()
        return self.wait_stopped(time.monotonic() + grace)


def kill_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not _is_zombie(pid)


def _is_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] == "Z"


def same_process(pid: int, started: int | None) -> bool:
    """`pid` is running and, when `started` is known, is the process that started then."""
    if not pid_alive(pid):
        return False
    return started is None or process_start_time(pid) == started


def reused(pid: int, started: int | None) -> bool:
    """`pid` now names another process than the one that started at `started`. Without
    both start times (no /proc, or none recorded) the pid is all we know: not reused."""
    now = process_start_time(pid)
    return None not in (now, started) and now != started


def process_start_time(pid: int) -> int | None:
    """The kernel's start time of `pid` (Linux), to tell a recorded pid from a reused one."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[-1].split()[19])
