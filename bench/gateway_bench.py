"""Gateway overhead: the same upstream instance through the gateway and directly, in one run.

Starts devconsul, the gateway (`python -m gateway`, default settings) and one instance of
each upstream, every gunicorn alike (gthread, `--workers` x `--threads`, default 1 x 16):
- `trivial`: a minimal WSGI app answering a fixed JSON body (registered by hand with
  Meta gateway_prefix=/bench) -- the worst case for the gateway's share of the work;
- `user-service`: the real service, GET /users/<id> on SQLite, registering itself.

Each upstream is loaded with `wrk` (a Python load generator when wrk is not installed), not
pinned to CPUs, the same way on both paths; every URL is warmed up first, and the four
runs (direct/gateway x c=1/c=16) are repeated `--repeats` times, interleaved, the order of
direct and gateway alternating. Reported: medians, and each run's figures.
- c=1: p50 latency; the figure is the p50 the gateway adds (target < 0.5 ms);
- c=16: requests/s; the figure is gateway/direct (target >= 70%);
- CPU per request of each process (gateway, upstream, load generator) at c=16: where the
  CPUs went, since every process shares them.

    python -m bench.gateway_bench [--seconds 5] [--repeats 5] [--workers 1] [--threads 16]
                                  [--upstream trivial --upstream user-service]
"""

import argparse
import json
import os
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[1]
PAYLOAD = json.dumps({"id": 1, "name": "bench", "items": list(range(20))}).encode()
TARGET_ADDED_P50_MS = 0.5
TARGET_RATIO = 0.70
HIGH = 16  # the concurrency of the throughput target
WARM_UP_SECONDS = 2.0


def upstream_app(environ, start_response):
    """The trivial upstream: a fixed small JSON body, the cheapest possible GET."""
    start_response(
        "200 OK",
        [
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(PAYLOAD))),
            ("X-Served-By", "bench-upstream"),
        ],
    )
    return [PAYLOAD]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Process:
    def __init__(self, argv: list[str], env: dict[str, str], name: str):
        self.log = Path(tempfile.mkstemp(prefix=f"bench-{name}-", suffix=".log")[1])
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                argv,
                env={**os.environ, **env},
                cwd=REPO,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGINT)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)


def cpu_seconds(pid: int) -> float:
    """User+system CPU of a gunicorn master and its workers (Linux /proc; 0 elsewhere)."""
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        total = 0
        for p in [pid, *map(int, children)]:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
    except OSError:
        return 0.0
    return total / os.sysconf("SC_CLK_TCK")


