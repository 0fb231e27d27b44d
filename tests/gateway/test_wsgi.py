"""The gateway under gunicorn with devconsul and real upstream processes."""

import itertools
import os
import signal
import subprocess
import sys
import threading

import pytest
import requests

from tests.gateway.stack import (
    quick_stop,
    register_static,
    start_gateway,
    start_upstream,
    wait_routable,
)
from tests.support.processes import free_port, wait_until

pytestmark = pytest.mark.integration


@pytest.fixture
def stack(devconsul):
    started = []

    class Stack:
        consul = devconsul

        def upstream(self, service="echo", prefix="/echo", **env):
            process, iid = start_upstream(devconsul.addr, service, prefix, **env)
            started.append(process)
            return process, iid

        def gateway(self, wait=True, **env):
            process, url = start_gateway(devconsul.addr, wait, **env)
            started.append(process)
            return process, url

    yield Stack()
    for process in reversed(started):
        quick_stop(process)


def test_round_robin_through_consul_alternates_exactly(stack):
    ids = {stack.upstream()[1], stack.upstream()[1]}
    process, url = stack.gateway()
    wait_routable(url, "echo", 2)
    with requests.Session() as s:
        served = [s.get(f"{url}/api/echo/x").headers["X-Served-By"] for _ in range(10)]
    assert set(served) == ids
    assert all(a != b for a, b in itertools.pairwise(served))
    assert "Traceback" not in process.output()


def test_random_strategy_covers_both(stack):
    stack.upstream(), stack.upstream()
    _, url = stack.gateway(GATEWAY_LB_STRATEGY="random")
    wait_routable(url, "echo", 2)
    with requests.Session() as s:
        served = {s.get(f"{url}/api/echo/x").headers["X-Served-By"] for _ in range(40)}
    assert len(served) == 2


def test_invalid_strategy_fails_at_boot_naming_the_valid_ones(stack):
    process, _ = stack.gateway(wait=False, GATEWAY_LB_STRATEGY="fastest")
    assert process.wait(15) != 0
    assert "GATEWAY_LB_STRATEGY" in process.output()
    assert "least_connections, random, round_robin, weighted" in process.output()


def test_a_bad_sampler_fails_at_boot_naming_its_variable(stack):
    process, _ = stack.gateway(
        wait=False,
        OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{free_port()}",
        OTEL_TRACES_SAMPLER="sometimes",
    )
    assert process.wait(15) != 0
    # from the master's config check: no worker started (none would boot)
    assert "Error: OTEL_TRACES_SAMPLER: unknown value 'sometimes'" in process.output()
    assert "Booting worker" not in process.output()


def test_new_service_becomes_routable_and_consul_outage_is_survived(stack):
    _, url = stack.gateway()
    assert requests.get(f"{url}/api/late/x").status_code == 404
    _, iid = stack.upstream("late-service", "/late")
    wait_until(
        lambda: requests.get(f"{url}/api/late/x").status_code == 200,
        15,
        what="new route",
    )
    stack.consul.process.stop()
    wait_until(
        lambda: requests.get(f"{url}/health").json()["consul"]["reachable"] is False,
        15,
        what="stale",
    )
    health = requests.get(f"{url}/health")
    assert health.status_code == 200 and health.json()["status"] == "degraded"
    assert requests.get(f"{url}/api/late/x").headers["X-Served-By"] == iid


def _steady_stream(url, stop, results, method_for):
    with requests.Session() as s:
        n = 0
        while not stop.is_set():
            method = method_for(n)
            r = s.request(
                method,
                f"{url}/api/echo/item/{n}",
                data=b"payload" if method == "POST" else None,
                timeout=10,
            )
            results.append((method, r.status_code, r.headers.get("X-Served-By")))
            n += 1


def _run_stream(url, victim, sig, method_for, clients=2):
    stop, results = threading.Event(), []
    threads = [
        threading.Thread(target=_steady_stream, args=(url, stop, results, method_for))
        for _ in range(clients)
    ]
    for t in threads:
        t.start()
    wait_until(lambda: len(results) > 30, 10, what="traffic")
    victim.signal(sig)
    wait_until(lambda: not victim.alive(), 15, what="victim gone")
    seen = len(results)
    wait_until(lambda: len(results) > seen + 60, 15, what="traffic after the stop")
    stop.set()
    for t in threads:
        t.join(10)
    return results


def test_sigkill_of_one_instance_under_steady_gets_loses_nothing(stack):
    victim, victim_id = stack.upstream()
    _, survivor_id = stack.upstream()
    _, url = stack.gateway()
    wait_routable(url, "echo", 2)
    results = _run_stream(url, victim, signal.SIGKILL, lambda n: "GET")
    failed = [r for r in results if r[1] != 200]
    assert failed == []
    assert results[-1][2] == survivor_id
    assert {r[2] for r in results} == {victim_id, survivor_id}


def test_sigterm_drain_under_mixed_gets_and_posts_loses_nothing(stack):
    victim, _victim_id = stack.upstream(DRAIN_SECONDS="2")
    _, survivor_id = stack.upstream(DRAIN_SECONDS="2")
    _, url = stack.gateway()
    wait_routable(url, "echo", 2)
    results = _run_stream(
        url, victim, signal.SIGTERM, lambda n: "POST" if n % 2 else "GET"
    )
    failed = [r for r in results if r[1] != 200]
    assert failed == []
    assert {m for m, _, _ in results} == {"GET", "POST"}
    assert results[-1][2] == survivor_id


def test_ejection_before_consul_notices_and_recovery(stack):
    stack.upstream()
    dead = register_static(stack.consul.url, "echo", "/echo", free_port())
    _, url = stack.gateway(
        GATEWAY_EJECT_AFTER="1", GATEWAY_EJECT_BASE="1", GATEWAY_EJECT_MAX="2"
    )
    wait_routable(url, "echo", 2)

    def dead_reason():
        instances = requests.get(f"{url}/admin/instances").json()["services"]["echo"][
            "instances"
        ]
        return next(i["reason"] for i in instances if i["id"] == dead)

    def first_ejections():
        requests.get(f"{url}/api/echo/x")
        return dead_reason().startswith("ejected until")

    wait_until(first_ejections, 5, what="ejection")
    assert "ejection #1" in dead_reason()
    wait_until(lambda: dead_reason() == "passing", 5, what="re-admission")
    wait_until(first_ejections, 5, what="second ejection")
    assert "ejection #2" in dead_reason()
    assert all(requests.get(f"{url}/api/echo/x").status_code == 200 for _ in range(6))
    metrics = requests.get(f"{url}/metrics").text
    assert f'gateway_ejections_total{{instance="{dead}",service="echo"}} 2.0' in metrics


def import_wsgi(log_level):
    env = {**os.environ, "LOG_LEVEL": log_level}
    return subprocess.run(
        [sys.executable, "-c", "import gateway.wsgi"],
        env=env,
        check=False,
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_log_level_is_accepted_in_any_case():
    done = import_wsgi("debug")
    assert done.returncode == 0, done.stderr


def test_unknown_log_level_names_the_variable():
    done = import_wsgi("chatty")
    assert done.returncode != 0 and "LOG_LEVEL: unknown value" in done.stderr
