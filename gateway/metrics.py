"""Prometheus metrics of one gateway app, in its own CollectorRegistry (tests build many apps).

The gateway runs one worker process by default, so its counters count every request. With
WEB_CONCURRENCY > 1 the master points PROMETHEUS_MULTIPROC_DIR at a directory of its own
(gateway.gunicorn_conf) and prometheus_client's multiprocess mode sums every worker's
counters at each scrape, whichever worker answers. The workers' files cannot forget the
series of instances Consul no longer lists: the scrape leaves them out (`_Listed`).

What every proxied request counts (its outcome, its latency, its attempts) is tallied in
plain ints on the event loop and moved into the Prometheus metrics by `flush()`: at each
scrape, at the worker's heartbeat, and -- in multiprocess mode, where another worker may
answer the next scrape -- at once. prometheus_client takes a lock and
validates on every `inc()`/`observe()`: three of those per request cost more than the
counting. Rare events (retries, ejections) go to the metrics at once, through `child()`:
`.labels()` validates and locks on every call, so labelled children are looked up once
per label combination and kept. Counts kept elsewhere (spans dropped, failed catalog
watches) are brought into counters by `catch_up()`, never shown as read: with several
workers a value read at scrape time is the answering worker's alone, and a count shown
that way would jump between workers' and fall back when one restarts.
"""

import os
from bisect import bisect_left
from collections import defaultdict
from collections.abc import Sized

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily

from chassis.tracing import dropped_spans

__all__ = ["CONTENT_TYPE", "GatewayMetrics"]

CONTENT_TYPE = CONTENT_TYPE_LATEST

NO_INSTANCE = "-"  # the `instance` label of answers no instance gave (e.g. 503)

# From a canned answer on loopback (under 1 ms) to the longest deadline worth setting:
# GATEWAY_DEADLINE is 15 s by default, and a request that runs into it must still land in
# a bucket of its own, not only in +Inf.
LATENCY_BUCKETS = (
    0.0005,
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
    30,
    60,
)


