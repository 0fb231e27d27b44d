"""bench.gateway_bench: the order of the interleaved rounds, the figures it prints, how
many slow clients it holds."""

import resource

import pytest

from bench.gateway_bench import (
    HIGH,
    MANY,
    Run,
    rotated,
    run_lines,
    slow_clients_held,
    speed_figures,
    speed_table,
)

PATHS = ["direct", "gateway", "nginx"]


@pytest.mark.parametrize(
    "round_, order",
    [
        (0, ["direct", "gateway", "nginx"]),
        (1, ["gateway", "nginx", "direct"]),
        (2, ["nginx", "direct", "gateway"]),
        (3, ["direct", "gateway", "nginx"]),
    ],
)
def test_each_path_takes_each_place_in_turn(round_, order):
    assert rotated(round_, PATHS) == order


def test_rotated_without_nginx():
    assert rotated(1, ["direct", "gateway"]) == ["gateway", "direct"]


def runs_of(rps: dict, p50: dict, errors: dict, cpu: dict, timeouts=None) -> dict:
    """Runs as bench_speed returns them: one per (path, concurrency)."""
    timeouts = timeouts or {}
    runs = {}
    for path, high_rps in rps.items():
        cpu_us = {path: cpu[path], "upstreams": 400.0, "wrk": 40.0}
        runs[path, 1] = [Run(1000.0, p50[path], 0, 5000, cpu_us)]
        runs[path, HIGH] = [Run(high_rps, 9.0, 0, 5000, cpu_us)]
        runs[path, MANY] = [
            Run(500.0, 9.0, errors[path], 2500, cpu_us, timeouts.get(path, 0))
        ]
    return runs


def test_speed_figures_beside_their_targets():
    runs = runs_of(
        rps={"direct": 1700.0, "gateway": 1500.0, "nginx": 3000.0},
        p50={"direct": 0.5, "gateway": 1.25, "nginx": 0.75},
        errors={"direct": 0, "gateway": 7, "nginx": 0},
        cpu={"direct": 0.0, "gateway": 500.0, "nginx": 80.0},
    )
    assert speed_figures(runs, PATHS, "unused") == [
        "gateway/nginx req/s at c=16: 0.50 (target >= 0.8)",
        "gateway/direct req/s at c=16: 0.88",
        "p50 added over direct at c=1: gateway 0.750 ms (target <= 0.25 ms), nginx 0.250 ms",
        "gateway errors at c=256: 7 of 2500 (target 0)",
        "gateway CPU per proxied GET: 500 us (target <= 150 us); nginx 80 us",
    ]


def test_errors_say_how_many_were_only_slower_than_the_timeout():
    runs = runs_of(
        rps={"direct": 1700.0, "gateway": 1500.0},
        p50={"direct": 0.5, "gateway": 1.25},
        errors={"direct": 61, "gateway": 3},
        cpu={"direct": 0.0, "gateway": 500.0},
        timeouts={"direct": 61, "gateway": 1},
    )
    figures = speed_figures(runs, ["direct", "gateway"], "no nginx")
    assert figures[3] == "gateway errors at c=256: 3 of 2500, 1 over 2 s (target 0)"
    assert "runs direct  c=256 500/s (61 errors, 61 over 2 s)" in run_lines(runs)


def test_speed_figures_without_nginx_say_why():
    runs = runs_of(
        rps={"direct": 1700.0, "gateway": 1500.0},
        p50={"direct": 0.5, "gateway": 1.25},
        errors={"direct": 0, "gateway": 0},
        cpu={"direct": 0.0, "gateway": 500.0},
    )
    figures = speed_figures(runs, ["direct", "gateway"], "skipped: no nginx")
    assert (
        figures[0] == "gateway/nginx req/s at c=16: skipped: no nginx (target >= 0.8)"
    )
    assert "nginx" not in figures[2] + figures[4]
    assert "gateway" in speed_table(runs, ["direct", "gateway"], "wrk")


@pytest.fixture
def nofile(monkeypatch):
    """Set the (soft, hard) open-file limits the bench sees."""

    def set_limits(soft, hard):
        monkeypatch.setattr(resource, "getrlimit", lambda which: (soft, hard))

    return set_limits


def test_the_default_thousand_slow_clients_fit_under_the_gateway_defaults(nofile):
    nofile(1024, 1 << 20)  # the gateway raises its own soft limit to what it needs
    assert slow_clients_held(1000, probe_rate=20, max_connections=4096) == 1000


def test_slow_clients_leave_room_for_the_probes_under_the_connection_cap(nofile):
    nofile(1024, 1 << 20)
    # 20 probes a second, each up to 5 s: 100 in flight at most.
    assert slow_clients_held(1000, probe_rate=20, max_connections=600) == 500


def test_slow_clients_fit_the_gateway_open_file_limit(nofile):
    nofile(1024, 1024)  # two descriptors per connection, some spare, then the probes
    assert slow_clients_held(1000, probe_rate=20, max_connections=4096) == 284
