import threading
import time

from devconsul.scheduler import Scheduler, WorkerPool


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


def test_worker_pool_runs_jobs_concurrently_and_survives_failures():
    pool = WorkerPool(2, "test")
    started = threading.Barrier(3, timeout=5)
    pool.submit(lambda: 1 / 0)
    pool.submit(started.wait)
    pool.submit(started.wait)
    started.wait()  # both jobs ran at once, after the failing one
    pool.shutdown()
