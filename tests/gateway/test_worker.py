"""The gateway's gunicorn worker (one event loop per process) under a real gunicorn: it
holds Consul's state before it serves, stops gracefully, stays alive for the master, and
with several workers reports metrics for the whole gateway."""

import glob
import os
import signal
import socket
import tempfile
import threading
import time

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.gateway.stack import (
    quick_stop,
    register_static,
    start_gateway,
    start_upstream,
    wait_routable,
)
from tests.support.processes import wait_until

pytestmark = pytest.mark.integration


@pytest.fixture
def started():
    processes = []
    yield processes
    for process in reversed(processes):
        quick_stop(process)


def passing(consul_url: str, service: str) -> int:
    return len(
        requests.get(
            f"{consul_url}/v1/health/service/{service}?passing", timeout=5
        ).json()
    )


def first_answer(port: int, raw: bytes) -> bytes:
    """Connect as soon as the port accepts (the master binds before any worker serves),
    send `raw` at once, and return the status line of the answer."""

    def accepted():
        try:
            return socket.create_connection(("127.0.0.1", port), timeout=30)
        except ConnectionRefusedError:
            return None

    sock = None

    def connect():
        nonlocal sock
        sock = accepted()
        return sock is not None

    wait_until(connect, 30, what="the gateway's port")
    with sock, sock.makefile("rb") as stream:
        sock.sendall(raw)
        return stream.readline()


def test_the_first_request_finds_routes_and_instances(devconsul, started):
    process, _ = start_upstream(devconsul.addr, "echo", "/echo")
    started.append(process)
    wait_until(lambda: passing(devconsul.url, "echo") == 1, 15, what="echo passing")
    gateway, url = start_gateway(devconsul.addr, wait=False)
    started.append(gateway)
    port = int(url.rsplit(":", 1)[1])
    line = first_answer(port, b"GET /api/echo/first HTTP/1.1\r\nHost: gw\r\n\r\n")
    assert line.startswith(b"HTTP/1.1 200 "), (line, gateway.output())
    # Its own check passes as soon as it serves: the instances were there before.
    health = requests.get(f"{url}/health", timeout=5)
    assert health.status_code == 200
    assert health.json()["services"]["echo"]["routable"] == 1


def test_sigterm_lets_a_request_in_flight_finish(devconsul, started):
    upstream = socket.create_server(("127.0.0.1", 0))  # answers when the test says
    register_static(devconsul.url, "held", "/held", upstream.getsockname()[1])
    gateway, url = start_gateway(devconsul.addr)
    started.append(gateway)
    wait_routable(url, "held", 1)
    answers = []
    client = threading.Thread(
        target=lambda: answers.append(requests.get(f"{url}/api/held/x", timeout=20))
    )
    client.start()
    upstream.settimeout(10)
    conn, _ = upstream.accept()
    with upstream, conn:
        conn.recv(65536)  # the request is in flight
        gateway.signal(signal.SIGTERM)
        wait_until(lambda: "stopping;" in gateway.output(), 15, what="the stop")
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nlate")
        client.join(15)
    assert answers and (answers[0].status_code, answers[0].text) == (200, "late")
    assert gateway.wait(15) == 0


def test_several_workers_report_metrics_for_the_whole_gateway(devconsul, started):
    process, _ = start_upstream(devconsul.addr, "echo", "/echo")
    started.append(process)
    gateway, url = start_gateway(devconsul.addr, WEB_CONCURRENCY="2")
    started.append(gateway)
    wait_routable(url, "echo", 1)
    pattern = f"gateway-metrics-{gateway.pid}-*"  # the master's own
    [metrics_dir] = glob.glob(os.path.join(tempfile.gettempdir(), pattern))
    for n in range(20):  # a new connection each: either worker may take it
        assert requests.get(f"{url}/api/echo/{n}", timeout=5).status_code == 200

    def counted(series: str = "gateway_requests_total{") -> float:
        text = requests.get(f"{url}/metrics", timeout=5).text
        return sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith(series)
        )

    assert [counted() for _ in range(6)] == [20.0] * 6  # whichever worker answers
    # The latency histogram, filled in bulk (GatewayMetrics.flush), in the workers' files.
    assert counted("gateway_request_duration_seconds_count{") == 20.0
    assert counted('gateway_request_duration_seconds_bucket{le="+Inf"') == 20.0
    quick_stop(gateway)
    assert not os.path.exists(metrics_dir)  # the master cleaned up


