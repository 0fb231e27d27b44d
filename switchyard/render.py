"""Console output: start-up progress, aligned tables, and prefixed log lines."""

import os
import select
import sys
import threading
from collections.abc import Sequence
from typing import TextIO

# How often a write waiting for a paused reader looks whether stopping has begun.
WAIT_SLICE_MS = 100


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A plain-text table, columns padded to their widest cell; no trailing spaces."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def truncate(text: str, width: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 3] + "..."


def hung_up(stream: TextIO | None) -> bool:
    """The reader of `stream` has left: a pipe with no reader, a terminal hung up, a closed fd.

    Asked of the kernel (poll reports these without any event requested), so it is known
    without writing; a regular file or /dev/null never hangs up.
    """
    if stream is None:
        return True
    try:
        fd = stream.fileno()
    except (OSError, ValueError):  # no descriptor (StringIO), or closed
        return getattr(stream, "closed", False)
    poller = select.poll()
    poller.register(fd, 0)
    gone = select.POLLERR | select.POLLHUP | select.POLLNVAL
    return any(events & gone for _, events in poller.poll(0))


class Console:
    """Serialises writes from the log-pump threads and the main thread.

    Writing never raises: when the terminal closes or the reader of a pipe leaves
    (`switchyard up | head`, or `| tee` and Ctrl-C), the console goes quiet and reports itself
    `gone()` instead, so that stopping the stack is not cut short by a message about it.

    Nor does a reader that stops reading (a terminal paused by Ctrl-S, a stuck `| less`)
    hold a stop up: writes wait for it only until `stopping()`; from then on what it cannot
    take at once is dropped, and counted in a line should it read again. Hence writes to
    the descriptor, polled first, in pieces a pipe that polls writable takes whole
    (PIPE_BUF): a write blocked in the kernel would hold the lock, and the stop behind it.
    """

    def __init__(self, out: TextIO | None = None, quiet: bool = False):
        self.out = out or sys.stdout
        self.quiet = quiet
        self._lock = threading.Lock()
        self._following = False
        self._width = 0
        self._lost = False
        self._stopping = threading.Event()
        self._dropped = 0

    def stopping(self) -> None:
        """From now on, never wait for the reader: drop what it cannot take at once."""
        self._stopping.set()

    def say(self, message: str) -> None:
        if self.quiet:
            return
        with self._lock:
            if self._lost:
                return
            text = message + "\n"
            if self._dropped:
                lines = "line" if self._dropped == 1 else "lines"
                text = (
                    f"WARNING switchyard: {self._dropped} {lines} not shown "
                    "(the output was not read while stopping)\n" + text
                )
            self._dropped = 0 if self._write(text) else self._dropped + 1

    def _write(self, text: str) -> bool:
        """False when stopping has begun and the reader cannot take `text` now."""
        try:
            fd = self.out.fileno()
        except (OSError, ValueError, AttributeError):  # StringIO, closed, None
            fd = None
        try:
            if fd is None:
                self.out.write(text)
                self.out.flush()
                return True
            data = text.encode(
                getattr(self.out, "encoding", None) or "utf-8", "replace"
            )
            while data:
                if not self._writable(fd):
                    return False
                data = data[os.write(fd, data[: select.PIPE_BUF]) :]
        except (OSError, ValueError, AttributeError):  # EPIPE, EIO, closed, None
            self._lose()
        return True

    def _writable(self, fd: int) -> bool:
        """Wait until `fd` takes more (or has lost its reader: the write then says so),
        but once stopping has begun, only look."""
        poller = select.poll()
        poller.register(fd, select.POLLOUT)
        while not self._stopping.is_set():
            if poller.poll(WAIT_SLICE_MS):
                return True
        return bool(poller.poll(0))

    def gone(self) -> bool:
        """Nobody reads our output any more: stdout or stderr lost its reader."""
        if not self._lost and (hung_up(self.out) or hung_up(sys.stderr)):
            with self._lock:
                self._lose()
        return self._lost

    def _lose(self) -> None:
        self._lost = True
        # What others wrote through `out` (print) and is still buffered would fail
        # again when Python flushes it at exit.
        try:
            fd = self.out.fileno()
        except (OSError, ValueError, AttributeError):
            return
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, fd)
        os.close(null)

    def step(self, marker: str, name: str, detail: str) -> None:
        """One progress line, e.g. `[up]   user-service-127.0.0.1-4100  pid 1234`."""
        self.say(f"  {marker:<14} {name:<34} {detail}".rstrip())

    def follow_logs(self, names: Sequence[str]) -> None:
        """From now on, print each process's output with its name as prefix."""
        with self._lock:
            self._width = max((len(n) for n in names), default=0)
            self._following = True

    def log_line(self, name: str, line: str) -> None:
        if self._following:
            self.say(f"{name:<{self._width}} | {line}")
