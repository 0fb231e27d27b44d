import threading
import time

from devconsul.scheduler import Scheduler


def test_jobs_run_in_time_order_and_survive_failures():
    scheduler = Scheduler().start()
    ran = []
    done = threading.Event()
    try:
        scheduler.call_later(0.1, lambda: (ran.append("late"), done.set()))
        scheduler.call_later(0.0, lambda: 1 / 0)
        scheduler.call_later(0.02, lambda: ran.append("early"))
        assert done.wait(3)
        assert ran == ["early", "late"]
    finally:
        scheduler.stop()


def test_stop_returns_promptly_with_far_jobs_pending():
    scheduler = Scheduler().start()
    scheduler.call_later(3600, lambda: None)
    start = time.monotonic()
    scheduler.stop()
    assert time.monotonic() - start < 2
