"""The services' hot paths against a bare Flask JSON route, served the same way, in one run.

Three gunicorns alike (gthread, `--workers` x `--threads`, default 1 x 4), on loopback:
- `bare`: a Flask app whose one route returns a small JSON object (the yardstick);
- `GET /users/<id>` on user-service and `GET /orders/<id>` on order-service, on SQLite
  and, when SWITCHYARD_TEST_POSTGRES_URL is set, on PostgreSQL (a fresh database per run,
  dropped afterwards).
Each is loaded with wrk at c=16 (needed: `apt-get install wrk`), the three interleaved
`--repeats` times; printed: medians, each service's ratio to bare beside its target (0.6),
and CPU per request. Then `POST /orders` (order-service asking user-service whether the
user exists, over pooled keep-alive connections): its rate under wrk, and its cost broken
down in-process with cProfile (validation, idempotency lookup, user check, insert, commit,
the rest), with how many connections the user checks opened. Last, the list endpoints at
100,000 rows, in-process: the first page, the last one by `offset` and by `after`
(keyset, which also leaves the count out), and the count inside the offset pages.

`--profile` prints instead where a GET's time goes in-process (cProfile, the WSGI app
called directly, no server), grouped by library.

    python -m bench.services_bench [--seconds 5] [--repeats 3] [--workers 1] [--threads 4]
                                   [--database sqlite --database postgresql] [--profile]
"""

import argparse
import contextlib
import cProfile
import os
import pstats
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

import requests
from flask import Flask
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from bench.processes import Process, cpu_seconds
from chassis.launch import gunicorn_argv
from switchyard.plan import free_port

POSTGRES_URL = os.environ.get("SWITCHYARD_TEST_POSTGRES_URL", "")
TARGET_RATIO = 0.6
CONNECTIONS = 16
WARM_UP_SECONDS = 2

bare_app = Flask(__name__, static_folder=None)


@bare_app.get("/item")
def bare_item():
    """The yardstick: what a user-service answer looks like, with no work behind it."""
    return {
        "id": 1,
        "name": "Bench User",
        "email": "bench@example.com",
        "created_at": "2026-01-01T00:00:00Z",
        "updated_at": "2026-01-01T00:00:00Z",
    }


# -- databases ---------------------------------------------------------------------------


@contextlib.contextmanager
def database(kind: str, directory: str, name: str):
    """A DATABASE_URL for an empty database: a SQLite file, or a fresh PostgreSQL database
    on SWITCHYARD_TEST_POSTGRES_URL's server, dropped afterwards."""
    if kind == "sqlite":
        yield f"sqlite:///{directory}/{name}.db"
        return
    database_name = f"bench_{name}_{uuid.uuid4().hex[:8]}"
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f"CREATE DATABASE {database_name}"))
    try:
        url = make_url(POSTGRES_URL).set(database=database_name)
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(
                text(f"DROP DATABASE IF EXISTS {database_name} WITH (FORCE)")
            )
        admin.dispose()


def database_kinds(requested: list[str] | None) -> list[str]:
    kinds = requested or ["sqlite", "postgresql"]
    if "postgresql" in kinds and not POSTGRES_URL:
        print("services bench: PostgreSQL skipped (SWITCHYARD_TEST_POSTGRES_URL unset)")
        kinds = [k for k in kinds if k != "postgresql"]
    return kinds


# -- processes ---------------------------------------------------------------------------


def serve(package: str, env: dict, workers: int, threads: int) -> tuple[Process, str]:
    """`package` under gunicorn as deployed, not registering anywhere; (process, base URL)."""
    port = free_port()
    env = {
        # Nothing listens there: registration fails and the service serves regardless.
        "CONSUL_HTTP_ADDR": f"127.0.0.1:{free_port()}",
        "SERVICE_ADDRESS": "127.0.0.1",
        "BIND_HOST": "127.0.0.1",
        "PORT": str(port),
        "WEB_CONCURRENCY": str(workers),
        "GUNICORN_THREADS": str(threads),
        "DRAIN_SECONDS": "0",
        "LOG_LEVEL": "WARNING",
        **env,
    }
    process = Process(gunicorn_argv(package), env, package)
    base = f"http://127.0.0.1:{port}"
    process.wait_until(lambda: requests.get(f"{base}/health").ok, 30, package)
    return process, base


