"""`switchyard traces` text: the table of recent traces and one trace's waterfall."""

from switchyard.spanstore import SpanRecord, SpanStore
from switchyard.traces import find_trace, in_tree_order, trace_table, waterfall

T0 = 1_700_000_000_000_000_000  # 2023-11-14 22:13:20 UTC, in ns
MS = 1_000_000
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


def span(span_id, parent_id, service, kind, start_ms, end_ms, **attributes):
    """A span of TRACE; one-letter ids are repeated to full length."""
    name = attributes.pop("name", "span")
    status = attributes.pop("status", "unset")
    request_id = attributes.pop("request_id", None)
    return SpanRecord(
        trace_id=TRACE,
        span_id=span_id * 16,
        parent_id=parent_id * 16 if len(parent_id) == 1 else parent_id,
        name=name,
        service=service,
        kind=kind,
        start_ns=T0 + start_ms * MS,
        end_ns=T0 + end_ms * MS,
        status=status,
        attributes=attributes,
        request_id=request_id,
    )


def order_trace() -> list[SpanRecord]:
    """POST /orders as the services record it; the gateway's span (its parent) is absent."""
    sql = {"db.system": "sqlite"}
    return [
        span(
            "1",
            "00f067aa0ba902b7",
            "order-service",
            "server",
            0,
            20,
            **{
                "http.method": "POST",
                "http.target": "/orders",
                "http.status_code": 201,
            },
        ),
        span(
            "2",
            "1",
            "order-service",
            "client",
            2,
            12,
            **{"http.method": "GET", "http.url": "http://127.0.0.1:8001/users/1"},
        ),
        span(
            "3",
            "2",
            "user-service",
            "server",
            4,
            10,
            **{
                "http.method": "GET",
                "http.target": "/users/1",
                "http.status_code": 200,
            },
        ),
        span(
            "4",
            "3",
            "user-service",
            "client",
            6,
            7,
            **sql,
            **{"db.operation": "SELECT"},
        ),
        span(
            "5",
            "1",
            "order-service",
            "client",
            14,
            18,
            status="error",
            **sql,
            **{"db.operation": "INSERT"},
        ),
    ]


WATERFALL = """\
order-service POST /orders                         20.0 ms  |##############################|
  order-service GET http://127.0.0.1:8001/users/1  10.0 ms  |   ###############            |
    user-service GET /users/1                       6.0 ms  |      #########               |
      user-service sqlite SELECT                    1.0 ms  |         ##                   |
  order-service sqlite INSERT (error)               4.0 ms  |                     ######   |"""


def test_the_waterfall_indents_by_parent_and_draws_each_span_in_its_time():
    assert waterfall(order_trace()) == WATERFALL
    # the same, whatever order the spans arrived in
    assert waterfall(list(reversed(order_trace()))) == WATERFALL


def test_a_span_whose_parent_never_arrived_is_drawn_as_a_root():
    spans = order_trace()
    orphan = span("6", "f", "user-service", "server", 1, 3)
    assert [(depth, s.span_id[0]) for depth, s in in_tree_order([*spans, orphan])] == [
        (0, "1"),
        (1, "2"),
        (2, "3"),
        (3, "4"),
        (1, "5"),
        (0, "6"),
    ]


def test_the_table_shows_root_status_duration_and_span_count(utc):
    assert trace_table([order_trace()]) == (
        "TRACE                             STARTED       ROOT                        "
        "STATUS  DURATION  SPANS\n"
        "--------------------------------  ------------  --------------------------  "
        "------  --------  -----\n"
        f"{TRACE}  22:13:20.000  order-service POST /orders  201     20.0 ms   5"
    )


def test_a_trace_is_found_by_its_id_or_by_a_request_id(tmp_path):
    store = SpanStore(tmp_path)
    spans = order_trace()
    spans[0] = span(
        "1", "00f067aa0ba902b7", "order-service", "server", 0, 20, request_id="req-9"
    )
    store.add(spans)
    assert [s.span_id for s in find_trace(store, TRACE)] == [s.span_id for s in spans]
    assert find_trace(store, TRACE.upper()) == find_trace(store, TRACE)
    assert find_trace(store, "req-9") == find_trace(store, TRACE)
    assert find_trace(store, "f" * 32) == []
    assert find_trace(store, "req-unknown") == []
