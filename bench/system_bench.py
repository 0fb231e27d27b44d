"""The whole system end to end: the local stack under a mixed workload through the gateway.

Starts the stack with switchyard's own code (switchyard.stack.Stack, as `switchyard up`
does): devconsul, 2 user-service, 2 order-service and the gateway, each under gunicorn with
the local stack's settings, on free ports and a temporary data directory; on SQLite and,
when SWITCHYARD_TEST_POSTGRES_URL is set, on PostgreSQL (fresh databases, dropped after).

A bounded load generator (`--connections` keep-alive clients, each waiting for its answer
before sending again) runs this mix through the gateway for `--seconds`:
- 40% GET /api/users/<id>, 25% GET /api/orders/<id>, 15% GET /api/views/users/<id>;
- 20% POST /api/orders with a new Idempotency-Key, one in four of them sent twice (the
  second must be a replay: 200 with Idempotent-Replayed).
Reported: req/s, p50/p99 and errors per kind (anything but the expected status is an
error; the total must be 0), and CPU per request of each tier (gateway, user-service,
order-service, Consul agent, the load generator), from /proc/<pid>/stat of each process
tree.

    python -m bench.system_bench [--seconds 15] [--connections 16] [--users 200]
                                 [--database sqlite --database postgresql]
"""

import argparse
import contextlib
import dataclasses
import os
import random
import resource
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections import defaultdict
from pathlib import Path

import requests

from bench.services_bench import database, database_kinds
from switchyard.agent import choose_agent
from switchyard.plan import LOCAL_ENV, StackOptions, free_port
from switchyard.stack import Stack

# kind -> share of the requests
MIX = {"user": 40, "order": 25, "view": 15, "create": 20}
REPLAY_EVERY = 4  # one creation in four is sent twice with its key
TIERS = ("gateway", "user-service", "order-service", "consul")


def tree_cpu_seconds(pid: int) -> float:
    """User+system CPU of a process and all its descendants (Linux /proc)."""
    total, pending = 0, [pid]
    while pending:
        current = pending.pop()
        try:
            stat = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(stat[11]) + int(stat[12])
            for task in Path(f"/proc/{current}/task").iterdir():
                pending += map(int, (task / "children").read_text().split())
        except OSError:
            continue  # it exited meanwhile
    return total / os.sysconf("SC_CLK_TCK")


def own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@contextlib.contextmanager
def running_stack(kind: str, directory: str):
    """The local stack as switchyard starts it; services on `kind`'s databases."""
    with (
        database(kind, directory, "users") as users_url,
        database(kind, directory, "orders") as orders_url,
    ):
        options = StackOptions(
            gateway_port=free_port(),
            data_dir=Path(directory),
            log_level="WARNING",
            drain_seconds=0.0,  # it stops after the measure: nothing is routed to it then
        )
        agent = choose_agent(None, free_port(), prefer="devconsul")
        stack = Stack(options, agent)
        urls = {"user-service": users_url, "order-service": orders_url}
        stack.specs = {
            name: dataclasses.replace(
                spec, env={**spec.env, "DATABASE_URL": urls[spec.service]}
            )
            if spec.service in urls
            else spec
            for name, spec in stack.specs.items()
        }
        stack.start()
        try:
            yield stack
        finally:
            stack.stop()


def tier_pids(stack: Stack) -> dict[str, list[int]]:
    pids = defaultdict(list)
    for name, process in stack.processes.items():
        spec = stack.specs.get(name)
        pids[spec.service if spec else "consul"].append(process.pid)
    return pids


def seed(gateway: str, users: int) -> tuple[list[int], list[int]]:
    """`users` users with one order each, created through the gateway."""
    user_ids, order_ids = [], []
    with requests.Session() as session:
        for i in range(users):
            user = session.post(
                f"{gateway}/api/users",
                json={"name": f"Bench {i}", "email": f"bench{i}@example.com"},
            )
            user.raise_for_status()
            user_ids.append(user.json()["id"])
            order = session.post(
                f"{gateway}/api/orders",
                json={"user_id": user_ids[-1], "total_amount": "12.50"},
            )
            order.raise_for_status()
            order_ids.append(order.json()["id"])
    return user_ids, order_ids