def serve_bare(workers: int, threads: int) -> tuple[Process, str]:
    port = free_port()
    process = Process(
        [sys.executable, "-m", "gunicorn", "-k", "gthread", "-w", str(workers),
         "--threads", str(threads), "-b", f"127.0.0.1:{port}",
         "bench.services_bench:bare_app"],
        {}, "bare-flask",
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}/item"
    process.wait_until(lambda: requests.get(url).ok, 20, "the bare Flask app")
    return process, url


# -- load --------------------------------------------------------------------------------


def wrk(url: str, seconds: float, script: str | None = None) -> tuple[int, float]:
    """(requests completed, p50 ms) of wrk at CONNECTIONS; raises on any error it saw."""
    argv = ["wrk", "-t", "2", "-c", str(CONNECTIONS), "-d", f"{max(1, round(seconds))}s",
            "--latency", url]  # fmt: skip
    if script:
        argv[1:1] = ["-s", script]
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    if re.search(r"Non-2xx or 3xx responses|Socket errors", out):
        raise RuntimeError(f"wrk saw errors against {url}:\n{out}")
    done = int(re.search(r"(\d+) requests in", out).group(1))
    value, unit = re.search(r"50%\s+([\d.]+)(us|ms|s)", out).groups()
    return done, float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def post_script(directory: str, user_id: int) -> str:
    """A wrk script: every request a new order (no Idempotency-Key, so no replays)."""
    path = Path(directory) / "post_order.lua"
    path.write_text(
        'wrk.method = "POST"\n'
        'wrk.headers["Content-Type"] = "application/json"\n'
        f'wrk.body = \'{{"user_id": {user_id}, "total_amount": "12.50"}}\'\n'
    )
    return str(path)


def measure(url: str, seconds: float, pid: int, script: str | None = None) -> dict:
    before = cpu_seconds(pid)
    done, p50 = wrk(url, seconds, script)
    return {
        "rps": done / round(seconds),
        "p50": p50,
        "cpu_us": (cpu_seconds(pid) - before) / done * 1e6,
    }


# -- the scenario ------------------------------------------------------------------------


def bench_database(kind: str, directory: str, args) -> None:
    with (
        database(kind, directory, "users") as users_url,
        database(kind, directory, "orders") as orders_url,
    ):
        processes = []
        try:
            bare, bare_url = serve_bare(args.workers, args.threads)
            processes.append(bare)
            users, users_base = serve(
                "user_service", {"DATABASE_URL": users_url}, args.workers, args.threads
            )
            processes.append(users)
            orders, orders_base = serve(
                "order_service",
                {"DATABASE_URL": orders_url, "USER_SERVICE_URL": users_base},
                args.workers,
                args.threads,
            )
            processes.append(orders)
            user_id, order_id = seed(users_base, orders_base)
            targets = {
                "bare Flask route": (bare_url, bare.pid),
                "GET /users/<id>": (f"{users_base}/users/{user_id}", users.pid),
                "GET /orders/<id>": (f"{orders_base}/orders/{order_id}", orders.pid),
            }
            runs = compare(targets, args)
            post = measure_post(orders_base, orders.pid, user_id, directory, args)
            report(kind, runs, post)
            breakdown(orders_url, users_base, user_id, args)
        finally:
            for process in processes:
                process.stop()


def seed(users_base: str, orders_base: str) -> tuple[int, int]:
    user = requests.post(
        f"{users_base}/users", json={"name": "Bench User", "email": "b@example.com"}
    )
    user.raise_for_status()
    user_id = user.json()["id"]
    order = requests.post(
        f"{orders_base}/orders", json={"user_id": user_id, "total_amount": "12.50"}
    )
    order.raise_for_status()
    return user_id, order.json()["id"]


def compare(targets: dict, args) -> dict:
    """Every target's runs, interleaved round by round, the order rotating."""
    for url, _ in targets.values():
        wrk(url, WARM_UP_SECONDS)
    runs = {name: [] for name in targets}
    names = list(targets)
    for round_ in range(args.repeats):
        for name in names[round_ % 3 :] + names[: round_ % 3]:
            url, pid = targets[name]
            runs[name].append(measure(url, args.seconds, pid))
    return runs


