"""Prometheus metrics of one gateway app, in its own CollectorRegistry (tests build many apps).

The gateway runs one worker process by default, so its counters count every request. With
WEB_CONCURRENCY > 1 the master points PROMETHEUS_MULTIPROC_DIR at a directory of its own
(gateway.gunicorn_conf) and prometheus_client's multiprocess mode sums every worker's
counters at each scrape, whichever worker answers. In that mode the series of departed
instances stay until the gateway restarts (the files cannot forget them).

The request path goes through `child()`: prometheus_client's `.labels()` validates and
locks on every call, which cost more than the increment itself; the labelled children are
looked up once per label combination and kept.
"""

import os
import threading

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily

from chassis.tracing import dropped_spans

__all__ = ["CONTENT_TYPE", "GatewayMetrics"]

CONTENT_TYPE = CONTENT_TYPE_LATEST

NO_INSTANCE = "-"  # the `instance` label of answers no instance gave (e.g. 503)

LATENCY_BUCKETS = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1,
    2.5,
    5,
    10,
)


class GatewayMetrics:
    def __init__(self, directory):
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "gateway_requests",
            "Proxied requests by service, final status and the instance that answered",
            ["service", "status", "instance"],
            registry=r,
        )
        self.latency = Histogram(
            "gateway_request_duration_seconds",
            "Time from request to upstream answer, all attempts included",
            ["service"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.attempts = Counter(
            "gateway_upstream_attempts",
            "Attempts on upstream instances by outcome",
            ["service", "outcome"],
            registry=r,
        )
        self.retries = Counter(
            "gateway_retries", "Attempts after the first", ["service"], registry=r
        )
        self.budget_exhausted = Counter(
            "gateway_retry_budget_exhausted",
            "Retries refused by the retry budget",
            ["service"],
            registry=r,
        )
        self.ejections = Counter(
            "gateway_ejections",
            "Instances ejected after consecutive failures",
            ["service", "instance"],
            registry=r,
        )
        self.dropped_spans = Counter(
            "gateway_tracing_dropped_spans",
            "Spans ended but never exported: the queue was full or the export failed",
            registry=r,
        )
        self._dropped_counted = 0
        self._directory = _DirectoryCollector(directory)
        r.register(self._directory)
        self._children: dict[tuple, object] = {}
        # Metrics whose last label is `instance`, and their cached label sets.
        self._by_instance = (self.requests, self.ejections)
        self._labelled: dict[tuple, tuple] = {}
        self._lock = threading.Lock()

    def count_dropped_spans(self) -> None:
        """Bring the dropped-spans counter up to chassis.tracing's count. Called at each
        scrape and by the worker's heartbeat: with several workers each one writes its own
        count (to its multiprocess file), whichever worker answers the scrape."""
        dropped = dropped_spans()
        if dropped > self._dropped_counted:
            self.dropped_spans.inc(dropped - self._dropped_counted)
            self._dropped_counted = dropped

    def render(self) -> bytes:
        """The Prometheus text of the whole gateway: every worker's, when there are several."""
        self.count_dropped_spans()
        if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        registry.register(self._directory)  # Consul's state: the same in every worker
        return generate_latest(registry)

    def forget(self, keep: set[str]) -> None:
        """Drop the series of instances Consul no longer lists (churn would grow them forever)."""
        with self._lock:
            for key, (metric, labels) in list(self._labelled.items()):
                instance = labels[-1]
                if instance in keep or instance == NO_INSTANCE:
                    continue
                del self._labelled[key]
                self._children.pop(key, None)
                try:
                    metric.remove(*labels)
                except KeyError:
                    pass

    def child(self, metric, *labels: str):
        """`metric.labels(*labels)`, cached; `forget` drops those of departed instances."""
        key = (id(metric), labels)
        found = self._children.get(key)
        if found is None:
            with self._lock:
                found = self._children.setdefault(key, metric.labels(*labels))
                if metric in self._by_instance:
                    self._labelled[key] = (metric, labels)
        return found


class _DirectoryCollector:
    """Values read from the directory at scrape time: watcher errors, snapshot ages."""

    def __init__(self, directory):
        self.directory = directory

    def describe(self):
        return []

    def collect(self):
        d = self.directory
        errors = GaugeMetricFamily(
            "gateway_watcher_errors",
            "Consul watch failures: catalog (count so far) and per service (1 = failing now)",
            labels=["watch"],
        )
        errors.add_metric(["catalog"], d.catalog_errors)
        age = GaugeMetricFamily(
            "gateway_snapshot_age_seconds",
            "Seconds since Consul last answered the watch of a service",
            labels=["service"],
        )
        for name, state in sorted(d.view().services.items()):
            errors.add_metric([name], 1 if state.snapshot.error else 0)
            if state.snapshot.loaded:
                age.add_metric([name], state.snapshot.age)
        yield errors
        yield age
