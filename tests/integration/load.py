"""Steady client load from a few threads, recording every outcome, for failover scenarios;
and the calls such load is made of, through the gateway."""

import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Self

import requests

from tests.integration.api import TIMEOUT

Call = Callable[[requests.Session, int], requests.Response]


def get_user(gateway: str, user_id: int, timeout: float = TIMEOUT) -> Call:
    return lambda session, n: session.get(
        f"{gateway}/api/users/{user_id}", timeout=timeout
    )


def post_order(
    gateway: str, user_id: int, keys: list[str], timeout: float = TIMEOUT
) -> Call:
    """POSTs an order through the gateway with a new Idempotency-Key each time, recorded
    in `keys`."""
    return post_order_at([f"{gateway}/api/orders"], user_id, keys, timeout)


def post_order_at(
    urls: list[str], user_id: int, keys: list[str], timeout: float = TIMEOUT
) -> Call:
    """Like post_order, to each of `urls` (order collections) in turn."""

    def call(session, n):
        key = f"load-{uuid.uuid4()}"
        keys.append(key)
        return session.post(
            urls[n % len(urls)],
            json={"user_id": user_id, "total_amount": "1.00"},
            headers={"Idempotency-Key": key},
            timeout=timeout,
        )

    return call


def user_view(gateway: str, user_id: int, timeout: float = TIMEOUT) -> Call:
    """The aggregated view; its orders are best effort, so a view without them fails."""

    def call(session, n):
        resp = session.get(f"{gateway}/api/views/users/{user_id}", timeout=timeout)
        if resp.status_code == 200 and resp.json()["errors"]:
            resp.status_code = 502  # recorded as a failure, with the body saying why
        return resp

    return call


@dataclass(frozen=True)
class Outcome:
    at: float
    kind: str
    status: int | None  # None: no HTTP answer at all
    served_by: str | None
    error: str | None = None

    @property
    def ok(self) -> bool:
        """Answered with success: every call made by load is one that succeeds when nothing
        is wrong, so a 4xx (a user not found, an order refused) fails as a 5xx does."""
        return self.status is not None and 200 <= self.status < 300


class Load:
    """`with Load({"get": call, ...}) as load:` runs until the block ends."""

    def __init__(self, calls: dict[str, Call], threads: int = 4, pause: float = 0.01):
        self.calls = calls
        self.threads = threads
        self.pause = pause
        self.outcomes: list[Outcome] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._workers: list[threading.Thread] = []

    def start(self) -> Self:
        for n in range(self.threads):
            worker = threading.Thread(target=self._run, args=(n,), daemon=True)
            worker.start()
            self._workers.append(worker)
        return self

    def stop(self) -> None:
        self._stop.set()
        for worker in self._workers:
            worker.join(timeout=30)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _run(self, worker: int) -> None:
        kinds = list(self.calls)
        with requests.Session() as session:
            n = 0
            while not self._stop.is_set():
                kind = kinds[(worker + n) % len(kinds)]
                self._record(self._call(kind, session, worker * 1_000_000 + n))
                n += 1
                time.sleep(self.pause)

    def _call(self, kind: str, session: requests.Session, n: int) -> Outcome:
        try:
            resp = self.calls[kind](session, n)
        except requests.RequestException as exc:
            return Outcome(time.monotonic(), kind, None, None, repr(exc))
        error = None if 200 <= resp.status_code < 300 else resp.text[:300]
        return Outcome(
            time.monotonic(),
            kind,
            resp.status_code,
            resp.headers.get("X-Served-By"),
            error,
        )

    def _record(self, outcome: Outcome) -> None:
        with self._lock:
            self.outcomes.append(outcome)

    def count(self, kind: str | None = None, since: float = 0.0) -> int:
        with self._lock:
            return sum(
                1 for o in self.outcomes if kind in (None, o.kind) and o.at >= since
            )

    def failures(self) -> list[Outcome]:
        with self._lock:
            return [o for o in self.outcomes if not o.ok]