class GatewayMetrics:
    def __init__(self, directory):
        # No `<counter>_created` gauge beside each series: the text format has no place for
        # it, so it doubled the series for nothing, and multiprocess mode has none (the
        # switch is prometheus_client's, for the process: the gateway's has no other).
        disable_created_metrics()
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "gateway_requests",
            "Requests under /api by service (views: the aggregation views), final"
            " status and the instance that answered",
            ["service", "status", "instance"],
            registry=r,
        )
        self.latency = Histogram(
            "gateway_request_duration_seconds",
            "Time from request to answer (its head), all upstream attempts included",
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
        self.catalog_errors = Counter(
            "gateway_consul_catalog_errors",
            "Failed watches of Consul's service catalog (each retried after a back-off)",
            registry=r,
        )
        self.refusals = Counter(
            "gateway_refusals",
            "Requests the gateway answered itself, no service asked, by status and code:"
            " malformed (400), nothing there (404, 405), too slow (408), too large (413,"
            " 414, 431); and connections past GATEWAY_MAX_CONNECTIONS (503"
            " too_many_connections)",
            ["status", "code"],
            registry=r,
        )
        self.client_connections = Gauge(
            "gateway_client_connections",
            "Client connections open (the scrape's own included)",
            multiprocess_mode="livesum",  # a dead worker's go (gateway.gunicorn_conf)
            registry=r,
        )
        self.connections: Sized = ()  # the server's open ones (Gateway.server)
        self._counted = {self.dropped_spans: 0, self.catalog_errors: 0}
        self.directory = directory
        self._listed: set[str] | None = None  # the instances Consul lists (forget)
        self._directory = _DirectoryCollector(directory)
        r.register(self._directory)
        self._children: dict[tuple, object] = {}
        # Metrics whose last label is `instance`, and their cached label sets.
        self._by_instance = (self.requests, self.ejections)
        self._labelled: dict[tuple, tuple] = {}
        # Tallies since the last flush (see the docstring); all touched on the loop only.
        self._requests: defaultdict[tuple, int] = defaultdict(int)
        self._attempts: defaultdict[tuple, int] = defaultdict(int)
        self._latency: dict[str, list] = {}  # service -> [count per bucket..., sum]
        # prometheus_client chose its multiprocess values at import, from the same variable.
        self._multiprocess = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))

    def catch_up(self) -> None:
        """Bring the metrics of counts kept elsewhere up to them: spans chassis.tracing
        dropped, the directory's failed catalog watches, the server's open connections.
        Called at each scrape and by the worker's heartbeat: with several workers each one
        writes its own count (to its multiprocess file), whichever worker answers the
        scrape."""
        self._catch_up(self.dropped_spans, dropped_spans())
        self._catch_up(self.catalog_errors, self.directory.catalog_errors)
        self.client_connections.set(len(self.connections))

    def refused(self, status: int, code: str) -> None:
        """A request (or a connection) the gateway answered itself, with an error."""
        self.child(self.refusals, str(status), code).inc()

    def _catch_up(self, counter: Counter, count: int) -> None:
        if count > self._counted[counter]:
            counter.inc(count - self._counted[counter])
            self._counted[counter] = count

    def request(self, service: str, status: int, instance: str, seconds: float) -> None:
        """One proxied request's answer and latency."""
        self._requests[service, status, instance] += 1
        buckets = self._latency.get(service)
        if buckets is None:
            buckets = self._latency[service] = [0] * (len(LATENCY_BUCKETS) + 1) + [0.0]
        buckets[bisect_left(LATENCY_BUCKETS, seconds)] += 1  # `le`: bounds inclusive
        buckets[-1] += seconds
        if self._multiprocess:  # another worker may answer the next scrape
            self.flush()

    def attempt(self, service: str, outcome: str) -> None:
        """One attempt on an upstream instance (counted before its request's answer)."""
        self._attempts[service, outcome] += 1
        if self._multiprocess:  # another worker may answer the next scrape
            self.flush()

    def flush(self) -> None:
        """Move the tallies into the Prometheus metrics. On the loop, like the tallying."""
        requests, self._requests = self._requests, defaultdict(int)
        attempts, self._attempts = self._attempts, defaultdict(int)
        latency, self._latency = self._latency, {}
        for (service, status, instance), n in requests.items():
            self.child(self.requests, service, str(status), instance).inc(n)
        for labels, n in attempts.items():
            self.child(self.attempts, *labels).inc(n)
        for service, counts in latency.items():
            # Many observations at once: prometheus_client has no call for that, so its
            # own per-bucket values (what `observe` increments) are added to directly --
            # private attributes, so tests/gateway/test_metrics.py compares the result
            # with `observe`'s, and `strict` fails loudly if their shape ever changes.
            child = self.child(self.latency, service)
            for value, n in zip(child._buckets, counts[:-1], strict=True):
                if n:
                    value.inc(n)
            child._sum.inc(counts[-1])

    def render(self) -> bytes:
        """The Prometheus text of the whole gateway: every worker's, when there are several."""
        self.directory.view()  # the latest: instances Consul dropped are forgotten first
        self.flush()
        self.catch_up()
        if not self._multiprocess:
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        registry.register(
            _Listed(multiprocess.MultiProcessCollector(None), self._listed)
        )
        registry.register(self._directory)  # Consul's state: the same in every worker
        return generate_latest(registry)

    def forget(self, keep: set[str]) -> None:
        """Drop the series of instances Consul no longer lists (churn would grow them
        forever). On the loop (Directory.view); tallies of theirs are flushed first, or
        the next flush would bring the series back."""
        self._listed = keep
        self.flush()
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
            found = self._children[key] = metric.labels(*labels)
            if metric in self._by_instance:
                self._labelled[key] = (metric, labels)
        return found


class _Listed:
    """The workers' metrics (`collector`) less the series of instances Consul does not
    list (`listed`; None: nothing known yet). Their values stay in the files, where no
    worker can remove them (nor its own: they are summed with the dead workers'); once
    out of sight, a series that comes back (the instance registers again) still never
    goes back: it counts on from what the files kept."""

    def __init__(self, collector, listed: set[str] | None):
        self.collector, self.listed = collector, listed

    def collect(self):
        families = self.collector.collect()
        if self.listed is None:
            return families
        keep = self.listed | {NO_INSTANCE}
        for family in families:
            family.samples = [
                s
                for s in family.samples
                if s.labels.get("instance", NO_INSTANCE) in keep
            ]
        return families


class _DirectoryCollector:
    """Consul's state, read from the directory at scrape time (the same in every worker):
    which service watches fail now, how old each snapshot is."""

    def __init__(self, directory):
        self.directory = directory

    def describe(self):
        return []

    def collect(self):
        d = self.directory
        # A state, not a count of errors: 1 or 0 now, so alerts read it as it is.
        failing = GaugeMetricFamily(
            "gateway_consul_watch_failing",
            "1 while the Consul watch of the service fails (the gateway routes on its "
            "last instances, marked stale), else 0",
            labels=["service"],
        )
        age = GaugeMetricFamily(
            "gateway_snapshot_age_seconds",
            "Seconds since Consul last answered the watch of a service",
            labels=["service"],
        )
        for name, state in sorted(d.view().services.items()):
            failing.add_metric([name], 1 if state.snapshot.error else 0)
            if state.snapshot.loaded:
                age.add_metric([name], state.snapshot.age)
        yield failing
        yield age
