import sqlite3
from dataclasses import replace

from switchyard.spanstore import SpanStore
from tests.switchyard.test_traces import order_trace


def test_an_empty_data_directory_has_no_traces_and_gets_no_file(tmp_path):
    store = SpanStore(tmp_path / "var")
    assert store.recent(10) == []
    assert store.trace("0" * 32) == []
    assert store.trace_ids_for_request("r") == []
    assert store.count() == 0
    assert not (tmp_path / "var").exists()


def test_reading_a_file_the_writer_has_not_made_a_table_in_yet_changes_nothing(
    tmp_path,
):
    sqlite3.connect(tmp_path / "traces.db").close()  # the file, and no table yet
    store = SpanStore(tmp_path)
    assert store.recent(10) == []
    assert store.count() == 0
    with sqlite3.connect(tmp_path / "traces.db") as connection:
        tables = connection.execute("SELECT name FROM sqlite_master").fetchall()
    assert tables == []  # the schema is the writer's to make


def test_spans_round_trip_and_a_repeated_span_is_stored_once(tmp_path):
    store = SpanStore(tmp_path)
    spans = order_trace()
    store.add(spans)
    store.add(spans[:2])
    assert store.trace(spans[0].trace_id) == sorted(spans, key=lambda s: s.start_ns)
    assert store.count() == len(spans)


def test_recent_lists_the_newest_traces_first_up_to_the_limit(tmp_path):
    store = SpanStore(tmp_path)
    for n in range(3):
        trace_id = f"{n + 1:032x}"
        store.add(
            replace(s, trace_id=trace_id, start_ns=s.start_ns + n, end_ns=s.end_ns + n)
            for s in order_trace()
        )
    newest = store.recent(2)
    assert [spans[0].trace_id for spans in newest] == [f"{3:032x}", f"{2:032x}"]
    assert [len(spans) for spans in newest] == [5, 5]
    assert newest == [store.trace(spans[0].trace_id) for spans in newest]


def traces(count: int, start: int = 0):
    """`count` traces of order_trace()'s five spans, numbered from `start`."""
    return [
        replace(s, trace_id=f"{n + 1:032x}")
        for n in range(start, start + count)
        for s in order_trace()
    ]


def test_only_the_spans_received_last_are_kept(tmp_path):
    store = SpanStore(
        tmp_path, max_spans=50
    )  # ten traces; the oldest go five at a time
    for n in range(0, 30, 2):
        store.add(traces(2, n))  # 30 traces, 150 spans, two traces a batch
        assert store.count() <= 50 + 5
    assert store.trace(f"{30:032x}") != []  # the last received
    assert store.trace(f"{1:032x}") == []  # the first are gone
    assert 50 <= store.count() <= 55


def test_a_file_over_the_limit_is_cut_down_by_the_next_writer(tmp_path):
    SpanStore(tmp_path, max_spans=None).add(traces(20))  # 100 spans, kept
    store = SpanStore(tmp_path, max_spans=50)
    store.add(traces(1, 20))
    assert store.count() == 50
    assert store.trace(f"{21:032x}") != []
