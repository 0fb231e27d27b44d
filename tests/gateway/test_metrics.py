"""Tallies moved into Prometheus in bulk read as the same text as one call per event."""

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from gateway.directory import View
from gateway.metrics import LATENCY_BUCKETS, GatewayMetrics
from gateway.routes import RouteTable
from gateway.settings import GatewaySettings

# On a bound, between bounds, past the last one, zero.
SECONDS = [0.001, 0.0007, 0.003, 0.003, 0.25, 42.0, 0.0]


class _Directory:
    catalog_errors = 0

    def view(self):
        return View(RouteTable(), {})


def _lines(text: bytes, prefix: str) -> list[str]:
    return [
        line
        for line in text.decode().splitlines()
        if line.startswith(prefix) and "_created" not in line
    ]


def _bulk_text(flush_every: int) -> bytes:
    metrics = GatewayMetrics(_Directory())
    for n, seconds in enumerate(SECONDS, 1):
        metrics.request("echo", 200, "a", seconds)
        if n % flush_every == 0:
            metrics.flush()
    metrics.request("echo", 503, "-", 0.5)
    return metrics.render()


def _one_by_one_text() -> bytes:
    registry = CollectorRegistry()
    requests = Counter("gateway_requests", "", ["service", "status", "instance"],
                       registry=registry)  # fmt: skip
    latency = Histogram("gateway_request_duration_seconds", "", ["service"],
                        buckets=LATENCY_BUCKETS, registry=registry)  # fmt: skip
    for seconds in SECONDS:
        requests.labels("echo", "200", "a").inc()
        latency.labels("echo").observe(seconds)
    requests.labels("echo", "503", "-").inc()
    latency.labels("echo").observe(0.5)
    return generate_latest(registry)


def test_requests_and_latency_read_as_if_observed_one_by_one():
    text, expected = _bulk_text(len(SECONDS) + 1), _one_by_one_text()
    for prefix in ("gateway_requests_total", "gateway_request_duration_seconds"):
        assert _lines(text, prefix) == _lines(expected, prefix)


def test_flushes_add_up():
    """Each flush adds to the bucket values, and the buckets stay cumulative."""
    text, expected = _bulk_text(2), _one_by_one_text()
    for prefix in ("gateway_requests_total", "gateway_request_duration_seconds"):
        assert _lines(text, prefix) == _lines(expected, prefix)


def test_attempts_are_counted_at_the_next_scrape():
    metrics = GatewayMetrics(_Directory())
    metrics.attempt("echo", "ok")
    metrics.attempt("echo", "ok")
    metrics.attempt("echo", "timeout")
    text = metrics.render().decode()
    assert 'gateway_upstream_attempts_total{outcome="ok",service="echo"} 2.0' in text
    assert (
        'gateway_upstream_attempts_total{outcome="timeout",service="echo"} 1.0' in text
    )
    metrics.attempt("echo", "ok")
    assert (
        'gateway_upstream_attempts_total{outcome="ok",service="echo"} 3.0'
        in metrics.render().decode()
    )


def test_forgetting_flushes_first_and_keeps_answers_of_no_instance():
    metrics = GatewayMetrics(_Directory())
    metrics.request("echo", 200, "a", 0.01)
    metrics.request("echo", 200, "b", 0.01)
    metrics.request("echo", 503, "-", 0.01)
    metrics.flush()
    metrics.request("echo", 200, "a", 0.01)  # not flushed as Consul forgets `a`
    metrics.forget({"b"})
    text = metrics.render().decode()
    assert 'instance="a"' not in text
    assert 'instance="b"' in text and 'instance="-"' in text


def _buckets(text: bytes) -> dict[float, float]:
    """The latency histogram's cumulative count at each finite bound."""
    [family] = [
        f
        for f in text_string_to_metric_families(text.decode())
        if f.name == "gateway_request_duration_seconds"
    ]
    return {
        float(s.labels["le"]): s.value
        for s in family.samples
        if s.name.endswith("_bucket") and s.labels["le"] != "+Inf"
    }


def test_latency_buckets_part_sub_millisecond_answers_and_requests_near_the_deadline():
    """A proxy's answers take from well under a millisecond (loopback, a canned answer)
    to its whole deadline: both ends land in finite buckets, apart from their neighbours."""
    deadline = GatewaySettings().deadline
    metrics = GatewayMetrics(_Directory())
    for seconds in (0.0003, 0.0008, deadline / 2, deadline):
        metrics.request("echo", 200, "a", seconds)
    counts = sorted(_buckets(metrics.render()).items())
    assert counts[0][0] < 0.001 and counts[0][1] == 1  # 0.0003 alone
    assert max(count for bound, count in counts if bound < deadline) == 3
    assert counts[-1][1] == 4  # the deadline's too, in a finite bucket


def test_counters_and_histograms_have_no_created_series():
    """One series per label set, as with several workers (multiprocess mode has none)."""
    metrics = GatewayMetrics(_Directory())
    metrics.request("echo", 200, "a", 0.01)
    metrics.attempt("echo", "ok")
    assert b"_created" not in metrics.render()
