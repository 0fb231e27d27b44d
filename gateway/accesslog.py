"""The access line of every request under /api (proxied, or a view), written in batches.

One line through `logging` costs about 40 us of CPU per request (a LogRecord with caller,
thread and process lookups, the handler lock, a write syscall each) -- as much as all the
header handling of the proxy. Here a request formats its line and appends it to a deque; one
thread per process writes whatever gathered, every `FLUSH_INTERVAL`, with one write.

Lines keep the `LEVEL subsystem: message` shape of every other log line, go to stderr like
them, and follow the level of their logger (LOG_LEVEL): below INFO nothing is formatted.
"""

import atexit
import contextlib
import logging
import sys
import threading
import time
from collections import deque

__all__ = ["AccessLog"]

FLUSH_INTERVAL = 0.1  # seconds: how late a line may appear
MAX_PENDING = 100_000  # lines kept while stderr is stalled; the oldest go first


class AccessLog:
    def __init__(self, logger: logging.Logger):
        self.logger = logger
        self._prefix = f"INFO {logger.name}: "
        self._pending: deque[str] = deque(maxlen=MAX_PENDING)
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        atexit.register(self.flush)

    def enabled(self) -> bool:
        return self.logger.isEnabledFor(logging.INFO)

    def info(self, message: str) -> None:
        self._pending.append(self._prefix + message)
        if not self._wake.is_set():
            self._wake.set()
            if self._thread is None or not self._thread.is_alive():
                self._start()  # first line, or first line after a fork

    def flush(self) -> None:
        with self._lock:
            lines = []
            while self._pending:
                lines.append(self._pending.popleft())
            if lines:
                # Like logging's handlers: a broken stderr must not break requests.
                with contextlib.suppress(OSError, ValueError):
                    sys.stderr.write("\n".join(lines) + "\n")
                    sys.stderr.flush()

    def _start(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="gateway-access-log", daemon=True
                )
                self._thread.start()

    def _run(self) -> None:
        while True:
            self._wake.wait()
            time.sleep(FLUSH_INTERVAL)  # let lines gather: one write for all of them
            self._wake.clear()
            self.flush()
