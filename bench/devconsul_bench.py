"""devconsul on this machine: registrations/s, health/service?passing queries/s
with 100 instances, and wake-up latency of a blocked watcher after a change.

Run: ``python -m bench.devconsul_bench`` (not a test; prints figures only).
"""

import socket
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import requests

INSTANCES = 100
REGISTRATIONS = 500
QUERIES = 2000
QUERY_THREADS = 4
WAKEUPS = 200
TARGET_P99_MS = 50.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_agent(port: int) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-m", "devconsul", "agent", "-dev", "-http-port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            requests.get(f"http://127.0.0.1:{port}/v1/status/leader", timeout=1)
            return proc
        except requests.ConnectionError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("devconsul did not start")


def _rate(count: int, elapsed: float) -> str:
    return f"{count / elapsed:,.0f}/s ({count} in {elapsed:.2f}s)"


def bench_registrations(url: str) -> None:
    session = requests.Session()
    start = time.perf_counter()
    for i in range(REGISTRATIONS):
        body = {
            "ID": f"reg-{i}",
            "Name": "reg",
            "Port": 1000 + i,
            "Check": {"TTL": "60s", "Status": "passing"},
        }
        session.put(f"{url}/v1/agent/service/register", json=body).raise_for_status()
    print(f"registrations: {_rate(REGISTRATIONS, time.perf_counter() - start)}")
    for i in range(REGISTRATIONS):
        session.put(f"{url}/v1/agent/service/deregister/reg-{i}").raise_for_status()


def bench_queries(url: str) -> None:
    session = requests.Session()
    for i in range(INSTANCES):
        body = {
            "ID": f"web-{i}",
            "Name": "web",
            "Address": "127.0.0.1",
            "Port": 2000 + i,
            "Check": {"TTL": "60s", "Status": "passing"},
        }
        session.put(f"{url}/v1/agent/service/register", json=body).raise_for_status()
    query = f"{url}/v1/health/service/web?passing"
    assert len(session.get(query).json()) == INSTANCES
    start = time.perf_counter()
    for _ in range(QUERIES // 4):
        session.get(query).raise_for_status()
    elapsed = time.perf_counter() - start
    print(
        f"health/service?passing, {INSTANCES} instances, 1 client: "
        f"{_rate(QUERIES // 4, elapsed)}"
    )

    local = threading.local()

    def one(_):
        if not hasattr(local, "session"):
            local.session = requests.Session()
        local.session.get(query).raise_for_status()

    with ThreadPoolExecutor(QUERY_THREADS) as pool:
        start = time.perf_counter()
        list(pool.map(one, range(QUERIES)))
        elapsed = time.perf_counter() - start
    print(
        f"health/service?passing, {INSTANCES} instances, {QUERY_THREADS} clients: "
        f"{_rate(QUERIES, elapsed)}"
    )


def bench_wakeups(url: str) -> list[float]:
    """Latency from a check change (PUT sent) to a blocked watcher's answer."""
    session, watcher = requests.Session(), requests.Session()
    body = {"ID": "wake", "Name": "wake", "Check": {"TTL": "600s", "Status": "passing"}}
    session.put(f"{url}/v1/agent/service/register", json=body).raise_for_status()
    watch_url = f"{url}/v1/health/service/wake"
    latencies = []
    for i in range(WAKEUPS):
        index = watcher.get(watch_url).headers["X-Consul-Index"]
        answered = {}

        def watch(index=index, answered=answered):
            watcher.get(watch_url, params={"index": index, "wait": "10s"})
            answered["at"] = time.perf_counter()

        thread = threading.Thread(target=watch)
        thread.start()
        time.sleep(0.01)  # let the watcher park on the server
        verb = "fail" if i % 2 == 0 else "pass"
        changed_at = time.perf_counter()
        session.put(f"{url}/v1/agent/check/{verb}/service:wake").raise_for_status()
        thread.join(15)
        latencies.append((answered["at"] - changed_at) * 1000)
    return latencies


def main() -> int:
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    proc = _start_agent(port)
    try:
        print(f"devconsul bench against {url}")
        bench_registrations(url)
        bench_queries(url)
        latencies = sorted(bench_wakeups(url))
    finally:
        proc.terminate()
        proc.wait(10)
    p50 = statistics.median(latencies)
    p99 = latencies[int(len(latencies) * 0.99) - 1]
    # A figure, not a test: a loaded machine shows up in the verdict, not the
    # exit status.
    verdict = "ok" if p99 < TARGET_P99_MS else "ABOVE TARGET"
    print(
        f"watcher wake-up latency over {len(latencies)} changes: p50 {p50:.1f} ms, "
        f"p99 {p99:.1f} ms (target p99 < {TARGET_P99_MS:.0f} ms: {verdict})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
