"""devconsul.telemetry: go-metrics' DisplayMetrics shape from the store, and
the Prometheus text exposition of the same gauges."""

from datetime import UTC, datetime

import pytest

from devconsul.store import KVEntry, Node, Store
from devconsul.telemetry import _interval_start, go_float, prometheus_text, snapshot


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


@pytest.mark.parametrize(
    "value, text",
    [
        (0.0, "0"),
        (1.0, "1"),
        (-2.5, "-2.5"),
        (123456.0, "123456"),
        (1e6, "1e+06"),
        (1234567.0, "1.234567e+06"),
        (0.0001, "0.0001"),
        (1e-05, "1e-05"),
        (float("inf"), "+Inf"),
        (float("nan"), "NaN"),
    ],
)
def test_samples_are_formatted_as_go_formats_them(value, text):
    """strconv.FormatFloat(f, 'g', -1, 64), which client_golang's text
    encoder (expfmt writeFloat) uses for sample values."""
    assert go_float(value) == text


def test_prometheus_text_flattens_names_and_declares_each_gauge():
    store = Store()
    store.kv_put(KVEntry("a", b"1"))
    lines = prometheus_text(store).splitlines()
    at = lines.index("consul_state_kv_entries 1")
    assert lines[at - 2 : at] == [
        "# HELP consul_state_kv_entries consul_state_kv_entries",
        "# TYPE consul_state_kv_entries gauge",
    ]
