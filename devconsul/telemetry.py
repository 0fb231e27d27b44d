"""/v1/agent/metrics in go-metrics' in-memory sink shape (DisplayMetrics), and
in Prometheus' text exposition format when prometheus_retention_time is set.

devconsul keeps no timers or counters; it reports the gauges a user checks on
a dev agent, computed from the store when asked, under Consul's metric names.
"""

import math
import threading
from datetime import UTC, datetime
from decimal import Decimal

from devconsul.store import Store

# go-metrics' inmem sink aggregates over 10-second intervals.
INTERVAL = 10


def _gauge(name: str, value: float) -> dict:
    return {"Name": name, "Value": float(value), "Labels": {}}


def gauges(store: Store) -> list[dict]:
    with store.lock:
        instances = len(store.services)
        names = len({s.name for s in store.services.values()})
        connect = sum(1 for s in store.services.values() if s.kind or s.connect)
        return [
            _gauge("consul.autopilot.failure_tolerance", 0),
            _gauge("consul.autopilot.healthy", 1),
            _gauge("consul.runtime.num_goroutines", threading.active_count()),
            _gauge(
                "consul.session_ttl.active",
                sum(1 for s in store.sessions.values() if s.ttl),
            ),
            _gauge("consul.state.config_entries", len(store.config_entries)),
            _gauge("consul.state.connect_instances", connect),
            _gauge("consul.state.kv_entries", len(store.kv)),
            _gauge("consul.state.nodes", len(store.nodes)),
            _gauge("consul.state.service_instances", instances),
            _gauge("consul.state.services", names),
        ]


def _interval_start(now: datetime) -> str:
    """The current interval's start as Go prints a time.Time."""
    start = now.replace(second=now.second - now.second % INTERVAL, microsecond=0)
    return start.strftime("%Y-%m-%d %H:%M:%S +0000 UTC")


def snapshot(store: Store) -> dict:
    return {
        "Timestamp": _interval_start(datetime.now(UTC)),
        "Gauges": gauges(store),
        "Points": [],
        "Counters": [],
        "Samples": [],
    }


# What promhttp answers when it negotiates the plain text format (Consul's
# handler does not enable OpenMetrics).
PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def prometheus_text(store: Store) -> str:
    """The gauges as go-metrics' Prometheus sink exposes them: the dotted name
    flattened with underscores, sorted by name as the registry gathers them.
    HELP is the name, as the sink writes it for a gauge without a definition
    (Consul defines descriptions for its own)."""
    lines = []
    for gauge in sorted(gauges(store), key=lambda g: g["Name"]):
        name = gauge["Name"].replace(".", "_").replace("-", "_")
        lines += [
            f"# HELP {name} {name}",
            f"# TYPE {name} gauge",
            f"{name} {go_float(gauge['Value'])}",
        ]
    return "\n".join(lines) + "\n"


def go_float(value: float) -> str:
    """strconv.FormatFloat(value, 'g', -1, 64), as the text encoder writes a
    sample: the shortest digits that read back, in exponent form from 1e+06
    up and below 1e-04."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == 0:
        return "0"
    # repr gives the shortest round-trip digits, as Go's precision -1 does.
    _, digits, exponent = Decimal(repr(float(value))).normalize().as_tuple()
    magnitude = len(digits) + exponent - 1
    if magnitude < -4 or magnitude >= 6:
        return f"{value:.{len(digits) - 1}e}"
    return f"{value:.{max(len(digits) - magnitude - 1, 0)}f}"