def measure_post(base: str, pid: int, user_id: int, directory: str, args) -> dict:
    script = post_script(directory, user_id)
    wrk(f"{base}/orders", WARM_UP_SECONDS, script)
    return measure(f"{base}/orders", args.seconds, pid, script)


def report(kind: str, runs: dict, post: dict) -> None:
    bare = statistics.median(r["rps"] for r in runs["bare Flask route"])
    print(f"\n[{kind}] c={CONNECTIONS}, medians")
    for name, measured in runs.items():
        rps = statistics.median(r["rps"] for r in measured)
        p50 = statistics.median(r["p50"] for r in measured)
        cpu = statistics.median(r["cpu_us"] for r in measured)
        line = f"  {name:17} {rps:6.0f} req/s  p50 {p50:6.2f} ms  CPU {cpu:5.0f} us/req"
        if name != "bare Flask route":
            met = "met" if rps / bare >= TARGET_RATIO else "MISSED"
            line += f"  ratio {rps / bare:.2f} (target >= {TARGET_RATIO}) [{met}]"
        print(line)
        print("      runs " + ", ".join(f"{r['rps']:.0f}/s" for r in measured))
    print(
        f"  POST /orders      {post['rps']:6.0f} req/s  p50 {post['p50']:6.2f} ms  "
        f"CPU {post['cpu_us']:5.0f} us/req (order-service; user check included)"
    )


# -- POST /orders, broken down -----------------------------------------------------------

# Where a POST /orders spends its time: (label, (file suffix, function) whose cumulative
# time is that part). The rest is Flask, the session's set-up and teardown, and the JSON.
PARTS = (
    ("validation", (("chassis/inputs.py", "json_body"),
                    ("order_service/validation.py", "clean_new_order"),
                    ("order_service/validation.py", "clean_idempotency_key"),
                    ("order_service/validation.py", "request_fingerprint"))),
    ("idempotency lookup", (("order_service/idempotency.py", "find"),)),
    ("user check (HTTP)", (("order_service/orders.py", "require_user"),)),
    ("insert (flush)", (("sqlalchemy/orm/session.py", "flush"),)),
    ("COMMIT", (("sqlalchemy/engine/base.py", "_commit_impl"),)),
    ("response", (("order_service/orders.py", "order_response"),)),
)  # fmt: skip


def breakdown(orders_url: str, users_base: str, user_id: int, args):
    """POST /orders in-process (WSGI app called directly) against the running user-service."""
    from order_service import create_app
    from order_service.settings import Settings

    app = create_app(
        Settings(database_url=orders_url, user_service_url=users_base)
    )  # fmt: skip
    client = app.test_client()
    body = {"user_id": user_id, "total_amount": Decimal("12.50")}

    def post():
        headers = {"Idempotency-Key": uuid.uuid4().hex}
        response = client.post("/orders", json=body, headers=headers)
        assert response.status_code == 201, response.data

    for _ in range(50):
        post()
    started = time.perf_counter()
    for _ in range(args.posts):
        post()
    wall_us = (time.perf_counter() - started) / args.posts * 1e6
    profile = cProfile.Profile()
    profile.runcall(lambda: [post() for _ in range(args.posts)])
    stats = pstats.Stats(profile).stats
    total = sum(entry[2] for entry in stats.values())
    print(f"  POST /orders in-process (with Idempotency-Key): {wall_us:.0f} us each; "
          f"under cProfile, share of each part:")  # fmt: skip
    rest = total
    for label, functions in PARTS:
        spent = sum(
            entry[3]
            for (file, _, function), entry in stats.items()
            if any(file.endswith(f) and function == name for f, name in functions)
        )
        rest -= spent  # no part runs inside another
        print(f"    {label:20} {spent / total:5.0%}")
    print(f"    {'the rest':20} {max(rest, 0) / total:5.0%} (Flask, session, JSON)")
    pools = (
        app.extensions["user_directory"]
        .client._session()
        .get_adapter("http://")
        .poolmanager.pools
    )
    for pooled in map(pools.get, pools.keys()):
        print(f"    user checks: {pooled.num_requests} requests over "
              f"{pooled.num_connections} connection(s) to {pooled.host}:{pooled.port}")  # fmt: skip
    with app.app_context():
        app.extensions["sqlalchemy"].engine.dispose()


