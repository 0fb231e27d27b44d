"""Script checks: run a command, map its exit code, keep the tail of its output.

Consul's CheckMonitor (agent/checks/check.go) is the model: the arguments are
executed directly, never through a shell; stdout and stderr share one buffer
that keeps the last OutputMaxSize bytes; exit 0 is passing, 1 warning,
anything else (a signal included) critical. Each command runs in a process
group of its own, so a timeout kills whatever it started too, and the agent
kills every group still running when it stops: no check outlives the agent.
"""

import logging
import os
import selectors
import signal
import subprocess
import threading
import time

from devconsul.durations import format_duration

log = logging.getLogger("devconsul.scripts")

EXIT_STATUSES = {0: "passing", 1: "warning"}
_READ_SIZE = 64 * 1024


class Tail:
    """The last `limit` bytes written, and how many were written in all
    (Consul's circbuf)."""

    def __init__(self, limit: int):
        self.limit = limit
        self.total = 0
        self._data = bytearray()

    def write(self, chunk: bytes) -> None:
        self.total += len(chunk)
        self._data += chunk
        del self._data[: max(0, len(self._data) - self.limit)]

    def text(self) -> str:
        kept = self._data.decode("utf-8", errors="replace")
        if self.total > len(self._data):
            return f"Captured {len(self._data)} of {self.total} bytes\n...\n{kept}"
        return kept


class Scripts:
    """Starts check commands and remembers the live ones until they end."""

    def __init__(self):
        self._lock = threading.Lock()
        self._running: set[subprocess.Popen] = set()
        self._closed = False

    def run(self, args: list[str], timeout_ns: int, limit: int) -> tuple[str, str]:
        """One run of a script check: (status, output)."""
        try:
            proc = self._start(args)
        except OSError as exc:
            return "critical", _start_error(args[0], exc)
        if proc is None:
            return "critical", "agent stopping"
        tail = Tail(limit)
        finished = False
        try:
            finished = _collect(proc, tail, time.monotonic() + timeout_ns / 1e9)
        finally:
            if not finished:
                _kill_group(proc)
            # Wait for the exit in every case, so that a slow check never runs
            # twice at once and no child is left unreaped.
            code = proc.wait()
            with self._lock:
                self._running.discard(proc)
            proc.stdout.close()
        if not finished:
            message = f"Timed out ({format_duration(timeout_ns)}) running check"
            output = tail.text()
            return "critical", f"{message}\n\n{output}" if output else message
        return EXIT_STATUSES.get(code, "critical"), tail.text()

    def _start(self, args: list[str]) -> subprocess.Popen | None:
        with self._lock:
            if self._closed:
                return None
            proc = subprocess.Popen(
                args,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            self._running.add(proc)
            return proc

    def kill_all(self) -> None:
        """Kill every running check's process group; start no more."""
        with self._lock:
            self._closed = True
            running = list(self._running)
        for proc in running:
            _kill_group(proc)


def _collect(proc: subprocess.Popen, tail: Tail, deadline: float) -> bool:
    """Read output until every writer closed it (as Go's cmd.Wait does) or the
    deadline passes; True when it ended in time."""
    fd = proc.stdout.fileno()
    with selectors.DefaultSelector() as selector:
        selector.register(fd, selectors.EVENT_READ)
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            if not selector.select(remaining):
                continue
            chunk = os.read(fd, _READ_SIZE)
            if not chunk:
                break
            tail.write(chunk)
    try:
        proc.wait(max(0.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        return False
    return True


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    except OSError as exc:
        log.warning("cannot kill check process group %d: %s", proc.pid, exc)


def _start_error(command: str, exc: OSError) -> str:
    """Go's exec error texts, which Consul puts in the check's Output."""
    if isinstance(exc, FileNotFoundError) and "/" not in command:
        return f'exec: "{command}": executable file not found in $PATH'
    reason = (exc.strerror or str(exc)).lower()
    return f"fork/exec {command}: {reason}"
