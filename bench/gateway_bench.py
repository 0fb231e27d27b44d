"""The gateway beside nginx, in one run: speed, CPU, and slow clients.

Starts devconsul, two instances of a plain Flask JSON app (bench.upstream, gunicorn gthread
1 worker x 4 threads, registered by hand with Meta gateway_prefix=/bench), the gateway with
its defaults (`python -m gateway`: one gunicorn worker of its own asyncio class, one event
loop, pooled keep-alive upstream connections; GATEWAY_* from the environment), and nginx in
front of the same two instances when `nginx` is on PATH (bench.nginx).

Speed: every URL is warmed up, then each round runs c=1 and c=16 on the three paths -- one
instance directly, the gateway, nginx -- the order rotating from round to round; medians of
`--repeats` rounds. Then one run at c=256 per path counts errors. The load is `wrk` when
installed (a Python generator otherwise, without the c=256 run), not pinned to CPUs. CPU per
request is each process group's utime+stime (/proc) over a c=16 run, divided by requests.

Slow clients (bench.slow_clients): 1,000 connections held open to the gateway, some
trickling a request head, the rest idle on keep-alive, while probes are sent through it. They
are held under the gateway's connection cap (GATEWAY_MAX_CONNECTIONS, 4096 by default) and
open-file limit with room for the probes, so what is measured is serving, not refusing.

Tracing (issue 14): a second gateway beside the first, tracing every request (sampling 1.0)
to switchyard's OTLP receiver, run in this bench process as `switchyard up` runs it; the
untraced gateway (OTEL_SDK_DISABLED) and the traced one alternate at c=16, round by round.
The spans that arrived and those the gateway dropped are printed with the ratio: a gateway
that dropped its spans would look cheaper than one that sent them. The collector's CPU
(this process, over the traced runs) is printed beside the gateway's: it shares the machine.

Figures are printed beside their targets (issues 11, 14), never judged: the machine is shared.

    python -m bench.gateway_bench [--seconds 5] [--repeats 3]
                                  [--scenario speed --scenario slow-clients
                                   --scenario tracing]
                                  [--clients 1000] [--tricklers 250]
                                  [--probe-rate 20] [--probe-seconds 10]
"""

import argparse
import contextlib
import math
import os
import re
import resource
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

from bench import nginx, slow_clients
from bench.load import REQUEST_TIMEOUT, children_cpu_seconds, generator, wrk
from bench.processes import Process, cpu_seconds, sigterm_as_interrupt
from gateway.settings import GatewaySettings
from switchyard.otlp import OTLPReceiver
from switchyard.plan import free_port
from switchyard.render import table
from switchyard.spanstore import SpanStore

PATHS = ("direct", "gateway", "nginx")
HIGH = 16  # the concurrency of the throughput target
MANY = 256  # the concurrency of the no-errors target
WARM_UP_SECONDS = 2.0
INSTANCES = 2
UPSTREAM_THREADS = 4
ITEM = "/bench/item"
TARGET_NGINX_RATIO = 0.8  # gateway/nginx req/s at c=16, at least
TARGET_ADDED_P50_MS = 0.25  # over direct at c=1, at most
TARGET_CPU_US = 150  # gateway CPU per proxied GET, at most
TARGET_TRACING_RATIO = 0.85  # traced/untraced gateway req/s at c=16, at least
SCENARIOS = ("speed", "slow-clients", "tracing")
ROUTING_CHECKS = 4 * INSTANCES  # GETs that see the gateway balance over every instance


# -- the stack -----------------------------------------------------------------------------


