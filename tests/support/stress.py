"""Loads that integration tests put on a real service: requests released all at once, and a
stream of writes cut short by SIGKILL, with what the database holds afterwards."""

import signal
import threading
from collections.abc import Callable, Sized
from concurrent.futures import ThreadPoolExecutor

import requests
from sqlalchemy import create_engine, text

from tests.support.processes import ManagedProcess, wait_until
from tests.support.services import stop_now


def all_at_once(call: Callable[[int], object], count: int) -> list:
    """`call(0)` ... `call(count - 1)`, released together from `count` threads."""
    barrier = threading.Barrier(count)

    def run(index: int):
        barrier.wait(timeout=30)
        return call(index)

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(run, range(count)))


def sigkill_during_writes(
    service: ManagedProcess,
    write: Callable[[int, int], None],
    acknowledged: Sized,
    at_least: int,
    writers: int = 6,
) -> None:
    """Call `write(writer, i)` for i = 0, 1, ... from `writers` threads, each recording what the
    service acknowledged in `acknowledged`; once it holds `at_least` entries, SIGKILL the
    service while writes are in flight, and return when every writer has stopped."""
    stop = threading.Event()

    def run(writer: int) -> None:
        for i in range(10_000):
            try:
                write(writer, i)
            except requests.RequestException:
                return  # the service is gone
            if stop.is_set():
                return

    threads = [threading.Thread(target=run, args=(n,)) for n in range(writers)]
    for thread in threads:
        thread.start()
    try:
        wait_until(
            lambda: len(acknowledged) >= at_least,
            timeout=30,
            what=f"{at_least} acknowledged writes",
        )
        service.signal(
            signal.SIGKILL
        )  # writers are mid-request: the kill lands inside writes
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
        stop_now(service)


def rows_after_crash(database_url: str, *queries: str) -> list[list]:
    """Each query's rows, read straight from the database; a SQLite file must also pass its
    integrity check."""
    engine = create_engine(database_url)
    with engine.connect() as connection:
        results = [connection.execute(text(query)).all() for query in queries]
        if engine.dialect.name == "sqlite":
            assert connection.execute(text("PRAGMA integrity_check")).scalar() == "ok"
    engine.dispose()
    return results
