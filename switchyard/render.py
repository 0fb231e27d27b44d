"""Console output: start-up progress, aligned tables, and prefixed log lines."""

import sys
import threading
from collections.abc import Sequence
from typing import TextIO


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


class Console:
    """Serialises writes from the log-pump threads and the main thread."""

    def __init__(self, out: TextIO | None = None, quiet: bool = False):
        self.out = out or sys.stdout
        self.quiet = quiet
        self._lock = threading.Lock()
        self._following = False
        self._width = 0

    def say(self, message: str) -> None:
        if self.quiet:
            return
        with self._lock:
            self.out.write(message + "\n")
            self.out.flush()

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
