"""This agent's log lines, fanned out to /v1/agent/monitor streams.

A stream asking for a level below the agent's ``-log-level`` lowers the
``devconsul`` loggers' level while it lasts; stderr keeps its own level (set
on its handler by devconsul.cli).

Lines are shaped as Consul's hclog writes them (``2006-01-02T15:04:05.000Z
[INFO]  agent: message``, or one JSON object per line with ``logjson``), with
the subsystem our logger names after ``devconsul.``. Like Consul's monitor,
each stream buffers 512 lines and drops what a slow reader cannot take.
"""

import json
import logging
import queue
import threading
from datetime import UTC, datetime

BUFFER = 512
ROOT_LOGGER = "devconsul"

# hclog's level names (LevelFromString), mapped to Python levels; "off" shows
# nothing. Both -log-level and a monitor stream's ?loglevel take these.
LEVELS = {
    "trace": logging.DEBUG,
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "error": logging.ERROR,
    "off": logging.CRITICAL + 1,
}
_HCLOG_NAMES = {
    logging.DEBUG: "DEBUG",
    logging.INFO: "INFO",
    logging.WARNING: "WARN",
    logging.ERROR: "ERROR",
    logging.CRITICAL: "ERROR",
}


def parse_level(text: str) -> int | None:
    return LEVELS.get(text.strip().lower())


def _subsystem(record: logging.LogRecord) -> str:
    return record.name.removeprefix(ROOT_LOGGER + ".")


def format_line(record: logging.LogRecord, as_json: bool) -> bytes:
    stamp = datetime.fromtimestamp(record.created, UTC)
    level = _HCLOG_NAMES.get(record.levelno, "INFO")
    if as_json:
        line = json.dumps(
            {
                "@level": level.lower(),
                "@message": record.getMessage(),
                "@module": _subsystem(record),
                "@timestamp": stamp.isoformat(timespec="microseconds"),
            }
        )
    else:
        millis = (
            stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z"
        )
        line = f"{millis} {f'[{level}]':<8}{_subsystem(record)}: {record.getMessage()}"
    return line.encode() + b"\n"


class Subscription:
    def __init__(self, level: int, as_json: bool):
        self.level = level
        self.as_json = as_json
        self.lines: queue.Queue[bytes] = queue.Queue(BUFFER)
        self.dropped = 0


class LogHub(logging.Handler):
    """A handler on the ``devconsul`` logger that copies records to subscribers."""

    def __init__(self):
        super().__init__()
        self._subscribers: set[Subscription] = set()
        self._lock = threading.Lock()

    def subscribe(self, level: int, as_json: bool) -> Subscription:
        sub = Subscription(level, as_json)
        with self._lock:
            self._subscribers.add(sub)
            self._follow_subscribers()
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        with self._lock:
            self._subscribers.discard(sub)
            self._follow_subscribers()

    def _follow_subscribers(self) -> None:
        """Let records through down to the lowest level a stream asked for
        (Consul's monitor shows debug lines whatever the agent's log level);
        with no stream, the configured level applies again."""
        logger = logging.getLogger(ROOT_LOGGER)
        wanted = min((s.level for s in self._subscribers), default=logging.NOTSET)
        configured = logging.getLogger().level
        logger.setLevel(wanted if wanted < configured else logging.NOTSET)

    def emit(self, record: logging.LogRecord) -> None:
        with self._lock:
            subscribers = [s for s in self._subscribers if record.levelno >= s.level]
        for sub in subscribers:
            try:
                sub.lines.put_nowait(format_line(record, sub.as_json))
            except queue.Full:
                sub.dropped += 1

    def stream(self, sub: Subscription, poll: float = 0.2):
        """Lines as they come; None every `poll` seconds without one."""
        try:
            while True:
                try:
                    yield sub.lines.get(timeout=poll)
                except queue.Empty:
                    yield None
        finally:
            self.unsubscribe(sub)
            if sub.dropped:
                logging.getLogger(ROOT_LOGGER + ".agent").warning(
                    "Dropped logs during monitor request: dropped_count=%d", sub.dropped
                )


_hub: LogHub | None = None
_hub_lock = threading.Lock()


def hub() -> LogHub:
    """The process's one hub (logging is process-wide), installed on first use."""
    global _hub
    with _hub_lock:
        if _hub is None:
            _hub = LogHub()
            logging.getLogger(ROOT_LOGGER).addHandler(_hub)
        return _hub
