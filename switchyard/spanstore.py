"""The spans the local stack sent, kept in one SQLite file under the data directory.

One row per span, keyed by (trace id, span id): an exporter that sends a batch twice (a retry
after a lost answer) changes nothing. Writes go through one kept connection (the receiver's
threads take turns); every read opens its own, so a `switchyard traces` in another terminal
reads while the stack writes.

Only the newest spans are kept (MAX_SPANS, the last received): a stack left under load for
hours would otherwise fill the disk, at some 500 bytes a span, and make every `switchyard
traces` slower (it reads every trace's first span: about a second per million spans).
"""

import json
import sqlite3
import threading
from collections.abc import Iterable
from contextlib import closing
from dataclasses import dataclass, field
from itertools import groupby
from pathlib import Path

FILE_NAME = "traces.db"
# About 250 MB, or 125,000 requests of four spans; the oldest go a tenth at a time.
MAX_SPANS = 500_000
SCHEMA = """
CREATE TABLE IF NOT EXISTS spans (
    trace_id TEXT NOT NULL,
    span_id TEXT NOT NULL,
    parent_id TEXT NOT NULL,
    name TEXT NOT NULL,
    service TEXT NOT NULL,
    kind TEXT NOT NULL,
    start_ns INTEGER NOT NULL,
    end_ns INTEGER NOT NULL,
    status TEXT NOT NULL,
    request_id TEXT,
    attributes TEXT NOT NULL,
    PRIMARY KEY (trace_id, span_id)
);
CREATE INDEX IF NOT EXISTS spans_by_request_id ON spans (request_id);
-- Served no query (`recent` groups by trace first) and cost every insert: gone.
DROP INDEX IF EXISTS spans_by_start;
"""
COLUMNS = (
    "trace_id",
    "span_id",
    "parent_id",
    "name",
    "service",
    "kind",
    "start_ns",
    "end_ns",
    "status",
    "request_id",
    "attributes",
)

_INSERT = (
    f"INSERT OR REPLACE INTO spans ({', '.join(COLUMNS)}) "
    f"VALUES ({', '.join('?' for _ in COLUMNS)})"
)


# Not frozen: that doubles the cost of making one, per span received.
@dataclass(slots=True)
class SpanRecord:
    trace_id: str  # 32 hex digits
    span_id: str  # 16 hex digits
    parent_id: str  # 16 hex digits, or "" for a root
    name: str
    service: str
    kind: str  # server, client, internal, producer, consumer, unspecified
    start_ns: int
    end_ns: int
    status: str  # ok, error, unset
    attributes: dict = field(default_factory=dict)
    request_id: str | None = None

    @property
    def duration_ns(self) -> int:
        return self.end_ns - self.start_ns


class SpanStore:
    """`max_spans`: how many of the spans received last are kept (None: all)."""

    def __init__(self, data_dir: Path, max_spans: int | None = MAX_SPANS):
        self.path = Path(data_dir) / FILE_NAME
        self._writer: sqlite3.Connection | None = None
        self._writing = threading.Lock()
        self._max_spans = max_spans
        self._unpruned = max_spans or 0  # spans added since the last pruning (or start)

    def _writer_connection(self) -> sqlite3.Connection:
        """The one connection that writes, kept (its page cache stays warm, the schema is
        checked once) and shared by the receiver's threads under a lock. Write-ahead log:
        a batch's pages are written once, not copied to a rollback journal first, and
        readers in other processes (`switchyard traces`) still read while it writes;
        synchronous=NORMAL, as WAL allows: a power cut may lose the last batches, never
        the file."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(self.path, timeout=10, check_same_thread=False)
        connection.executescript(SCHEMA)
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=NORMAL")
        return connection

    def add(self, spans: Iterable[SpanRecord]) -> None:
        """Every span of one export in one transaction. The rows are tuples built by hand:
        dataclasses.asdict deep-copies every attribute and cost the receiver more than the
        decoding and the insert together."""
        dumps = json.JSONEncoder(sort_keys=True, separators=(",", ":")).encode
        rows = [
            (s.trace_id, s.span_id, s.parent_id, s.name, s.service, s.kind, s.start_ns,
             s.end_ns, s.status, s.request_id, dumps(s.attributes))
            for s in spans
        ]  # fmt: skip
        with self._writing:
            if self._writer is None:
                self._writer = self._writer_connection()
            with self._writer:
                self._writer.executemany(_INSERT, rows)
                self._unpruned += len(rows)
                if self._max_spans and self._unpruned >= self._max_spans // 10:
                    self._prune(self._max_spans)

    def _prune(self, keep: int) -> None:
        """Delete all but the `keep` rows inserted last. A row's rowid is its order of
        insertion (a replaced row is inserted again), so this is a range of the table's
        own b-tree: no index needed, no scan."""
        self._writer.execute(
            "DELETE FROM spans WHERE rowid <= (SELECT MAX(rowid) FROM spans) - ?",
            (keep,),
        )
        self._unpruned = 0

    def close(self) -> None:
        """Close the writing connection (the next add opens another)."""
        with self._writing:
            if self._writer is not None:
                self._writer.close()
                self._writer = None

    def trace(self, trace_id: str) -> list[SpanRecord]:
        rows = self._rows(
            f"SELECT {', '.join(COLUMNS)} FROM spans WHERE trace_id = ? ORDER BY start_ns",
            (trace_id,),
        )
        return [_record(dict(zip(COLUMNS, row))) for row in rows]

    def trace_ids_for_request(self, request_id: str) -> list[str]:
        """Traces whose spans carry this X-Request-ID, most recent first."""
        rows = self._rows(
            "SELECT trace_id FROM spans WHERE request_id = ? "
            "GROUP BY trace_id ORDER BY MAX(start_ns) DESC",
            (request_id,),
        )
        return [trace_id for (trace_id,) in rows]

    def recent(self, limit: int) -> list[list[SpanRecord]]:
        """The spans of the `limit` most recently started traces, newest first. One query
        (one connection) for them all, not one per trace."""
        rows = self._rows(
            "WITH newest AS (SELECT trace_id, MIN(start_ns) AS first_ns FROM spans "
            "GROUP BY trace_id ORDER BY first_ns DESC LIMIT ?) "
            f"SELECT {', '.join('spans.' + c for c in COLUMNS)} FROM spans "
            "JOIN newest USING (trace_id) "
            "ORDER BY newest.first_ns DESC, spans.trace_id, spans.start_ns",
            (limit,),
        )
        records = (_record(dict(zip(COLUMNS, row))) for row in rows)
        return [list(spans) for _, spans in groupby(records, key=lambda s: s.trace_id)]

    def count(self) -> int:
        """Spans stored (the gateway bench checks every traced request's spans arrived)."""
        rows = self._rows("SELECT COUNT(*) FROM spans", ())
        return rows[0][0] if rows else 0

    def _rows(self, query: str, params: tuple) -> list[tuple]:
        # Reading creates and changes nothing (the schema is the writer's): no file yet (no
        # stack ran) or no table yet (the writer is making it) reads as no spans. Not
        # Path.exists(), which reads a data directory that is a file as "no file" too:
        # that one, like one we may not read, raises OSError for the caller to name.
        try:
            self.path.stat()
        except FileNotFoundError:
            return []
        with closing(sqlite3.connect(self.path, timeout=10)) as connection:
            try:
                return connection.execute(query, params).fetchall()
            except sqlite3.OperationalError as exc:
                if "no such table" not in str(exc):
                    raise
                return []


def _record(row: dict) -> SpanRecord:
    return SpanRecord(**{**row, "attributes": json.loads(row["attributes"])})
