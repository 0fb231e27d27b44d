import gc
import http.client
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest
import requests

from chassis.env import ConfigError
from discovery.consul_client import ConsulSettings, make_consul
from discovery.gunicorn_hooks import DRAINED, DRAINING, DrainFlag, service_hooks
from discovery.watcher import HealthWatcher
from tests.conftest import Agent
from tests.support.processes import ManagedProcess, free_port, python_module, wait_until

SERVICE = "lifecycle-test"
CHECK_INTERVAL = 1.0


# -- unit ----------------------------------------------------------------------------------


def test_service_hooks_gives_gunicorn_settings_from_env():
    env = {
        "PORT": "9123",
        "BIND_HOST": "127.0.0.1",
        "WEB_CONCURRENCY": "3",
        "GUNICORN_THREADS": "5",
    }
    hooks = service_hooks("hooks-unit", "/u", 8001, env)
    assert hooks["bind"] == ["127.0.0.1:9123"]
    assert (hooks["workers"], hooks["threads"], hooks["worker_class"]) == (
        3,
        5,
        "chassis.worker.JSONErrorWorker",
    )
    assert {"when_ready", "on_exit", "post_worker_init"} <= hooks.keys()


def test_service_hooks_defaults():
    hooks = service_hooks(
        "hooks-defaults", "/u", 8001, {"SERVICE_ADDRESS": "127.0.0.1"}
    )
    assert hooks["bind"] == ["0.0.0.0:8001"]
    assert (hooks["workers"], hooks["threads"]) == (2, 4)


@pytest.mark.parametrize(
    "env, variable",
    [
        ({"WEB_CONCURRENCY": "0"}, "WEB_CONCURRENCY"),
        ({"GUNICORN_THREADS": "many"}, "GUNICORN_THREADS"),
        ({"CHECK_INTERVAL": "soon"}, "CHECK_INTERVAL"),
        ({"PORT": "-1"}, "PORT"),
        # Read lazily by the first Consul call, these once left a service serving that
        # never registered ("will retry") or failed in when_ready without a name.
        ({"CONSUL_HTTP_ADDR": "ftp://x"}, "CONSUL_HTTP_ADDR"),
        ({"CONSUL_HTTP_SSL": "maybe"}, "CONSUL_HTTP_SSL"),
        ({"CONSUL_TIMEOUT": "0"}, "CONSUL_TIMEOUT"),
        ({"LOG_LEVEL": "verbose"}, "LOG_LEVEL"),
    ],
)
def test_bad_environment_fails_at_config_load(env, variable):
    with pytest.raises(ConfigError) as err:
        service_hooks("hooks-bad", "/u", 8001, {"SERVICE_ADDRESS": "127.0.0.1", **env})
    assert str(err.value).startswith(f"{variable}:")


@pytest.mark.parametrize("raw", ["debug", "Debug", "DEBUG", " debug "])
def test_log_level_in_any_case(raw):
    hooks = service_hooks(
        f"hooks-log-{raw.strip()}",
        "/u",
        8001,
        {"SERVICE_ADDRESS": "127.0.0.1", "LOG_LEVEL": raw},
    )
    assert hooks["when_ready"].__self__.log_level == "DEBUG"


def test_consul_settings_checked_at_boot_reach_registration():
    env = {"SERVICE_ADDRESS": "127.0.0.1", "CONSUL_HTTP_ADDR": "https://c.example:8501"}
    hooks = service_hooks("hooks-consul", "/u", 8001, env)
    settings = hooks["when_ready"].__self__.registration.consul_settings
    assert (settings.scheme, settings.host, settings.port) == (
        "https",
        "c.example",
        8501,
    )


