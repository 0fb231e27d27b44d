"""The check runner in-process, with a recording report callback."""

import threading

import pytest

from devconsul.checks import CheckRunner
from devconsul.definitions import CheckDefinition
from devconsul.durations import MILLISECOND
from devconsul.scheduler import Scheduler
from tests.support.processes import wait_until


class Recorder:
    def __init__(self):
        self.results: list[tuple[str, str, str]] = []
        self.lock = threading.Lock()

    def __call__(self, check_id, status, output):
        with self.lock:
            self.results.append((check_id, status, output))

    def statuses(self, check_id):
        with self.lock:
            return [s for c, s, _ in self.results if c == check_id]


def _runner(**kwargs):
    recorder = Recorder()
    scheduler = Scheduler().start()
    runner = CheckRunner(recorder, scheduler, **kwargs)
    runner.recorder = recorder
    return runner, scheduler


@pytest.fixture
def runner():
    """A runner with a 100 ms interval floor, so interval checks repeat quickly."""
    runner, scheduler = _runner(min_interval=100 * MILLISECOND)
    yield runner
    runner.shutdown()
    scheduler.stop()


@pytest.fixture
def consul_runner():
    """A runner with Consul's own 1 s floor."""
    runner, scheduler = _runner()
    yield runner
    runner.shutdown()
    scheduler.stop()


FAST = 100 * MILLISECOND


def test_http_check_runs_on_its_interval(runner, target):
    runner.start("c", CheckDefinition(http=f"{target.url}/health", interval=FAST))
    wait_until(lambda: len(runner.recorder.statuses("c")) >= 2, timeout=5)
    assert set(runner.recorder.statuses("c")) == {"passing"}


def test_sub_second_interval_is_raised_to_one_second(consul_runner, target):
    check = CheckDefinition(http=f"{target.url}/health", interval=MILLISECOND)
    consul_runner.start("c", check)
    wait_until(lambda: len(target.requests) >= 2, timeout=4)
    first, second = (r["at"] for r in target.requests[:2])
    assert second - first >= 0.9


def test_ttl_expiry_with_last_output(runner):
    runner.start("t", CheckDefinition(ttl=300 * MILLISECOND))
    wait_until(lambda: runner.recorder.statuses("t"), timeout=3)
    assert runner.recorder.results[-1] == ("t", "critical", "TTL expired")
    runner.ttl_touch("t", "all good")
    wait_until(lambda: len(runner.recorder.statuses("t")) == 2, timeout=3)
    assert runner.recorder.results[-1][2] == (
        "TTL expired (last output before timeout follows): all good"
    )


def test_touch_postpones_expiry(runner):
    runner.start("t", CheckDefinition(ttl=600 * MILLISECOND))
    for _ in range(4):
        threading.Event().wait(0.2)
        runner.ttl_touch("t", "")
    assert runner.recorder.statuses("t") == []


def test_stopped_check_reports_nothing_more(runner, target):
    runner.start("c", CheckDefinition(http=f"{target.url}/health", interval=FAST))
    wait_until(lambda: runner.recorder.statuses("c"), timeout=3)
    runner.stop("c")
    seen = len(runner.recorder.statuses("c"))
    threading.Event().wait(0.4)
    assert len(runner.recorder.statuses("c")) == seen


def test_failures_before_critical(runner, target):
    target.routes["/health"] = (200, "ok")
    runner.start(
        "c",
        CheckDefinition(
            http=f"{target.url}/health", interval=FAST, failures_before_critical=2
        ),
    )
    wait_until(lambda: runner.recorder.statuses("c"), timeout=3)
    target.routes["/health"] = (500, "down")
    wait_until(lambda: "critical" in runner.recorder.statuses("c"), timeout=6)
    # One failure was swallowed: at least two probes failed before critical.
    failed = [r for r in target.requests if r["path"] == "/health"]
    assert len(failed) >= 3