def children_cpu_seconds() -> float:
    """CPU of this process's finished children: the load generator's runs."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"timed out waiting for {what}")


# -- the stack -----------------------------------------------------------------------------


@dataclass
class Upstream:
    name: str
    process: Process
    direct: str  # URL of one GET on the instance
    through: str  # the same GET through the gateway


@dataclass
class Stack:
    consul: Process
    gateway: Process
    upstreams: list[Upstream] = field(default_factory=list)

    def stop(self) -> None:
        for process in [self.gateway, *(u.process for u in self.upstreams)]:
            process.stop()
        self.consul.stop()


def gunicorn_env(consul_addr: str, port: int, workers: int, threads: int) -> dict:
    return {
        "CONSUL_HTTP_ADDR": consul_addr,
        "PORT": str(port),
        "SERVICE_ADDRESS": "127.0.0.1",
        "BIND_HOST": "127.0.0.1",
        "WEB_CONCURRENCY": str(workers),
        "GUNICORN_THREADS": str(threads),
        "DRAIN_SECONDS": "0",
    }


def start_trivial(consul_url: str, gateway: str, workers: int, threads: int):
    port = free_port()
    process = Process(
        [sys.executable, "-m", "gunicorn", "-k", "gthread", "-w", str(workers),
         "--threads", str(threads), "-b", f"127.0.0.1:{port}",
         "bench.gateway_bench:upstream_app"],
        {}, "trivial",
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    wait_for(lambda: requests.get(base).ok, 20, "the trivial upstream")
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
    return Upstream(
        "trivial", process, f"{base}/bench/item", f"{gateway}/api/bench/item"
    )


def start_user_service(
    consul_addr: str, gateway: str, workers: int, threads: int, data_dir: str
):
    port = free_port()
    env = gunicorn_env(consul_addr, port, workers, threads)
    env["DATABASE_URL"] = f"sqlite:///{data_dir}/users.db"
    process = Process(
        [sys.executable, "-m", "gunicorn", "-c", "python:user_service.gunicorn_conf",
         "user_service.wsgi:app"],
        env, "user-service",
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    wait_for(lambda: requests.get(f"{base}/health").ok, 30, "user-service")
    created = requests.post(
        f"{base}/users", json={"name": "Bench User", "email": "bench@example.com"}
    )
    created.raise_for_status()
    path = f"/users/{created.json()['id']}"
    return Upstream("user-service", process, f"{base}{path}", f"{gateway}/api{path}")


def start_stack(names: list[str], workers: int, threads: int, data_dir: str) -> Stack:
    consul_port, gw_port = free_port(), free_port()
    consul_addr = f"127.0.0.1:{consul_port}"
    consul = Process(
        [sys.executable, "-m", "devconsul", "agent", "-dev", "-client", "127.0.0.1",
         "-http-port", str(consul_port), "-node", "bench"],
        {}, "devconsul",
    )  # fmt: skip
    consul_url = f"http://{consul_addr}"
    wait_for(lambda: requests.get(f"{consul_url}/v1/status/leader").ok, 20, "devconsul")
    gateway = Process(
        [sys.executable, "-m", "gateway"],
        gunicorn_env(consul_addr, gw_port, workers, threads),
        "gateway",
    )
    stack = Stack(consul, gateway)
    gw = f"http://127.0.0.1:{gw_port}"
    try:
        for name in names:
            if name == "trivial":
                upstream = start_trivial(consul_url, gw, workers, threads)
            else:
                upstream = start_user_service(
                    consul_addr, gw, workers, threads, data_dir
                )
            stack.upstreams.append(upstream)
            wait_for(
                lambda u=upstream: requests.get(u.through).status_code == 200,
                30,
                f"{name} through the gateway",
            )
    except BaseException:
        stack.stop()
        raise
    return stack


# -- load generation -----------------------------------------------------------------------


def wrk(url: str, connections: int, seconds: float) -> tuple[int, float]:
    """(requests completed, p50 ms) measured by wrk."""
    out = subprocess.run(
        ["wrk", "-t", str(min(connections, 2)), "-c", str(connections),
         "-d", f"{max(1, round(seconds))}s", "--latency", url],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    if re.search(r"Non-2xx or 3xx responses|Socket errors", out):
        raise RuntimeError(f"wrk saw errors against {url}:\n{out}")
    done = int(re.search(r"(\d+) requests in", out).group(1))
    value, unit = re.search(r"50%\s+([\d.]+)(us|ms|s)", out).groups()
    return done, float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def python_load(url: str, connections: int, seconds: float) -> tuple[int, float]:
    """Fallback: keep-alive sessions in threads; far weaker than wrk, so compare ratios only."""
    latencies: list[float] = []
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def client():
        mine = []
        with requests.Session() as s:
            while time.monotonic() < deadline:
                started = time.perf_counter()
                s.get(url).raise_for_status()
                mine.append(time.perf_counter() - started)
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=client) for _ in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return len(latencies), statistics.median(latencies) * 1000


@dataclass(frozen=True)
class Run:
    rps: float
    p50_ms: float
    cpu_us: dict  # process name -> CPU microseconds per request


def measure(load, url: str, connections: int, seconds: float, processes) -> Run:
    """One load run; CPU per request of each of `processes` (name -> pid) and of wrk."""
    before = {name: cpu_seconds(pid) for name, pid in processes.items()}
    loader_before = children_cpu_seconds()
    started = time.monotonic()
    done, p50 = load(url, connections, seconds)
    elapsed = time.monotonic() - started
    cpu = {
        name: (cpu_seconds(pid) - before[name]) / done * 1e6
        for name, pid in processes.items()
    }
    if load is wrk:
        cpu["wrk"] = (children_cpu_seconds() - loader_before) / done * 1e6
    # wrk's own duration is `seconds`; the process start adds a little to `elapsed`.
    return Run(done / (seconds if load is wrk else elapsed), p50, cpu)


def bench_upstream(load, stack: Stack, upstream: Upstream, args) -> dict:
    pids = {"gateway": stack.gateway.pid, "upstream": upstream.process.pid}
    paths = {"direct": upstream.direct, "gateway": upstream.through}
    for url in paths.values():
        load(url, HIGH, WARM_UP_SECONDS)  # pools, caches, lazily started watchers
    runs = {(path, c): [] for path in paths for c in (1, HIGH)}
    for round_ in range(args.repeats):
        order = list(paths) if round_ % 2 == 0 else list(paths)[::-1]
        for c in (1, HIGH):
            for path in order:
                runs[path, c].append(measure(load, paths[path], c, args.seconds, pids))
    return runs


def median(values) -> float:
    return statistics.median(values)


def report(name: str, runs: dict, tool: str) -> None:
    direct_p50 = median(r.p50_ms for r in runs["direct", 1])
    gateway_p50 = median(r.p50_ms for r in runs["gateway", 1])
    direct_rps = median(r.rps for r in runs["direct", HIGH])
    gateway_rps = median(r.rps for r in runs["gateway", HIGH])
    added, ratio = gateway_p50 - direct_p50, gateway_rps / direct_rps

    def cpu(path, process):
        return median(r.cpu_us.get(process, 0.0) for r in runs[path, HIGH])

    print(f"\n[{name}] upstream")
    print(f"  c=1  p50 direct {direct_p50:.3f} ms, via gateway {gateway_p50:.3f} ms, "
          f"added {added:.3f} ms (target < {TARGET_ADDED_P50_MS} ms) "
          f"[{'met' if added < TARGET_ADDED_P50_MS else 'MISSED'}]")  # fmt: skip
    print(f"  c={HIGH} direct {direct_rps:.0f} req/s, via gateway {gateway_rps:.0f} "
          f"req/s, ratio {ratio:.0%} (target >= {TARGET_RATIO:.0%}) "
          f"[{'met' if ratio >= TARGET_RATIO else 'MISSED'}]")  # fmt: skip
    print(f"  c={HIGH} CPU per request (us): direct: upstream "
          f"{cpu('direct', 'upstream'):.0f}, {tool} {cpu('direct', 'wrk'):.0f}; "
          f"via gateway: gateway {cpu('gateway', 'gateway'):.0f}, upstream "
          f"{cpu('gateway', 'upstream'):.0f}, {tool} {cpu('gateway', 'wrk'):.0f}")  # fmt: skip
    for (path, c), measured in runs.items():
        figures = ", ".join(
            f"{r.p50_ms:.3f} ms" if c == 1 else f"{r.rps:.0f}/s" for r in measured
        )
        print(f"    runs {path:7} c={c:<2} {figures}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.gateway_bench")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--workers", type=int, default=1, help="of every gunicorn")
    parser.add_argument("--threads", type=int, default=16, help="per worker")
    parser.add_argument(
        "--upstream",
        action="append",
        choices=("trivial", "user-service"),
        help="repeatable; default both",
    )
    args = parser.parse_args(argv)
    names = args.upstream or ["trivial", "user-service"]
    load = wrk if shutil.which("wrk") else python_load
    tool = "wrk" if load is wrk else "load generator"
    load_before = os.getloadavg()[0]  # other work on the machine skews every figure
    with tempfile.TemporaryDirectory(prefix="gateway-bench-") as data_dir:
        stack = start_stack(names, args.workers, args.threads, data_dir)
        try:
            results = {
                u.name: bench_upstream(load, stack, u, args) for u in stack.upstreams
            }
        finally:
            stack.stop()
    print(
        f"gateway bench: load by {tool if load is wrk else 'a Python load generator'}"
        f" (not pinned), {args.seconds:g}s per run, median of {args.repeats} runs, "
        f"one upstream instance; every gunicorn {args.workers} worker(s) x "
        f"{args.threads} threads (gthread, the gateway its subclass); "
        f"{os.cpu_count()} CPUs shared by all; load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after (includes this bench)"
    )
    for name, runs in results.items():
        report(name, runs, tool)
    return 0


if __name__ == "__main__":
    sys.exit(main())
