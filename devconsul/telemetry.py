"""/v1/agent/metrics in go-metrics' in-memory sink shape (DisplayMetrics).

devconsul keeps no timers or counters; it reports the gauges a user checks on
a dev agent, computed from the store when asked, under Consul's metric names.
"""

import threading
from datetime import UTC, datetime

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
