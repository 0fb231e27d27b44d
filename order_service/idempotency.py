"""Idempotency keys: how long one is honoured, and the sweep that deletes those past it.

A key is honoured for `IDEMPOTENCY_KEY_TTL` seconds from its order's creation (24 h by default,
as Stripe keeps its keys; 0: for ever). Within that time the same key gets the original order,
or 409 with another body; after it, the key is free again and makes a new order. The key's
row is written in its order's transaction, so the order's `created_at` is the key's age and the
table needs no column of its own (nor a migration of databases made before expiry existed).

Whether a key has expired is decided when it is read, so the sweep only reclaims space: after
a keyed order is answered, at most once every SWEEP_EVERY seconds per process, it reads the
SWEEP_BATCH oldest keys (by order id, which grows with time: when the oldest are still live, so
are the rest) and deletes the expired among them. Its cost is bounded by the batch, whatever the
table holds; a full batch makes the next keyed order sweep again, until the backlog is gone.
"""

import logging
import threading
import time
from datetime import timedelta

from flask import Response
from sqlalchemy import Delete, Engine, Select, bindparam, delete, select
from sqlalchemy.exc import SQLAlchemyError

from chassis.storage import as_utc, read_row, utcnow
from order_service.models import IdempotencyKey, Order, db

__all__ = ["EXTENSION", "IdempotencyKeys"]

log = logging.getLogger("orders.idempotency")

EXTENSION = "idempotency_keys"  # the app's IdempotencyKeys in app.extensions
# Seconds between the sweeps of one process, unless the last one was full.
SWEEP_EVERY = 60.0
SWEEP_BATCH = 1000  # keys one sweep looks at (and at most deletes)

ORDERS = Order.__table__
KEYS = IdempotencyKey.__table__
# The key's request fingerprint beside its order's columns (created_at: the key's age).
RECORD = (
    select(KEYS.c.request_hash, ORDERS)
    .join(ORDERS, ORDERS.c.id == KEYS.c.order_id)
    .where(KEYS.c.key == bindparam("key"))
)


def oldest_keys(batch: int) -> Select:
    """The order ids and creation times of the `batch` oldest keys, read in order from
    ix_idempotency_keys_order_id. No condition on the time here: PostgreSQL, guessing how
    few orders match one, would rather scan the orders than look up a batch of them."""
    return (
        select(KEYS.c.order_id, ORDERS.c.created_at)
        .join(ORDERS, ORDERS.c.id == KEYS.c.order_id)
        .order_by(KEYS.c.order_id)
        .limit(batch)
    )


def forget(order_ids: list[int]) -> Delete:
    """Delete the keys of these orders: by order, so that a key another request has taken
    again since is left alone."""
    return delete(KEYS).where(KEYS.c.order_id.in_(order_ids))


class IdempotencyKeys:
    """The keys of one app: their records, read with expiry in mind, and the sweep."""

    def __init__(
        self,
        ttl: float,
        sweep_every: float = SWEEP_EVERY,
        batch: int = SWEEP_BATCH,
        clock=time.monotonic,
    ):
        self.ttl = ttl
        self._max_age = timedelta(seconds=ttl)
        self.sweep_every = sweep_every
        self.batch = batch
        self.clock = clock
        self._oldest = oldest_keys(batch)
        self._next_sweep = 0.0  # the clock's time; the first keyed order sweeps
        self._lock = threading.Lock()

    def find(self, key: str) -> tuple | None:
        """The record of `key`, live or expired (`live` tells): the key's request
        fingerprint and its order's columns. Read outside the session (one SELECT, no
        transaction): the user check that follows a first use runs with no transaction
        open, and after a lost race the winner's committed row is what a fresh read sees."""
        return read_row(RECORD, {"key": key})

    def live(self, record) -> bool:
        return not self._expired(record.created_at, utcnow())

    def _expired(self, created_at, now) -> bool:
        """Whether a key whose order was made at `created_at` is past its TTL at `now`."""
        return bool(self.ttl) and as_utc(created_at) < now - self._max_age

    def release(self, expired) -> None:
        """Free the key whose `expired` record `find` read, for a new order: in the session's
        transaction, so it commits with the new order's key or not at all. By the old
        order (one key each), so a key another request took again meanwhile stays."""
        db.session.execute(forget([expired.id]))

    def sweep_after(self, response: Response) -> None:
        """Sweep once `response` is sent, if this process's turn has come."""
        if not self.ttl:
            return
        with self._lock:  # one sweep at a time per process, whatever its threads
            now = self.clock()
            if now < self._next_sweep:
                return
            self._next_sweep = now + self.sweep_every
        engine = db.engine  # the app's: the sweep runs after the request's context ends
        response.call_on_close(lambda: self.sweep(engine))

    def sweep(self, engine: Engine) -> int:
        """Delete the expired among the oldest `batch` keys; how many went. Best effort: a
        failure is logged, and the keys wait for the next sweep."""
        if not self.ttl:
            return 0
        now = utcnow()
        try:
            with engine.begin() as connection:
                oldest = connection.execute(self._oldest).all()
                expired = [order for order, made in oldest if self._expired(made, now)]
                if expired:
                    connection.execute(forget(expired))
        except SQLAlchemyError as exc:
            log.warning("sweeping expired idempotency keys failed: %s", exc)
            return 0
        if expired:
            log.info("deleted %d expired idempotency keys", len(expired))
        if len(expired) >= self.batch:  # a backlog: the next keyed order sweeps again
            with self._lock:
                self._next_sweep = 0.0
        return len(expired)