@dataclass
class Stack:
    consul: Process
    consul_addr: str
    gateway: Process
    gateway_port: int
    upstreams: list[Process] = field(default_factory=list)
    nginx: Process | None = None
    nginx_port: int | None = None
    urls: dict[str, str] = field(default_factory=dict)  # path -> URL of the same GET

    def stop(self) -> None:
        for process in [self.nginx, self.gateway, *self.upstreams, self.consul]:
            if process:
                process.stop()

    def cpu_pids(self) -> dict[str, list[int]]:
        """Whose CPU is measured: each proxy, and the upstream instances together."""
        pids = {
            "gateway": [self.gateway.pid],
            "upstreams": [u.pid for u in self.upstreams],
        }
        if self.nginx:
            pids["nginx"] = [self.nginx.pid]
        return pids


def start_upstream(consul_url: str) -> tuple[Process, int]:
    port = free_port()
    process = Process(
        [sys.executable, "-m", "gunicorn", "-k", "gthread", "-w", "1",
         "--threads", str(UPSTREAM_THREADS), "-b", f"127.0.0.1:{port}",
         "bench.upstream:app"],
        {"BENCH_INSTANCE": f"bench-127.0.0.1-{port}"}, f"upstream-{port}",
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    process.wait_until(lambda: requests.get(f"{base}/health").ok, 20, "an upstream")
    registration = {
        "Name": "bench",
        "ID": f"bench-127.0.0.1-{port}",
        "Address": "127.0.0.1",
        "Port": port,
        "Meta": {"gateway_prefix": "/bench"},
        "Check": {"HTTP": f"{base}/health", "Interval": "1s"},
    }
    requests.put(
        f"{consul_url}/v1/agent/service/register", json=registration
    ).raise_for_status()
    return process, port


def start_gateway(consul_addr: str, env: dict[str, str]) -> tuple[Process, int]:
    """`python -m gateway` with its defaults and `env`, on a free port."""
    port = free_port()
    gateway_env = {
        "CONSUL_HTTP_ADDR": consul_addr,
        "PORT": str(port),
        "SERVICE_ADDRESS": "127.0.0.1",
        "BIND_HOST": "127.0.0.1",
        "DRAIN_SECONDS": "0",
        **env,
    }
    name = "gateway-traced" if "OTEL_EXPORTER_OTLP_ENDPOINT" in env else "gateway"
    return Process([sys.executable, "-m", "gateway"], gateway_env, name), port


def start_stack(nginx_prefix: Path | None) -> Stack:
    consul_port = free_port()
    consul_addr = f"127.0.0.1:{consul_port}"
    consul = Process(
        [sys.executable, "-m", "devconsul", "agent", "-dev", "-client", "127.0.0.1",
         "-http-port", str(consul_port), "-node", "bench"],
        {}, "devconsul",
    )  # fmt: skip
    consul_url = f"http://{consul_addr}"
    stack = None
    try:
        consul.wait_until(
            lambda: requests.get(f"{consul_url}/v1/status/leader").ok, 20, "devconsul"
        )
        gateway, gw_port = start_gateway(consul_addr, {"OTEL_SDK_DISABLED": "true"})
        stack = Stack(consul, consul_addr, gateway, gw_port)
        ports = []
        for _ in range(INSTANCES):
            process, port = start_upstream(consul_url)
            stack.upstreams.append(process)
            ports.append(port)
        stack.urls["direct"] = f"http://127.0.0.1:{ports[0]}{ITEM}"
        stack.urls["gateway"] = f"http://127.0.0.1:{gw_port}/api{ITEM}"
        gateway.wait_until(
            lambda: routed_to_all(stack.urls["gateway"], INSTANCES),
            30,
            "both upstream instances through the gateway",
        )
        if nginx_prefix:
            stack.nginx_port = free_port()
            stack.urls["nginx"] = f"http://127.0.0.1:{stack.nginx_port}/api{ITEM}"
            stack.nginx = nginx.start(
                nginx_prefix, stack.nginx_port, ports, stack.urls["nginx"]
            )
    except BaseException:
        (stack or consul).stop()
        raise
    return stack


def routed_to_all(url: str, instances: int) -> bool:
    """The gateway balances over every instance, so it and nginx spread load alike."""
    served_by = {
        requests.get(url).headers.get("X-Served-By")
        for _ in range(ROUTING_CHECKS // INSTANCES * instances)
    }
    return len(served_by - {None}) >= instances


# -- speed ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    rps: float
    p50_ms: float
    errors: int
    requests: int
    cpu_us: dict  # process group name -> CPU microseconds per request
    timeouts: int = 0  # of the errors: answered late or never (bench.load.Load)


def measure(load, url: str, connections: int, seconds: float, pids: dict) -> Run:
    """One load run; CPU per request of each group in `pids` (name -> [pid]) and of wrk."""

    def cpu(name):
        return sum(cpu_seconds(pid) for pid in pids[name])

    before = {name: cpu(name) for name in pids}
    loader_before = children_cpu_seconds()
    result = load(url, connections, seconds)
    done = max(result.requests, 1)
    spent = {name: (cpu(name) - before[name]) / done * 1e6 for name in pids}
    if load is wrk:
        spent["wrk"] = (children_cpu_seconds() - loader_before) / done * 1e6
    return Run(
        result.requests / seconds,
        result.p50_ms,
        result.errors,
        result.requests,
        spent,
        result.timeouts,
    )


def rotated(round_: int, paths: list[str]) -> list[str]:
    """The order of one round: each path goes first, second, ... in turn."""
    shift = round_ % len(paths)
    return paths[shift:] + paths[:shift]


def bench_speed(load, stack: Stack, args) -> dict:
    paths = [p for p in PATHS if p in stack.urls]
    pids = stack.cpu_pids()
    for path in paths:
        load(stack.urls[path], HIGH, WARM_UP_SECONDS)  # pools, caches, lazy watchers
    runs = {(path, c): [] for path in paths for c in (1, HIGH, MANY)}
    for round_ in range(args.repeats):
        progress(f"round {round_ + 1} of {args.repeats}")
        for c in (1, HIGH):
            for path in rotated(round_, paths):
                runs[path, c].append(
                    measure(load, stack.urls[path], c, args.seconds, pids)
                )
    if load is wrk:  # 256 Python threads would measure the generator, not the proxy
        progress(f"c={MANY}, once per path")
        for path in paths:
            runs[path, MANY].append(
                measure(load, stack.urls[path], MANY, args.seconds, pids)
            )
    return runs


def progress(step: str) -> None:
    """A step of a long run, with the load the machine is under as it starts."""
    print(f"  {step}: load average {os.getloadavg()[0]:.2f}", flush=True)


def median(runs, attribute: str, default=math.nan) -> float:
    values = [getattr(r, attribute) for r in runs]
    return statistics.median(values) if values else default


def figure(value: float, fmt: str, unit: str = "") -> str:
    return "n/a" if math.isnan(value) else f"{value:{fmt}}{unit}"


def cpu_us(runs: dict, path: str, group: str) -> float:
    """The median CPU per GET of `group` (a proxy, the upstreams, wrk) at c=16 on `path`."""
    return statistics.median(r.cpu_us.get(group, 0.0) for r in runs[path, HIGH])


def errors(runs: dict, path: str) -> str:
    many = runs[path, MANY]
    if not many:
        return "skipped (needs wrk)"
    shown = f"{sum(r.errors for r in many)} of {sum(r.requests for r in many)}"
    return shown + late(sum(r.timeouts for r in many))


def late(timeouts: int) -> str:
    """Which errors were timeouts: a request slower than the load's timeout, not a failure."""
    return f", {timeouts} over {REQUEST_TIMEOUT:g} s" if timeouts else ""


def speed_table(runs: dict, paths: list[str], tool: str) -> str:
    rows = [
        [path, figure(median(runs[path, HIGH], "rps"), ",.0f"),
         figure(median(runs[path, 1], "p50_ms"), ".3f", " ms"), errors(runs, path),
         "-" if path == "direct" else f"{cpu_us(runs, path, path):.0f}",
         f"{cpu_us(runs, path, 'upstreams'):.0f}",
         f"{cpu_us(runs, path, 'wrk'):.0f}" if tool == "wrk" else "-"]
        for path in paths
    ]  # fmt: skip
    return table(
        ["path", f"c={HIGH} req/s", "c=1 p50", f"c={MANY} errors",
         "CPU us/GET: proxy", "upstreams", "wrk"], rows,
    )  # fmt: skip


def speed_figures(runs: dict, paths: list[str], nginx_note: str) -> list[str]:
    """The issue's figures, each beside its target."""
    rps = {p: median(runs[p, HIGH], "rps") for p in paths}
    added = {p: median(runs[p, 1], "p50_ms") - median(runs["direct", 1], "p50_ms")
             for p in paths}  # fmt: skip
    with_nginx = "nginx" in paths
    ratio = f"{rps['gateway'] / rps['nginx']:.2f}" if with_nginx else nginx_note
    return [
        f"gateway/nginx req/s at c={HIGH}: {ratio} (target >= {TARGET_NGINX_RATIO})",
        f"gateway/direct req/s at c={HIGH}: {rps['gateway'] / rps['direct']:.2f}",
        f"p50 added over direct at c=1: gateway {added['gateway']:.3f} ms "
        f"(target <= {TARGET_ADDED_P50_MS} ms)"
        + (f", nginx {added['nginx']:.3f} ms" if with_nginx else ""),
        f"gateway errors at c={MANY}: {errors(runs, 'gateway')} (target 0)",
        f"gateway CPU per proxied GET: {cpu_us(runs, 'gateway', 'gateway'):.0f} us "
        f"(target <= {TARGET_CPU_US} us)"
        + (f"; nginx {cpu_us(runs, 'nginx', 'nginx'):.0f} us" if with_nginx else ""),
    ]


def run_lines(runs: dict) -> list[str]:
    """Every run's figure, to see the spread behind each median."""
    lines = []
    for (path, c), measured in runs.items():
        shown = ", ".join(
            (f"{r.p50_ms:.3f} ms" if c == 1 else f"{r.rps:,.0f}/s")
            + (
                f" ({r.errors} errors{late(r.timeouts)})"
                if r.errors or c == MANY
                else ""
            )
            for r in measured
        )
        if measured:
            lines.append(f"runs {path:7} c={c:<3} {shown}")
    return lines


def report_speed(runs: dict, tool: str, nginx_note: str) -> None:
    paths = [p for p in PATHS if (p, 1) in runs]
    print()
    print(speed_table(runs, paths, tool))
    print("  (direct: one instance; gateway and nginx: both instances. CPU at c=16.)\n")
    for line in speed_figures(runs, paths, nginx_note) + run_lines(runs):
        print(f"  {line}")


# -- tracing -------------------------------------------------------------------------------


@contextlib.contextmanager
def traced_gateway(stack: Stack):
    """A second gateway on the stack's Consul and upstreams, tracing every request to
    switchyard's receiver in this process; yields (gateway, its URL, the span store)."""
    with tempfile.TemporaryDirectory(prefix="gateway-bench-spans-") as directory:
        store = SpanStore(Path(directory), max_spans=None)  # it counts them all
        receiver = OTLPReceiver(store).start()
        env = {
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url,
            "OTEL_TRACES_SAMPLER": "always_on",
            "OTEL_SDK_DISABLED": "false",
        }
        gateway, port = start_gateway(stack.consul_addr, env)
        try:
            url = f"http://127.0.0.1:{port}/api{ITEM}"
            gateway.wait_until(
                lambda: routed_to_all(url, INSTANCES), 30, "the traced gateway"
            )
            yield gateway, url, store
        finally:
            gateway.stop()
            receiver.stop()


def dropped_spans(gateway_url: str) -> int:
    metrics = requests.get(gateway_url.split("/api/")[0] + "/metrics").text
    found = re.search(
        r"^gateway_tracing_dropped_spans_total (\S+)$", metrics, re.MULTILINE
    )
    return int(float(found.group(1))) if found else 0


def bench_tracing(load, stack: Stack, args) -> None:
    with traced_gateway(stack) as (traced, traced_url, store):
        urls = {"off": stack.urls["gateway"], "on": traced_url}
        # The collector is this process: its receiver's threads decode and store the spans.
        pids = {
            "off": [stack.gateway.pid],
            "on": [traced.pid],
            "collector": [os.getpid()],
        }
        # Every GET the traced gateway answered makes two spans: its server span and one
        # attempt (the upstreams are plain, untraced): the check, the warm-up, the runs.
        traced_requests = ROUTING_CHECKS
        for url in urls.values():
            traced_requests += load(url, HIGH, WARM_UP_SECONDS).requests * (
                url == traced_url
            )
        runs = {(mode, HIGH): [] for mode in urls}
        for round_ in range(args.repeats):
            progress(f"tracing round {round_ + 1} of {args.repeats}")
            for mode in rotated(round_, list(urls)):
                runs[mode, HIGH].append(
                    measure(load, urls[mode], HIGH, args.seconds, pids)
                )
        traced_requests += sum(r.requests for r in runs["on", HIGH])
        progress("waiting for the last spans")
        expected = 2 * traced_requests
        arrived = wait_for_spans(store, expected)
        dropped = dropped_spans(traced_url)
    report_tracing(runs, arrived, expected, dropped)


def wait_for_spans(store: SpanStore, expected: int) -> int:
    """Spans arrived, once `expected` did or they stop coming."""
    arrived, deadline = -1, time.monotonic() + 30
    while time.monotonic() < deadline:
        now = store.count()
        if now >= expected or now == arrived:  # all here, or none in the last while
            return now
        arrived = now
        time.sleep(6)  # longer than the exporter's default 5 s schedule
    return arrived


def report_tracing(runs: dict, arrived: int, expected: int, dropped: int) -> None:
    rps = {mode: median(runs[mode, HIGH], "rps") for mode in ("off", "on")}
    rows = [
        [mode, figure(rps[mode], ",.0f"), f"{cpu_us(runs, mode, mode):.0f}",
         ", ".join(f"{r.rps:,.0f}" for r in runs[mode, HIGH])]
        for mode in ("off", "on")
    ]  # fmt: skip
    print()
    print(table(["tracing", f"c={HIGH} req/s", "CPU us/GET", "runs"], rows))
    print(
        f"  (off: OTEL_SDK_DISABLED=true; on: sampling 1.0 to switchyard's receiver in"
        f" this process. Errors: {sum(r.errors for r in runs['on', HIGH])} on,"
        f" {sum(r.errors for r in runs['off', HIGH])} off.)\n"
    )
    print(
        f"  traced/untraced req/s at c={HIGH}: {rps['on'] / rps['off']:.2f} "
        f"(target >= {TARGET_TRACING_RATIO})"
    )
    print(
        f"  untraced gateway CPU per proxied GET: {cpu_us(runs, 'off', 'off'):.0f} us "
        f"(target <= {TARGET_CPU_US} us)"
    )
    collector = cpu_us(runs, "on", "collector")
    print(
        f"  collector (switchyard's receiver, in this bench process) CPU per traced GET:"
        f" {collector:.0f} us, {collector / 2:.0f} us per span"
    )
    print(
        f"  spans received: {arrived:,} of about {expected:,} (2 per GET the traced "
        f"gateway answered); the gateway counted {dropped:,} dropped"
    )


def slow_clients_held(wanted: int, probe_rate: float, max_connections: int) -> int:
    """How many of `wanted` slow clients to hold: with the probes in flight at once, under
    the gateway's connection cap (past it the gateway refuses, probes too) and the open-file
    limit it will have (it raises its own to two per connection, as gateway.worker does)."""
    probes = math.ceil(probe_rate * slow_clients.PROBE_TIMEOUT)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    nofile = slow_clients.nofile_target(2 * max_connections + 256, soft, hard)
    room = max_connections
    if nofile != resource.RLIM_INFINITY:
        room = min(room, (nofile - slow_clients.FD_SPARE) // 2)
    return max(0, min(wanted, room - probes))


# -- main ----------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.gateway_bench")
    parser.add_argument("--seconds", type=int, default=5, help="per load run")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved rounds")
    parser.add_argument(
        "--scenario", action="append", choices=SCENARIOS,
        help="repeatable; default all",
    )  # fmt: skip
    parser.add_argument("--clients", type=int, default=1000, help="slow clients held")
    parser.add_argument("--tricklers", type=int, default=250, help="of the clients")
    parser.add_argument("--probe-rate", type=float, default=20.0, help="per second")
    parser.add_argument("--probe-seconds", type=float, default=10.0)
    args = parser.parse_args(argv)
    sigterm_as_interrupt()
    scenarios = args.scenario or list(SCENARIOS)
    load, tool = generator()
    clients = args.clients
    if "slow-clients" in scenarios:  # before the gateway starts: it inherits the limit
        limit = slow_clients.raise_nofile(args.clients + slow_clients.FD_SPARE)
        cap = GatewaySettings.from_env().max_connections
        clients = slow_clients_held(
            slow_clients.clients_within(limit, args.clients), args.probe_rate, cap
        )
        if clients < args.clients:
            print(
                f"slow clients: {clients} of {args.clients}, to fit the bench's open-file "
                f"limit and the gateway's GATEWAY_MAX_CONNECTIONS={cap} beside the probes"
            )
    nginx_note = "skipped: nginx not on PATH (apt-get install nginx-light)"
    if not nginx.available():
        print(f"gateway bench: nginx {nginx_note}")
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="gateway-bench-") as prefix:
        with_nginx = nginx.available() and {"speed", "slow-clients"} & set(scenarios)
        stack = start_stack(Path(prefix) if with_nginx else None)
        try:
            print(
                f"gateway bench: load by {tool} (not pinned), {os.cpu_count()} CPUs "
                f"shared by all; load average {load_before[0]:.2f} "
                f"{load_before[1]:.2f} {load_before[2]:.2f} before starting; upstream "
                f"{INSTANCES} x Flask under gunicorn gthread 1 worker x "
                f"{UPSTREAM_THREADS} threads; the gateway with its defaults (1 gunicorn "
                f"worker of its asyncio class)"
                + (", nginx 1 worker with a keep-alive pool" if stack.nginx else "")
            )
            if "speed" in scenarios:
                print(
                    f"speed: {args.seconds:g} s per run, medians of {args.repeats} "
                    f"rounds", flush=True,
                )  # fmt: skip
                report_speed(bench_speed(load, stack, args), tool, nginx_note)
            if "slow-clients" in scenarios:
                # nginx first, as the yardstick: it shows what this machine allows.
                ports = {"nginx": stack.nginx_port, "gateway": stack.gateway_port}
                for server, port in ports.items():
                    if port:
                        progress(f"slow clients, {server}")
                        outcome = slow_clients.run(
                            "127.0.0.1", port, f"/api{ITEM}", clients=clients,
                            tricklers=min(args.tricklers, clients),
                            rate=args.probe_rate, seconds=args.probe_seconds,
                        )  # fmt: skip
                        slow_clients.report(outcome, server)
            if "tracing" in scenarios:
                print(
                    f"tracing: {args.seconds:g} s per run, medians of {args.repeats} "
                    f"rounds", flush=True,
                )  # fmt: skip
                bench_tracing(load, stack, args)
        finally:
            stack.stop()
    print(f"\n  load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
