"""`switchyard traces`: recent traces as a table, and one trace as a waterfall.

    TRACE                             STARTED       ROOT                         STATUS  DURATION  SPANS
    4bf92f3577b34da6a3ce929d0e0e4736  10:02:11.482  order-service POST /orders  201     14.2 ms   4

    order-service POST /orders                 14.2 ms  |##############################|
      order-service GET                         6.0 ms  |   ############               |
        user-service GET /users/<int:user_id>   3.1 ms  |     ######                   |
          user-service SELECT switchyard        0.4 ms  |       #                      |

One line per span, children under their parent (by start time), a bar placed and sized by
the span's time within the whole trace.
"""

import re
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime

from switchyard.render import table, truncate
from switchyard.spanstore import SpanRecord, SpanStore

__all__ = ["BAR_WIDTH", "find_trace", "trace_table", "waterfall"]

BAR_WIDTH = 30
TRACE_ID = re.compile(r"[0-9a-f]{32}")
PATH_KEYS = ("url.path", "http.target", "url.full", "http.url", "http.route")
METHOD_KEYS = ("http.request.method", "http.method")
DB_KEYS = ("db.system.name", "db.system")
DB_OPERATION_KEYS = ("db.operation.name", "db.operation")
STATUS_KEYS = ("http.response.status_code", "http.status_code")


def find_trace(store: SpanStore, ident: str) -> list[SpanRecord]:
    """The spans of the trace `ident` names: a trace id, or else an X-Request-ID (its most
    recent trace). Empty when neither is known."""
    ident = ident.strip()
    if TRACE_ID.fullmatch(ident.lower()):
        spans = store.trace(ident.lower())
        if spans:
            return spans
    trace_ids = store.trace_ids_for_request(ident)
    return store.trace(trace_ids[0]) if trace_ids else []


def trace_table(traces: Sequence[Sequence[SpanRecord]]) -> str:
    rows = []
    for spans in traces:
        root = roots(spans)[0]
        rows.append(
            [
                root.trace_id,
                clock(root.start_ns),
                truncate(describe(root), 48),
                status(root),
                milliseconds(span_of(spans)),
                len(spans),
            ]
        )
    return table(["TRACE", "STARTED", "ROOT", "STATUS", "DURATION", "SPANS"], rows)


def waterfall(spans: Sequence[SpanRecord], width: int = BAR_WIDTH) -> str:
    """The trace as lines `<indent><service> <name>  <duration>  |<bar>|`."""
    start = min(s.start_ns for s in spans)
    total = max(span_of(spans), 1)
    lines = []
    for depth, span in in_tree_order(spans):
        offset = round((span.start_ns - start) / total * width)
        length = max(1, round(span.duration_ns / total * width))
        offset = min(offset, width - length)
        bar = " " * offset + "#" * length + " " * (width - offset - length)
        label = "  " * depth + describe(span)
        if span.status == "error":
            label += " (error)"
        lines.append((label, milliseconds(span.duration_ns), bar))
    label_width = max(len(label) for label, _, _ in lines)
    time_width = max(len(took) for _, took, _ in lines)
    return "\n".join(
        f"{label:<{label_width}}  {took:>{time_width}}  |{bar}|"
        for label, took, bar in lines
    )


def in_tree_order(spans: Sequence[SpanRecord]) -> list[tuple[int, SpanRecord]]:
    """(depth, span), depth first, siblings by start time; a span whose parent was never
    received is shown as a root."""
    children = defaultdict(list)
    for span in spans:
        children[span.parent_id].append(span)
    ordered = []

    def visit(span: SpanRecord, depth: int) -> None:
        ordered.append((depth, span))
        for child in sorted(children[span.span_id], key=lambda s: s.start_ns):
            visit(child, depth + 1)

    for root in roots(spans):
        visit(root, 0)
    return ordered


def roots(spans: Sequence[SpanRecord]) -> list[SpanRecord]:
    ids = {s.span_id for s in spans}
    return sorted(
        (s for s in spans if s.parent_id not in ids), key=lambda s: s.start_ns
    )


def describe(span: SpanRecord) -> str:
    """`<service> <method> <path>` for HTTP spans, `<service> <db> <operation>` for database
    statements (their names carry the whole database path), else `<service> <span name>`."""
    path = first(span.attributes, PATH_KEYS)
    method = first(span.attributes, METHOD_KEYS)
    database = first(span.attributes, DB_KEYS)
    operation = first(span.attributes, DB_OPERATION_KEYS)
    if path and method:
        what = f"{method} {path}"
    elif database and operation:
        # the first word: the SQLAlchemy instrumentation appends the database's name
        what = f"{database} {operation.split()[0]}"
    else:
        what = span.name
    return f"{span.service} {what}"


def status(span: SpanRecord) -> str:
    code = first(span.attributes, STATUS_KEYS)
    return str(code) if code is not None else span.status


def first(attributes: dict, keys: Sequence[str]):
    return next((attributes[k] for k in keys if k in attributes), None)


def span_of(spans: Sequence[SpanRecord]) -> int:
    return max(s.end_ns for s in spans) - min(s.start_ns for s in spans)


def milliseconds(nanoseconds: int) -> str:
    return f"{nanoseconds / 1e6:.1f} ms"


def clock(unix_ns: int) -> str:
    moment = datetime.fromtimestamp(unix_ns / 1e9, UTC).astimezone()
    return moment.strftime("%H:%M:%S.%f")[:-3]
