"""Real processes on free loopback ports, and bounded polling, for integration tests."""

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class GiveUp(AssertionError):
    """Raised by a wait_until predicate when waiting longer cannot help (the process it
    waits for has exited): the wait fails at once, not at its timeout."""


def wait_until(
    predicate: Callable[[], object],
    timeout: float = 10.0,
    interval: float = 0.05,
    what: str | Callable[[], str] = "",
):
    """Poll `predicate` until it returns something truthy; fail with `what` after `timeout`
    seconds (a callable: what it says then, such as a log as it is at the timeout)."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            result = predicate()
            if result:
                return result
        except GiveUp:
            raise
        except Exception as exc:  # noqa: BLE001 - the condition is not met yet; remember why
            last_error = exc
        time.sleep(interval)
    what = what() if callable(what) else what
    raise AssertionError(
        f"timed out after {timeout}s waiting for {what or predicate}; last error: {last_error!r}"
    )


class ManagedProcess:
    """A child process whose output goes to a log file, stopped (and killed if need be) on `stop()`.

    The logs go to `log_dir`: under a pytest run, the run's own temporary directory (the
    root conftest sets it; pytest keeps the last three runs' and removes older ones), so a
    suite of several hundred processes does not leave several hundred files in /tmp.
    """

    log_dir: Path | None = None  # None: the system's temporary directory

    def __init__(
        self, argv: Sequence[str], env: dict[str, str] | None = None, name: str = "proc"
    ):
        self.argv = list(argv)
        self.name = name
        self.env = {**os.environ, **(env or {})}
        self.log = Path(
            tempfile.mkstemp(prefix=f"{name}-", suffix=".log", dir=self.log_dir)[1]
        )
        self.proc: subprocess.Popen | None = None

    def start(self) -> "ManagedProcess":
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                self.argv,
                env=self.env,
                cwd=REPO,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def signal(self, sig: int) -> None:
        if self.alive():
            os.killpg(self.proc.pid, sig)

    def wait(self, timeout: float) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout=timeout)

    def stop(self, timeout: float = 10.0) -> None:
        if not self.alive():
            return
        self.signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.signal(signal.SIGKILL)
            self.proc.wait(timeout=5)

    def wait_listening(self, url: str, timeout: float = 20.0) -> None:
        """Until gunicorn's master logs that it listens at `url`. What answers there is then
        this process: another may have bound the port between free_port() and gunicorn's
        bind, and probing the URL alone would take its answers for ours."""
        line = f"Listening at: {url} ("

        def bound():
            if line in self.output():
                return True
            if not self.alive():
                raise GiveUp(f"{self.name} exited early:\n{self.output()[-3000:]}")
            return False

        wait_until(bound, timeout=timeout, what=f"{self.name} listening at {url}")

    def wait_http(
        self, url: str, timeout: float = 20.0, status: int | None = None
    ) -> None:
        def ready():
            if not self.alive():
                raise GiveUp(f"{self.name} exited early:\n{self.output()[-3000:]}")
            r = requests.get(url, timeout=1)
            return r.status_code == status if status is not None else True

        try:
            wait_until(ready, timeout=timeout, what=f"{self.name} at {url}")
        except AssertionError:
            raise AssertionError(
                f"{self.name} not ready at {url}; log:\n{self.output()[-3000:]}"
            ) from None


def python_module(module: str, *args: str) -> list[str]:
    return [sys.executable, "-m", module, *args]


def true_in_a_forked_child(check) -> bool:
    """Fork; whether `check()` is true in the child (which leaves without pytest's teardown)."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.write(write_end, b"1" if check() else b"0")
        finally:
            os._exit(0)
    os.close(write_end)
    try:
        return os.read(read_end, 1) == b"1"
    finally:
        os.waitpid(pid, 0)
        os.close(read_end)