@pytest.mark.parametrize(
    "package, variable, value",
    [
        ("user_service", "CONSUL_HTTP_ADDR", "ftp://x"),
        ("user_service", "LOG_LEVEL", "verbose"),
        # The app's own settings, read in the workers: checked before binding all the same.
        ("user_service", "MAX_BODY_BYTES", "lots"),
        ("order_service", "USER_SERVICE_TIMEOUT", "0"),
    ],
)
def test_gunicorn_refuses_to_start_on_a_bad_setting(package, variable, value, tmp_path):
    env = {
        **os.environ,
        "SERVICE_ADDRESS": "127.0.0.1",
        "PORT": str(free_port()),
        "CONSUL_HTTP_ADDR": f"127.0.0.1:{free_port()}",  # no agent: nothing to join
        "DATABASE_URL": f"sqlite:///{tmp_path / 'service.db'}",
        variable: value,
    }
    done = subprocess.run(
        [sys.executable, "-m", "gunicorn", "-c", f"python:{package}.gunicorn_conf"]
        + [f"{package}.wsgi:app"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode != 0
    assert f"{variable}:" in output
    # Stopped at its configuration: never listening, so never registered in Consul.
    assert "Listening at" not in output


def test_drain_flag_is_shared_with_forked_children():
    flag = DrainFlag()
    pid = os.fork()
    if pid == 0:
        flag.set(DRAINING)
        os._exit(0)
    os.waitpid(pid, 0)
    assert flag.get() == DRAINING


def worker_exit_after(state_changes, drain_seconds=1.0):
    """Run a worker's deferred SIGTERM with the master's flag going through `state_changes`
    [(delay, state)]; return seconds until the worker was told to exit."""
    hooks = service_hooks(
        f"hooks-worker-{len(state_changes)}-{drain_seconds}",
        "/u",
        8001,
        {"SERVICE_ADDRESS": "127.0.0.1", "DRAIN_SECONDS": str(drain_seconds)},
    )
    lifecycle = hooks["post_worker_init"].__self__
    exited = threading.Event()
    started = time.monotonic()
    thread = threading.Thread(
        target=lifecycle._exit_after_drain, args=(lambda sig, frame: exited.set(), 15)
    )
    thread.start()
    for delay, state in state_changes:
        time.sleep(delay)
        lifecycle.flag.set(state)
    assert exited.wait(10)
    thread.join()
    return time.monotonic() - started


def test_worker_keeps_serving_while_the_master_drains():
    # The group SIGTERM reached the worker; the master starts draining a moment later.
    elapsed = worker_exit_after([(0.2, DRAINING), (0.8, DRAINED)])
    assert elapsed >= 1.0


def test_worker_stops_soon_when_no_drain_begins():
    # A plain stop of one worker (fewer workers, reload): no drain, exit after the grace.
    assert worker_exit_after([]) < 3.0


def test_the_masters_exit_leaves_the_collector_frozen(unfrozen_gc):
    """on_exit is the master's last step before it exits: its interpreter's teardown must
    not walk the whole heap with the garbage collector."""
    hooks = service_hooks(
        "hooks-exit",
        "/u",
        8001,
        # Nobody listens there: the deregistration on the way out fails, quietly.
        {
            "SERVICE_ADDRESS": "127.0.0.1",
            "CONSUL_HTTP_ADDR": f"127.0.0.1:{free_port()}",
        },
    )
    hooks["on_exit"](None)
    assert gc.get_freeze_count() > 0


# -- integration: real gunicorn masters and a devconsul agent ------------------------------


def start_instance(agent, port, drain=2.0, token="", **extra_env):
    env = {
        "CONSUL_HTTP_ADDR": agent.addr,
        "CONSUL_HTTP_TOKEN": token,
        "SERVICE_ADDRESS": "127.0.0.1",
        "BIND_HOST": "127.0.0.1",
        "PORT": str(port),
        "CHECK_INTERVAL": f"{CHECK_INTERVAL:g}s",
        "CHECK_TIMEOUT": "1s",
        "DRAIN_SECONDS": str(drain),
        "WEB_CONCURRENCY": "1",
        "GUNICORN_THREADS": "2",
        **extra_env,
    }
    argv = python_module(
        "gunicorn",
        "-c",
        "python:tests.discovery.lifecycle_conf",
        "tests.discovery.lifecycle_app:app",
    )
    proc = ManagedProcess(argv, env=env, name=f"lifecycle-{port}").start()
    proc.wait_http(f"http://127.0.0.1:{port}/health", status=200)
    proc.port = port
    proc.service_id = f"{SERVICE}-127.0.0.1-{port}"
    return proc


@pytest.fixture
def instances(devconsul):
    started = []

    def start(n=1, **kwargs):
        new = [start_instance(devconsul, free_port(), **kwargs) for _ in range(n)]
        started.extend(new)
        return new

    yield start
    # SIGINT: gunicorn's quick stop, which deregisters without a drain (faster teardown).
    for proc in started:
        proc.signal(signal.SIGINT)
    try:
        for proc in started:
            wait_until(
                lambda p=proc: not p.alive(),
                timeout=10,
                what=lambda p=proc: f"{p.name} exit; log:\n{p.output()[-2000:]}",
            )
    finally:
        for proc in started:  # even when one did not exit: leave no process behind
            proc.stop()


def health(agent, passing=False):
    url = f"{agent.url}/v1/health/service/{SERVICE}" + ("?passing" if passing else "")
    return requests.get(url, timeout=2).json()


def passing_ids(agent):
    return {e["Service"]["ID"] for e in health(agent, passing=True)}


def answers(proc) -> bool:
    try:
        return requests.get(f"http://127.0.0.1:{proc.port}/whoami", timeout=1).ok
    except requests.RequestException:
        return False


@pytest.mark.integration
def test_two_instances_register_with_distinct_ids_and_pass(devconsul, instances):
    a, b = instances(2)
    wait_until(
        lambda: passing_ids(devconsul) == {a.service_id, b.service_id}, timeout=10
    )
    for entry in health(devconsul):
        svc = entry["Service"]
        assert svc["Meta"]["gateway_prefix"] == "/lifecycle"
        own = [c for c in entry["Checks"] if c["ServiceID"] == svc["ID"]]
        assert [c["CheckID"] for c in own] == [f"service:{svc['ID']}"]
        assert own[0]["Status"] == "passing"
    # registered once, from the master: exactly one log line per instance
    for proc in (a, b):
        assert proc.output().count("INFO discovery: registered") == 1
    # SIGINT is gunicorn's quick stop: no drain, but on_exit still deregisters
    a.signal(signal.SIGINT)
    wait_until(lambda: not a.alive(), timeout=10, what="exit on SIGINT")
    assert {e["Service"]["ID"] for e in health(devconsul)} == {b.service_id}


def signal_group(proc):
    proc.signal(
        signal.SIGTERM
    )  # the whole process group, workers included (a terminal)


def signal_master(proc):
    os.kill(proc.pid, signal.SIGTERM)  # the master only (docker stop, Kubernetes)


@pytest.mark.integration
@pytest.mark.parametrize("send_sigterm", [signal_group, signal_master])
def test_sigterm_leaves_passing_set_before_it_stops_answering(
    devconsul, instances, send_sigterm
):
    (proc,) = instances(1, drain=2.0)
    consul = make_consul(ConsulSettings(port=devconsul.port))
    watcher = HealthWatcher(SERVICE, consul=consul).start()
    try:
        wait_until(
            lambda: [i.id for i in watcher.snapshot().instances] == [proc.service_id],
            timeout=10,
        )
        timeline = []  # (seconds since SIGTERM, listed by the watcher, answered)
        started = time.monotonic()
        send_sigterm(proc)
        while proc.alive() and time.monotonic() - started < 15:
            listed = bool(watcher.snapshot().instances)
            timeline.append((time.monotonic() - started, listed, answers(proc)))
            time.sleep(0.05)
    finally:
        watcher.stop()
    assert not proc.alive(), "instance did not exit after its drain"
    left = next(t for t, listed, _ in timeline if not listed)
    last_answer = max(t for t, _, ok in timeline if ok)
    assert left < last_answer, timeline
    # between leaving and exiting it kept answering: no request refused while draining
    assert all(ok for t, _, ok in timeline if t <= last_answer)
    assert not health(devconsul), "deregistered on the way out"
    assert "deregistered" in proc.output()


@pytest.mark.integration
def test_sigkill_goes_critical_within_interval_plus_one_second(devconsul, instances):
    a, b = instances(2)
    wait_until(
        lambda: passing_ids(devconsul) == {a.service_id, b.service_id}, timeout=10
    )
    killed = time.monotonic()
    a.signal(signal.SIGKILL)
    wait_until(lambda: passing_ids(devconsul) == {b.service_id}, timeout=10)
    assert time.monotonic() - killed < CHECK_INTERVAL + 1.0
    statuses = {
        e["Service"]["ID"]: {c["Status"] for c in e["Checks"] if c["ServiceID"]}
        for e in health(devconsul)
    }
    assert statuses[a.service_id] == {"critical"}  # still listed: reaped only later


@pytest.mark.integration
def test_agent_restart_both_back_within_5_seconds(devconsul, instances):
    a, b = instances(2)
    wait_until(
        lambda: passing_ids(devconsul) == {a.service_id, b.service_id}, timeout=10
    )
    devconsul.restart()
    restarted = time.monotonic()
    wait_until(
        lambda: passing_ids(devconsul) == {a.service_id, b.service_id}, timeout=10
    )
    assert time.monotonic() - restarted < 5.0
    for proc in (a, b):
        assert "re-registered" in proc.output()


def watched(proc, service) -> dict:
    url = f"http://127.0.0.1:{proc.port}/watched/{service}"
    return requests.get(url, headers={"Connection": "close"}, timeout=2).json()


@pytest.mark.integration
def test_a_worker_knows_its_dependencies_before_it_serves_even_one_forked_in_an_outage(
    devconsul, instances
):
    consul = make_consul(ConsulSettings(port=devconsul.port))
    consul.agent.service.register("dep", service_id="dep-1", port=9)
    (proc,) = instances(1, LIFECYCLE_DEPENDS_ON="dep")
    first = watched(proc, "dep")  # the first request the worker ever served
    assert first["loaded"] and first["ids"] == ["dep-1"]

    devconsul.process.signal(signal.SIGKILL)
    devconsul.process.wait(5)
    os.kill(first["pid"], signal.SIGKILL)  # gunicorn forks a new worker, Consul gone
    respawned = wait_until(
        lambda: (answer := watched(proc, "dep"))["pid"] != first["pid"] and answer,
        timeout=15,
        what="a new worker",
    )
    # It inherited the master's instances: the outage costs it nothing.
    assert respawned["loaded"] and respawned["ids"] == ["dep-1"]


@pytest.fixture
def acl_agent():
    agent = Agent(free_port(), "-acl-token", "s3cret")
    yield agent
    agent.process.stop()


@pytest.mark.integration
def test_acl_token_is_sent_on_every_consul_call(acl_agent):
    proc = start_instance(acl_agent, free_port(), drain=0.5, token="s3cret")
    try:
        consul = make_consul(ConsulSettings(port=acl_agent.port, token="s3cret"))
        wait_until(
            lambda: (
                [
                    e["Service"]["ID"]
                    for e in consul.health.service(SERVICE, passing=True)[1]
                ]
                == [proc.service_id]
            ),
            timeout=10,
        )
        # a watcher without the token is refused, and says so
        anonymous = HealthWatcher(
            SERVICE, consul=make_consul(ConsulSettings(port=acl_agent.port))
        )
        try:
            assert anonymous.start().wait_ready(5)
            assert (
                anonymous.snapshot().stale
                and "Permission denied" in anonymous.snapshot().error
            )
        finally:
            anonymous.stop()
        proc.signal(
            signal.SIGTERM
        )  # drain: maintenance and deregistration need the token too
        wait_until(lambda: not proc.alive(), timeout=15, what="exit after drain")
        assert consul.health.service(SERVICE)[1] == []
        assert "WARNING" not in proc.output(), proc.output()
    finally:
        proc.stop()


def slow_request(port: int, seconds: float) -> socket.socket:
    """GET /slow/<seconds>, sent; the answer is for `answered` to read."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.sendall(
        b"GET /slow/%.1f HTTP/1.1\r\nHost: i\r\nConnection: close\r\n\r\n" % seconds
    )
    return sock


def answered(sock: socket.socket) -> bytes:
    with sock:
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    return data.split(b"\r\n", 1)[0]


@pytest.mark.integration
@pytest.mark.parametrize("send_sigterm", [signal_group, signal_master])
def test_slow_requests_in_flight_or_begun_while_draining_complete(
    devconsul, instances, send_sigterm
):
    (proc,) = instances(1, drain=1.0)
    wait_until(lambda: passing_ids(devconsul) == {proc.service_id}, timeout=10)
    before = slow_request(proc.port, 3.0)  # outlasts the drain
    send_sigterm(proc)
    wait_until(lambda: not passing_ids(devconsul), timeout=5, what="maintenance")
    during = slow_request(proc.port, 2.0)
    assert answered(before) == answered(during) == b"HTTP/1.1 200 OK"
    wait_until(lambda: not proc.alive(), timeout=15, what="exit after the drain")
    assert not health(devconsul), "deregistered on the way out"


@pytest.mark.integration
def test_an_idle_kept_alive_connection_does_not_hold_the_stop_to_the_graceful_timeout(
    devconsul, instances
):
    """The gateway's upstream pool and order-service's client keep connections open between
    requests. One still open when the drain ends (kept alive longer than the drain) is
    closed by the worker, which then exits: never held until graceful_timeout and killed."""
    (proc,) = instances(
        1, drain=0.5, GUNICORN_CMD_ARGS="--graceful-timeout 120 --keep-alive 120"
    )
    kept = http.client.HTTPConnection("127.0.0.1", proc.port, timeout=30)
    try:
        kept.request("GET", "/whoami")
        assert kept.getresponse().read()  # kept alive, now idle
        os.kill(proc.pid, signal.SIGTERM)
        wait_until(lambda: not proc.alive(), timeout=30, what="exit after the drain")
        assert kept.sock.recv(1) == b"", "closed by the worker"
    finally:
        kept.close()
    assert "SIGKILL" not in proc.output(), proc.output()


def children(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as listing:
        return [int(child) for child in listing.read().split()]


def running(pid: int) -> bool:
    """Alive and not a zombie (its parent is gone: nobody reaps it at once)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.integration
def test_workers_of_a_sigkilled_master_exit_and_the_next_start_takes_over(
    devconsul, instances
):
    (proc,) = instances(1, WEB_CONCURRENCY="2")
    wait_until(lambda: passing_ids(devconsul) == {proc.service_id}, timeout=10)
    # Passing once one worker serves; the master forks the second a moment later (later
    # still while one of its threads resolves a name: discovery.forksafe).
    workers = wait_until(
        lambda: len(found := children(proc.pid)) == 2 and found,
        timeout=10,
        what="two workers forked",
    )
    os.kill(proc.pid, signal.SIGKILL)  # the master only: its workers are orphaned
    wait_until(
        lambda: not any(running(w) for w in workers), timeout=5, what="workers exit"
    )
    wait_until(lambda: not passing_ids(devconsul), timeout=5, what="check critical")
    # Nothing deregistered it; the next start on the same port replaces the entry.
    (again,) = [start_instance(devconsul, proc.port)]
    try:
        wait_until(lambda: passing_ids(devconsul) == {proc.service_id}, timeout=10)
        assert len(health(devconsul)) == 1
    finally:
        again.signal(signal.SIGINT)
        wait_until(lambda: not again.alive(), timeout=10, what="exit on SIGINT")
        again.stop()
