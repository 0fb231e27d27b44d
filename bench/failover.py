"""Failover under load, once per balancing strategy, with a picture.

One local stack (devconsul, two user-service instances, one order-service) is started with
switchyard's own Stack. For each strategy a dedicated gateway is added, then steady GET load
runs through it while one user-service instance is SIGKILLed and later restarted. Reported
per phase (before / after kill / after restart): requests, errors, p50 and p99 latency; the
chart shows throughput and errors over time with the kill and the restart marked.

    python -m bench.failover [--seconds 4] [--strategy NAME ...]
"""

import argparse
import statistics
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Self

import requests

from discovery.strategies import STRATEGIES
from switchyard.agent import choose_agent
from switchyard.plan import StackOptions, free_port
from switchyard.render import table
from switchyard.stack import Stack

RESULTS = Path(__file__).resolve().parent / "results"
CLIENTS = 4
BUCKET = 0.5  # seconds per point on the chart
PHASES = ("before", "after kill", "after restart")


@dataclass(frozen=True)
class Sample:
    at: float  # seconds since the run started
    latency: float
    ok: bool


@dataclass
class Run:
    strategy: str
    samples: list[Sample]
    kill_at: float
    restart_at: float
    back_at: float  # the restarted instance passes its check again

    def bounds(self, name: str) -> tuple[float, float]:
        end = max((s.at for s in self.samples), default=self.restart_at)
        return {
            "before": (0.0, self.kill_at),
            "after kill": (self.kill_at, self.restart_at),
            "after restart": (self.restart_at, end),
        }[name]

    def phase(self, name: str) -> list[Sample]:
        low, high = self.bounds(name)
        last = name == PHASES[-1]
        return [s for s in self.samples if low <= s.at and (s.at < high or last)]


class SteadyLoad:
    """Closed-loop GETs from a few client threads, each answer timed."""

    def __init__(self, url: str):
        self.url = url
        self.samples: list[Sample] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._client, daemon=True) for _ in range(CLIENTS)
        ]
        self.t0 = time.monotonic()

    def now(self) -> float:
        return time.monotonic() - self.t0

    def _client(self) -> None:
        with requests.Session() as session:
            while not self._stop.is_set():
                started = time.monotonic()
                try:
                    ok = session.get(self.url, timeout=5).status_code == 200
                except requests.RequestException:
                    ok = False
                sample = Sample(started - self.t0, time.monotonic() - started, ok)
                with self._lock:
                    self.samples.append(sample)

    def __enter__(self) -> Self:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=10)


def one_run(stack: Stack, strategy: str, user_id: int, seconds: float) -> Run:
    gateway = stack.add_gateway(strategy)
    victim = stack.instances("user-service")[0]
    try:
        with SteadyLoad(f"{gateway.url}/api/users/{user_id}") as load:
            time.sleep(seconds)
            kill_at = load.now()
            stack.kill(victim.name)
            time.sleep(seconds)
            restart_at = load.now()
            stack.launch(victim)
            stack.wait_passing([victim])
            back_at = load.now()
            time.sleep(seconds)
        return Run(
            strategy,
            sorted(load.samples, key=lambda s: s.at),
            kill_at,
            restart_at,
            back_at,
        )
    finally:
        stack.retire(gateway.name)


def percentile(values: list[float], q: float) -> float:
    if len(values) < 2:
        return values[0] if values else float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def summary_rows(run: Run) -> list[list[object]]:
    rows = []
    for name in PHASES:
        samples = run.phase(name)
        latencies = [s.latency * 1000 for s in samples]
        low, high = run.bounds(name)
        rows.append(
            [
                run.strategy,
                name,
                len(samples),
                f"{len(samples) / max(high - low, 1e-9):.0f}",
                sum(not s.ok for s in samples),
                f"{percentile(latencies, 50):.1f}",
                f"{percentile(latencies, 99):.1f}",
            ]
        )
    return rows


def chart(run: Run, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    end = max((s.at for s in run.samples), default=0.0)
    buckets = max(1, int(end / BUCKET))  # the last, partial bucket would fake a drop
    ok, errors = [0] * buckets, [0] * buckets
    for s in run.samples:
        if int(s.at / BUCKET) < buckets:
            (ok if s.ok else errors)[int(s.at / BUCKET)] += 1
    xs = [i * BUCKET for i in range(buckets)]
    fig, axis = pyplot.subplots(figsize=(9, 4), dpi=100)
    axis.plot(
        xs, [n / BUCKET for n in ok], label="successful requests/s", color="tab:blue"
    )
    axis.bar(
        xs,
        [n / BUCKET for n in errors],
        width=BUCKET,
        align="edge",
        color="tab:red",
        label="errors/s",
    )
    for at, label, color in (
        (run.kill_at, "SIGKILL", "tab:red"),
        (run.restart_at, "restart", "tab:green"),
        (run.back_at, "passing again", "tab:olive"),
    ):
        axis.axvline(at, color=color, linestyle="--", linewidth=1)
        axis.annotate(
            label,
            (at, 1),
            xycoords=("data", "axes fraction"),
            rotation=90,
            va="top",
            ha="right",
            fontsize=8,
            color=color,
        )
    axis.set_xlabel("seconds")
    axis.set_ylabel("requests per second")
    axis.set_ylim(bottom=0)
    axis.set_title(
        f"Failover through the gateway: {run.strategy} (one of two user-service instances)"
    )
    axis.legend(loc="lower left")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    pyplot.close(fig)


def start_stack(data_dir: Path) -> Stack:
    options = StackOptions(
        users=2, orders=1, gateway_port=free_port(), data_dir=data_dir
    )
    stack = Stack(options, choose_agent(None, free_port(), prefer="devconsul"))
    stack.start()
    return stack


def create_user(gateway_url: str) -> int:
    resp = requests.post(
        f"{gateway_url}/api/users",
        json={"name": "Bench", "email": f"bench-{time.time_ns()}@example.com"},
        timeout=10,
    )
    if resp.status_code != 201:
        raise RuntimeError(
            f"creating the bench user: {resp.status_code} {resp.text[:300]}"
        )
    return resp.json()["id"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.failover", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--seconds", type=float, default=4.0, help="length of each phase (4)"
    )
    parser.add_argument(
        "--strategy",
        action="append",
        choices=sorted(STRATEGIES),
        help="repeatable; default: every strategy",
    )
    args = parser.parse_args(argv)
    strategies = args.strategy or list(STRATEGIES)
    print(
        f"failover: {len(strategies)} strategies, {args.seconds:.0f}s per phase, {CLIENTS} clients"
    )
    with tempfile.TemporaryDirectory(prefix="switchyard-bench-") as data_dir:
        stack = start_stack(Path(data_dir))
        try:
            user_id = create_user(stack.gateway_url)
            rows = []
            for strategy in strategies:
                run = one_run(stack, strategy, user_id, args.seconds)
                path = RESULTS / f"failover-{strategy}.png"
                chart(run, path)
                rows += summary_rows(run)
                print(f"failover: {strategy} done, chart in {path}")
        finally:
            stack.stop()
    print(
        table(
            ["STRATEGY", "PHASE", "REQUESTS", "REQ/S", "ERRORS", "P50 MS", "P99 MS"],
            rows,
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