class Load:
    """Closed-loop clients: each sends, waits for the answer, sends the next."""

    def __init__(self, gateway: str, user_ids: list[int], order_ids: list[int]):
        self.gateway = gateway
        self.user_ids, self.order_ids = user_ids, order_ids
        self.latencies = defaultdict(list)  # kind -> seconds
        self.errors = defaultdict(list)  # kind -> descriptions
        self.lock = threading.Lock()

    def run(self, connections: int, seconds: float) -> float:
        deadline = time.monotonic() + seconds
        started = time.monotonic()
        clients = [
            threading.Thread(target=self.client, args=(deadline, random.Random(i)))
            for i in range(connections)
        ]
        for client in clients:
            client.start()
        for client in clients:
            client.join()
        return time.monotonic() - started

    def client(self, deadline: float, rng: random.Random) -> None:
        kinds, weights = list(MIX), list(MIX.values())
        latencies, errors = defaultdict(list), defaultdict(list)
        with requests.Session() as session:
            while time.monotonic() < deadline:
                kind = rng.choices(kinds, weights)[0]
                for request, expected in self.requests(kind, rng):
                    started = time.perf_counter()
                    try:
                        response = session.request(**request, timeout=10)
                        problem = expected(response)
                    except requests.RequestException as exc:
                        problem = repr(exc)
                    latencies[kind].append(time.perf_counter() - started)
                    if problem:
                        errors[kind].append(problem)
        with self.lock:
            for kind in latencies:
                self.latencies[kind] += latencies[kind]
                self.errors[kind] += errors[kind]

    def requests(self, kind: str, rng: random.Random):
        """(request, check) pairs for one operation of `kind`; a check returns a problem."""
        api = f"{self.gateway}/api"
        if kind != "create":
            ids = self.order_ids if kind == "order" else self.user_ids
            path = {"user": "users", "order": "orders", "view": "views/users"}[kind]
            yield {"method": "GET", "url": f"{api}/{path}/{rng.choice(ids)}"}, ok(200)
            return
        create = {
            "method": "POST",
            "url": f"{api}/orders",
            "json": {"user_id": rng.choice(self.user_ids), "total_amount": "12.50"},
            "headers": {"Idempotency-Key": uuid.uuid4().hex},
        }
        yield create, ok(201)
        if rng.randrange(REPLAY_EVERY) == 0:
            yield create, replayed


def ok(status: int):
    def check(response: requests.Response) -> str | None:
        if response.status_code != status:
            return f"{response.status_code} {response.text[:120]}"
        return None

    return check


def replayed(response: requests.Response) -> str | None:
    if (
        response.status_code != 200
        or response.headers.get("Idempotent-Replayed") != "true"
    ):
        return f"replay: {response.status_code} {response.text[:120]}"
    return None


def bench(kind: str, directory: str, args) -> int:
    with running_stack(kind, directory) as stack:
        gateway = stack.gateway_url
        user_ids, order_ids = seed(gateway, args.users)
        load = Load(gateway, user_ids, order_ids)
        load.run(args.connections, 2.0)  # warm-up: pools, caches, watchers
        load = Load(gateway, user_ids, order_ids)
        pids = tier_pids(stack)
        before = {tier: sum(map(tree_cpu_seconds, pids[tier])) for tier in TIERS}
        loader_before = own_cpu_seconds()
        elapsed = load.run(args.connections, args.seconds)
        cpu = {
            tier: sum(map(tree_cpu_seconds, pids[tier])) - before[tier]
            for tier in TIERS
        }
        cpu["load generator"] = own_cpu_seconds() - loader_before
    return report(kind, load, elapsed, cpu, pids)


def report(kind: str, load: Load, elapsed: float, cpu: dict, pids: dict) -> int:
    total = sum(len(values) for values in load.latencies.values())
    errors = sum(len(values) for values in load.errors.values())
    print(f"\n[{kind}] {total / elapsed:.0f} req/s through the gateway, "
          f"{total} requests in {elapsed:.1f}s, errors {errors} (must be 0)")  # fmt: skip
    for kind_name in MIX:
        latencies = sorted(load.latencies[kind_name])
        if not latencies:
            continue
        p50 = statistics.median(latencies) * 1000
        p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000
        print(f"  {kind_name:7} {len(latencies) / elapsed:6.0f} req/s  p50 {p50:6.1f} ms  "
              f"p99 {p99:6.1f} ms  errors {len(load.errors[kind_name])}")  # fmt: skip
        for problem in load.errors[kind_name][:3]:
            print(f"      e.g. {problem}")
    print("  CPU per request (us), each tier's processes together: " + ", ".join(
        f"{tier} ({len(pids.get(tier, [])) or 1}) {seconds / total * 1e6:.0f}"
        for tier, seconds in cpu.items()
    ))  # fmt: skip
    return 1 if errors else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.system_bench")
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--users", type=int, default=200, help="seeded, one order each")
    parser.add_argument("--database", action="append", choices=("sqlite", "postgresql"))
    args = parser.parse_args(argv)
    print(
        f"system bench: the local stack (switchyard's settings: every service "
        f"{LOCAL_ENV['WEB_CONCURRENCY']} worker(s) x {LOCAL_ENV['GUNICORN_THREADS']} "
        f"threads, 2 user-service, 2 order-service, devconsul), {args.connections} "
        f"closed-loop clients (Python, in this process), {args.seconds:g}s; "
        f"{os.cpu_count()} CPUs shared by all; load average {os.getloadavg()[0]:.1f} before"
    )
    status = 0
    for kind in database_kinds(args.database):
        with tempfile.TemporaryDirectory(prefix="system-bench-") as directory:
            status |= bench(kind, directory, args)
    print(f"  load average {os.getloadavg()[0]:.1f} after (includes this bench)")
    return status


if __name__ == "__main__":
    sys.exit(main())
