"""The benchmarks' child processes: started in their own process group, stopped by it.

Every process gets its own session, so a Ctrl-C in the terminal reaches only the bench, whose
`finally` blocks stop each process by its group (a gunicorn master and its workers, nginx and
its worker) -- never by name, since other people's servers run on the same machine. Each
process's output goes to a temporary log, deleted when it is stopped, kept (and its path
printed) when the process failed: it died by itself, or never became ready.
"""

import os
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[1]


class Process:
    def __init__(self, argv: list[str], env: dict[str, str], name: str):
        self.name = name
        self.failed = False
        self.log = Path(tempfile.mkstemp(prefix=f"bench-{name}-", suffix=".log")[1])
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                argv,
                env={**os.environ, **env},
                cwd=REPO,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def wait_until(self, predicate, timeout: float, what: str) -> None:
        """Poll `predicate` until it holds; fail at once if this process has died."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.failed = True
                tail = self.log.read_text(errors="replace")[-2000:]
                raise RuntimeError(
                    f"{self.name} exited ({self.proc.returncode}):\n{tail}"
                )
            try:
                if predicate():
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
        self.failed = True
        raise RuntimeError(f"timed out waiting for {what} (log: {self.log})")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGINT)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        elif self.proc.returncode != 0:
            self.failed = True  # it died before we stopped it
        if self.failed:
            print(f"{self.name} failed (exit {self.proc.returncode}): log {self.log}")
        else:
            self.log.unlink(missing_ok=True)


def sigterm_as_interrupt() -> None:
    """Let SIGTERM unwind the bench like Ctrl-C, through every `finally` that stops a
    process: a CI timeout or a `kill` must not leave servers behind."""

    def interrupt(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, interrupt)


def cpu_seconds(pid: int) -> float:
    """User+system CPU of a process and its children: a gunicorn master and its workers,
    nginx's master and worker (Linux /proc; 0 elsewhere)."""
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        total = 0
        for p in [pid, *map(int, children)]:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
    except OSError:
        return 0.0
    return total / os.sysconf("SC_CLK_TCK")
