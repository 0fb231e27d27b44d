"""HTTP load for a fixed time at a fixed concurrency: `wrk` when installed, else a weaker
Python generator (compare its figures as ratios only)."""

import math
import re
import resource
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass

import requests

# seconds: wrk's default, so both generators count the same timeouts
REQUEST_TIMEOUT = 2.0
UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


@dataclass(frozen=True)
class Load:
    requests: int  # answered, whatever the status
    p50_ms: float  # nan when nothing was answered
    errors: int  # connect/read/write errors, timeouts, and answers other than 2xx/3xx
    # Of the errors, requests not answered within REQUEST_TIMEOUT. wrk counts them and
    # still takes the late answer (slow, not failed); the Python generator gives up.
    timeouts: int = 0


def parse_wrk(out: str) -> Load:
    """The figures of one `wrk --latency` report."""
    done = int(re.search(r"(\d+) requests in", out).group(1))
    p50 = re.search(r"50%\s+([\d.]+)(us|ms|s)\b", out)
    socket_errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out
    )
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = sum(map(int, socket_errors.groups())) if socket_errors else 0
    errors += int(non_2xx.group(1)) if non_2xx else 0
    p50_ms = float(p50.group(1)) * UNITS_MS[p50.group(2)] if done and p50 else math.nan
    timeouts = int(socket_errors.group(4)) if socket_errors else 0
    return Load(done, p50_ms, errors, timeouts)


def wrk(url: str, connections: int, seconds: float) -> Load:
    out = subprocess.run(
        ["wrk", "-t", str(min(connections, 2)), "-c", str(connections),
         "-d", f"{max(1, round(seconds))}s", "--latency", url],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return parse_wrk(out)


def python_load(url: str, connections: int, seconds: float) -> Load:
    """Keep-alive sessions in threads, one per connection."""
    latencies: list[float] = []
    errors = timeouts = 0
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def client():
        nonlocal errors, timeouts
        mine, failed, late = [], 0, 0
        with requests.Session() as s:
            while time.monotonic() < deadline:
                started = time.perf_counter()
                try:
                    ok = s.get(url, timeout=REQUEST_TIMEOUT).status_code < 400
                except requests.Timeout:
                    failed, late = failed + 1, late + 1
                    continue
                except requests.RequestException:
                    failed += 1
                    continue
                mine.append(time.perf_counter() - started)
                failed += not ok
        with lock:
            latencies.extend(mine)
            errors += failed
            timeouts += late

    threads = [threading.Thread(target=client) for _ in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    latencies.sort()
    p50 = latencies[len(latencies) // 2] * 1000 if latencies else math.nan
    return Load(len(latencies), p50, errors, timeouts)


def generator():
    """(load function, its name): wrk when on PATH."""
    return (wrk, "wrk") if shutil.which("wrk") else (python_load, "a Python generator")


def children_cpu_seconds() -> float:
    """CPU of this process's finished children: the wrk runs."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime
