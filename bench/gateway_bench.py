"""Gateway overhead: the same upstream instance through the gateway and directly, in one run.

Starts devconsul, one upstream instance (a minimal WSGI app under gunicorn, registered with
Meta gateway_prefix=/bench) and the gateway (`python -m gateway`, default settings), then
loads both paths with `wrk` (a Python load generator when wrk is not installed):
- concurrency 1: p50 latency; the figure is the p50 the gateway adds (target < 0.5 ms);
- concurrency 16: requests/s; the figure is gateway/direct (target >= 70%).

    python -m bench.gateway_bench [--seconds 5] [--gateway-workers 1]
"""

import argparse
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[1]
PAYLOAD = json.dumps({"id": 1, "name": "bench", "items": list(range(20))}).encode()
TARGET_ADDED_P50_MS = 0.5
TARGET_RATIO = 0.70


def upstream_app(environ, start_response):
    """The upstream: a fixed small JSON body, like a cheap GET on a real service."""
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


def start_stack(gateway_workers: int) -> tuple[list[Process], str, str]:
    consul_port, up_port, gw_port = free_port(), free_port(), free_port()
    py = sys.executable
    consul = Process(
        [py, "-m", "devconsul", "agent", "-dev", "-client", "127.0.0.1",
         "-http-port", str(consul_port), "-node", "bench"],
        {}, "devconsul",
    )  # fmt: skip
    consul_url = f"http://127.0.0.1:{consul_port}"
    wait_for(lambda: requests.get(f"{consul_url}/v1/status/leader").ok, 20, "devconsul")
    upstream = Process(
        [py, "-m", "gunicorn", "-k", "gthread", "-w", "1", "--threads", "16",
         "-b", f"127.0.0.1:{up_port}", "bench.gateway_bench:upstream_app"],
        {}, "upstream",
    )  # fmt: skip
    direct = f"http://127.0.0.1:{up_port}"
    wait_for(lambda: requests.get(direct).ok, 20, "upstream")
    registration = {
        "Name": "bench",
        "ID": f"bench-127.0.0.1-{up_port}",
        "Address": "127.0.0.1",
        "Port": up_port,
        "Meta": {"gateway_prefix": "/bench"},
        "Check": {"HTTP": f"{direct}/health", "Interval": "1s"},
    }
    requests.put(
        f"{consul_url}/v1/agent/service/register", json=registration
    ).raise_for_status()
    gateway = Process(
        [py, "-m", "gateway"],
        {
            "CONSUL_HTTP_ADDR": f"127.0.0.1:{consul_port}",
            "PORT": str(gw_port),
            "SERVICE_ADDRESS": "127.0.0.1",
            "BIND_HOST": "127.0.0.1",
            "WEB_CONCURRENCY": str(gateway_workers),
            "DRAIN_SECONDS": "0",
        },
        "gateway",
    )
    through = f"http://127.0.0.1:{gw_port}/api/bench/item"
    wait_for(
        lambda: requests.get(through).status_code == 200,
        30,
        "route through the gateway",
    )
    return [gateway, upstream, consul], f"{direct}/bench/item", through


# -- load generation -------------------------------------------------------------------------


def wrk(url: str, connections: int, seconds: float) -> tuple[float, float]:
    """(requests/s, p50 ms) measured by wrk."""
    out = subprocess.run(
        ["wrk", "-t", str(min(connections, 2)), "-c", str(connections),
         "-d", f"{max(1, round(seconds))}s", "--latency", url],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    value, unit = re.search(r"50%\s+([\d.]+)(us|ms|s)", out).groups()
    p50 = float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)|Socket errors: .*", out)
    if errors:
        raise RuntimeError(f"wrk saw errors against {url}:\n{out}")
    return rps, p50


def python_load(url: str, connections: int, seconds: float) -> tuple[float, float]:
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
    return len(latencies) / seconds, statistics.median(latencies) * 1000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.gateway_bench")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--gateway-workers", type=int, default=1)
    args = parser.parse_args(argv)
    load = wrk if shutil.which("wrk") else python_load
    tool = "wrk" if load is wrk else "a Python load generator (wrk not installed)"
    processes, direct, through = start_stack(args.gateway_workers)
    try:
        for url in (direct, through):  # warm up pools and caches
            load(url, 16, 1.0)
        _, direct_p50 = load(direct, 1, args.seconds)
        _, gateway_p50 = load(through, 1, args.seconds)
        direct_rps, _ = load(direct, 16, args.seconds)
        gateway, upstream = processes[0].proc.pid, processes[1].proc.pid
        before = cpu_seconds(gateway), cpu_seconds(upstream)
        gateway_rps, _ = load(through, 16, args.seconds)
        served = gateway_rps * args.seconds
        gateway_cpu = (cpu_seconds(gateway) - before[0]) / served * 1e6
        upstream_cpu = (cpu_seconds(upstream) - before[1]) / served * 1e6
    finally:
        for process in processes:
            process.stop()
    added = gateway_p50 - direct_p50
    ratio = gateway_rps / direct_rps
    print(
        f"gateway bench: load by {tool}, {args.seconds:g}s per run, one upstream instance"
    )
    print(f"  upstream: gunicorn gthread 1 worker x 16 threads; gateway: "
          f"{args.gateway_workers} workers, default settings")  # fmt: skip
    print(f"  c=1  p50 direct {direct_p50:.3f} ms, via gateway {gateway_p50:.3f} ms, "
          f"added {added:.3f} ms (target < {TARGET_ADDED_P50_MS} ms) "
          f"[{'met' if added < TARGET_ADDED_P50_MS else 'MISSED'}]")  # fmt: skip
    print(f"  c=16 direct {direct_rps:.0f} req/s, via gateway {gateway_rps:.0f} req/s, "
          f"ratio {ratio:.0%} (target >= {TARGET_RATIO:.0%}) "
          f"[{'met' if ratio >= TARGET_RATIO else 'MISSED'}]")  # fmt: skip
    print(f"  c=16 CPU per request through the gateway: gateway {gateway_cpu:.0f} us, "
          f"upstream {upstream_cpu:.0f} us ({os.cpu_count()} CPUs shared with wrk)")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