# -- list endpoints at 100,000 rows ------------------------------------------------------

LIST_ROWS = 100_000


def bench_lists(kind: str, directory: str) -> None:
    """What a page costs at the start and at the end of 100,000 rows, and the count in it."""
    from datetime import UTC, datetime

    from chassis.inputs import PageRequest
    from chassis.pages import page_statements
    from order_service import create_app as orders_app
    from order_service.orders import ORDERS
    from order_service.settings import Settings as OrderSettings
    from user_service import create_app as users_app
    from user_service.settings import Settings as UserSettings
    from user_service.users import USERS

    now = datetime.now(UTC)
    with (
        database(kind, directory, "users") as users_url,
        database(kind, directory, "orders") as orders_url,
    ):
        users = users_app(UserSettings(database_url=users_url))
        orders = orders_app(
            OrderSettings(
                database_url=orders_url, user_service_url="http://127.0.0.1:9"
            )
        )
        fill(users, USERS, lambda i: {"name": f"u{i}", "email": f"u{i}@example.com",
                                      "created_at": now, "updated_at": now})  # fmt: skip
        fill(orders, ORDERS, lambda i: {"user_id": i % 100 + 1, "status": "pending",
                                        "total_amount": Decimal("12.50"),
                                        "created_at": now, "updated_at": now})  # fmt: skip
        last = LIST_ROWS - 50
        # User 7's orders are 7, 107, ..., 99,907: their last page starts after 94,907.
        print(f"\n[{kind}] lists at {LIST_ROWS:,} rows, in-process, ms per request:")
        for label, app, path in (
            ("GET /users first page", users, "/users?limit=50"),
            (f"GET /users offset {last:,}", users, f"/users?limit=50&offset={last}"),
            (f"GET /users after {last:,} (keyset)", users, f"/users?limit=50&after={last}"),
            ("GET /orders?user_id= (1,000 of theirs)", orders, "/orders?user_id=7"),
            ("  its last page by offset", orders, "/orders?user_id=7&offset=950"),
            ("  its last page by after (keyset)", orders,
             "/orders?user_id=7&after=94907"),
        ):  # fmt: skip
            client = app.test_client()
            ms = per_call(lambda c=client, p=path: c.get(p))
            print(f"  {label:40} {ms:8.2f}")
        count, _ = page_statements(USERS, [], PageRequest(50))
        with users.app_context():
            engine = users.extensions["sqlalchemy"].engine
            with engine.connect() as connection:
                count_ms = per_call(lambda: connection.execute(count).scalar())
            print(f"  {'of which the unfiltered users count':40} {count_ms:8.2f}")
        for app in (users, orders):
            with app.app_context():
                app.extensions["sqlalchemy"].engine.dispose()


def fill(app: Flask, table, row) -> None:
    from sqlalchemy import insert

    db = app.extensions["sqlalchemy"]
    with app.app_context(), db.engine.begin() as connection:
        for start in range(0, LIST_ROWS, 10_000):
            batch = [row(i) for i in range(start, start + 10_000)]
            connection.execute(insert(table), batch)
        if connection.dialect.name == "postgresql":
            connection.exec_driver_sql(f"ANALYZE {table.name}")


def per_call(call, repeats: int = 20) -> float:
    """Milliseconds per call, median of `repeats` after one warm-up."""
    call()
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        timings.append(time.perf_counter() - started)
    return statistics.median(timings) * 1000


# -- in-process profile of the GETs --------------------------------------------------------


def library(file: str) -> str:
    for marker, name in (
        ("sqlalchemy/orm", "sqlalchemy.orm"),
        ("sqlalchemy/engine", "sqlalchemy.engine+pool"),
        ("sqlalchemy/pool", "sqlalchemy.engine+pool"),
        ("flask_sqlalchemy", "flask_sqlalchemy"),
        ("sqlalchemy", "sqlalchemy (sql, util)"),
        ("werkzeug", "werkzeug"),
        ("/flask/", "flask"),
        ("json", "json"),
        ("psycopg", "psycopg"),
    ):
        if marker in file:
            return name
    if file.startswith(str(Path(__file__).resolve().parents[1])):
        return "switchyard (ours)"
    return "other (C calls: driver, builtins)"