def workers_of(master: int) -> set[int]:
    with open(f"/proc/{master}/task/{master}/children") as children:
        return {int(pid) for pid in children.read().split()}


def test_dead_workers_leave_their_counts_and_take_their_open_connections(
    devconsul, started
):
    """Several workers, both killed and replaced: the counters keep what the dead ones
    counted (a total never goes back), the open-connections gauge drops their last
    values (else it would add up the dead forever)."""
    process, _ = start_upstream(devconsul.addr, "echo", "/echo")
    started.append(process)
    gateway, url = start_gateway(devconsul.addr, WEB_CONCURRENCY="2")
    started.append(gateway)
    wait_routable(url, "echo", 1)
    for n in range(10):
        assert requests.get(f"{url}/api/echo/{n}", timeout=5).status_code == 200

    def total(name: str) -> float:
        text = requests.get(f"{url}/metrics", timeout=5).text
        return sum(
            s.value
            for f in text_string_to_metric_families(text)
            for s in f.samples
            if s.name == name
        )

    port = int(url.rsplit(":", 1)[1])
    held = [socket.create_connection(("127.0.0.1", port)) for _ in range(4)]
    try:
        # The four and the scrape's own, as each worker last told (its heartbeat).
        wait_until(lambda: total("gateway_client_connections") == 5, 10, what="5")
        dead = workers_of(gateway.pid)
        for pid in dead:
            os.kill(pid, signal.SIGKILL)
        wait_until(
            lambda: len(workers_of(gateway.pid) - dead) == 2, 15, what="new workers"
        )
        wait_until(
            lambda: total("gateway_client_connections") == 1,
            15,
            what="only the scrape's own connection counted",
        )
    finally:
        for sock in held:
            sock.close()
    assert total("gateway_requests_total") == 10.0


def test_several_workers_leave_out_the_series_of_instances_consul_forgot(
    devconsul, started
):
    """The workers' files keep every series they wrote: the scrape leaves out those of
    instances Consul no longer lists, or churn would grow /metrics without bound."""
    first, gone = start_upstream(devconsul.addr, "echo", "/echo")
    second, kept = start_upstream(devconsul.addr, "echo", "/echo")
    started.extend([first, second])
    gateway, url = start_gateway(devconsul.addr, WEB_CONCURRENCY="2")
    started.append(gateway)
    wait_routable(url, "echo", 2)

    def instances() -> set[str]:
        text = requests.get(f"{url}/metrics", timeout=5).text
        return {
            s.labels["instance"]
            for f in text_string_to_metric_families(text)
            for s in f.samples
            if "instance" in s.labels
        }

    for n in range(10):  # round robin: both instances answer
        assert requests.get(f"{url}/api/echo/{n}", timeout=5).status_code == 200
    assert instances() == {gone, kept}
    quick_stop(first)  # deregisters on its way out
    wait_until(lambda: instances() == {kept}, 15, what=f"{gone}'s series left out")
    assert all(instances() == {kept} for _ in range(4))  # whichever worker answers


def test_an_idle_worker_is_not_killed_by_gunicorns_timeout(devconsul, started):
    gateway, url = start_gateway(devconsul.addr, GUNICORN_CMD_ARGS="--timeout 1")
    started.append(gateway)
    assert requests.get(f"{url}/openapi.json", timeout=5).status_code == 200
    # Three of gunicorn's timeouts without a request: only waiting shows it.
    time.sleep(3)
    assert requests.get(f"{url}/openapi.json", timeout=5).status_code == 200
    assert "WORKER TIMEOUT" not in gateway.output()


def test_a_watch_tag_routes_the_tagged_services_alone(devconsul, started):
    tagged, _ = start_upstream(
        devconsul.addr, "tagged", "/tagged", SERVICE_TAGS="v1,edge"
    )
    plain, _ = start_upstream(devconsul.addr, "plain", "/plain")
    started += [tagged, plain]
    # Consul lists it passing: the gateway leaves it all the same.
    wait_until(lambda: passing(devconsul.url, "plain") == 1, 15, what="plain passing")
    gateway, url = start_gateway(devconsul.addr, GATEWAY_WATCH_TAG="edge")
    started.append(gateway)
    wait_routable(url, "tagged", 1)
    assert set(requests.get(f"{url}/health", timeout=5).json()["services"]) == {
        "tagged"
    }
    assert requests.get(f"{url}/api/tagged/x", timeout=5).status_code == 200
    assert requests.get(f"{url}/api/plain/x", timeout=5).status_code == 404
