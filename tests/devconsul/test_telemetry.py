"""devconsul.telemetry: go-metrics' DisplayMetrics shape from the store."""

from datetime import UTC, datetime

from devconsul.store import KVEntry, Node, Store
from devconsul.telemetry import _interval_start, snapshot


def test_interval_start_is_gos_time_format_on_ten_seconds():
    now = datetime(2026, 12, 3, 9, 5, 39, 123, UTC)
    assert _interval_start(now) == "2026-12-03 09:05:30 +0000 UTC"


def test_gauges_count_the_store():
    store = Store()
    store.put_node(Node("id", "n1", "127.0.0.1", "dc1", {}, {}))
    store.kv_put(KVEntry("a", b"1"))
    gauges = {g["Name"]: g["Value"] for g in snapshot(store)["Gauges"]}
    assert gauges["consul.state.nodes"] == 1.0
    assert gauges["consul.state.kv_entries"] == 1.0
    assert gauges["consul.state.config_entries"] == 0.0