def profile_gets(kind: str, directory: str, requests_count: int) -> None:
    from order_service import create_app as orders_app
    from order_service.models import Order
    from order_service.models import db as orders_db
    from order_service.settings import Settings as OrderSettings
    from user_service import create_app as users_app
    from user_service.settings import Settings as UserSettings

    with (
        database(kind, directory, "users") as users_url,
        database(kind, directory, "orders") as orders_url,
    ):
        users = users_app(UserSettings(database_url=users_url))
        user = users.test_client().post(
            "/users", json={"name": "P", "email": "p@example.com"}
        )
        orders = orders_app(
            OrderSettings(
                database_url=orders_url, user_service_url="http://127.0.0.1:9"
            )
        )
        with orders.app_context():
            order = Order(user_id=1, total_amount=Decimal("12.50"), status="pending")
            orders_db.session.add(order)
            orders_db.session.commit()
            order_id = order.id
        print(f"\n[{kind}] in-process, the WSGI app called directly:")
        profile_get(bare_app, "/item", requests_count)
        profile_get(users, f"/users/{user.json['id']}", requests_count)
        profile_get(orders, f"/orders/{order_id}", requests_count)
        for app in (users, orders):
            with app.app_context():
                app.extensions["sqlalchemy"].engine.dispose()


def profile_get(app: Flask, path: str, count: int) -> None:
    from werkzeug.test import EnvironBuilder

    environ = EnvironBuilder(path=path).get_environ()

    def get():
        body = app(dict(environ), lambda status, headers, exc_info=None: None)
        b"".join(body)
        body.close()

    for _ in range(200):
        get()
    started = time.perf_counter()
    for _ in range(count):
        get()
    wall_us = (time.perf_counter() - started) / count * 1e6
    profile = cProfile.Profile()
    profile.runcall(lambda: [get() for _ in range(count)])
    stats = pstats.Stats(profile)
    groups = defaultdict(float)
    for (file, _, _), entry in stats.stats.items():
        groups[library(file)] += entry[2]
    total = sum(groups.values())
    # Python function calls are the load-independent figure on a shared machine.
    print(f"  GET {path}: {wall_us:.0f} us each, {stats.total_calls / count:.0f} "
          "function calls; under cProfile, own time by library:")  # fmt: skip
    for name, spent in sorted(groups.items(), key=lambda item: -item[1]):
        print(f"    {name:36} {spent / total:5.0%}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.services_bench")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workers", type=int, default=1, help="of every gunicorn")
    parser.add_argument("--threads", type=int, default=4, help="per worker")
    parser.add_argument("--posts", type=int, default=500, help="in-process breakdown")
    parser.add_argument("--database", action="append", choices=("sqlite", "postgresql"))
    parser.add_argument("--profile", action="store_true", help="in-process only")
    args = parser.parse_args(argv)
    kinds = database_kinds(args.database)
    if not args.profile and not shutil.which("wrk"):
        print("services bench: skipped, wrk is not installed (apt-get install wrk)")
        return 0
    print(
        f"services bench: every gunicorn {args.workers} worker(s) x {args.threads} "
        f"threads (gthread), wrk -c {CONNECTIONS}, {args.seconds:g}s per run, median of "
        f"{args.repeats}; {os.cpu_count()} CPUs shared by all; load average "
        f"{os.getloadavg()[0]:.1f} before"
    )
    with tempfile.TemporaryDirectory(prefix="services-bench-") as directory:
        for kind in kinds:
            with tempfile.TemporaryDirectory(dir=directory) as run_directory:
                if args.profile:
                    profile_gets(kind, run_directory, 2000)
                else:
                    bench_database(kind, run_directory, args)
                    bench_lists(kind, run_directory)
    print(f"  load average {os.getloadavg()[0]:.1f} after (includes this bench)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
