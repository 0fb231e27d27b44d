"""The check runner in-process, with a recording report callback."""

import threading

import pytest

from devconsul.checks import CheckRunner
from devconsul.definitions import CheckDefinition
from devconsul.durations import MILLISECOND, SECOND
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


@pytest.fixture
def runner():
    recorder = Recorder()
    scheduler = Scheduler().start()
    runner = CheckRunner(recorder, scheduler)
    runner.recorder = recorder
    yield runner
    runner.shutdown()
    scheduler.stop()


def test_http_check_runs_on_its_interval(runner, target):
    runner.start("c", CheckDefinition(http=f"{target.url}/health", interval=SECOND))
    wait_until(lambda: len(runner.recorder.statuses("c")) >= 2, timeout=5)
    assert set(runner.recorder.statuses("c")) == {"passing"}


def test_sub_second_interval_is_raised_to_one_second(runner, target):
    runner.start(
        "c", CheckDefinition(http=f"{target.url}/health", interval=MILLISECOND)
    )
    wait_until(lambda: runner.recorder.statuses("c"), timeout=3)
    count = len(target.requests)
    wait_until(lambda: len(target.requests) > count, timeout=3)
    # At 1ms there would be hundreds of probes by now.
    assert len(target.requests) <= 4


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
    runner.start("c", CheckDefinition(http=f"{target.url}/health", interval=SECOND))
    wait_until(lambda: runner.recorder.statuses("c"), timeout=3)
    runner.stop("c")
    seen = len(runner.recorder.statuses("c"))
    threading.Event().wait(1.5)
    assert len(runner.recorder.statuses("c")) == seen


def test_failures_before_critical(runner, target):
    target.routes["/health"] = (200, "ok")
    runner.start(
        "c",
        CheckDefinition(
            http=f"{target.url}/health", interval=SECOND, failures_before_critical=2
        ),
    )
    wait_until(lambda: runner.recorder.statuses("c"), timeout=3)
    target.routes["/health"] = (500, "down")
    wait_until(lambda: "critical" in runner.recorder.statuses("c"), timeout=6)
    # One failure was swallowed: at least two probes failed before critical.
    failed = [r for r in target.requests if r["path"] == "/health"]
    assert len(failed) >= 3
