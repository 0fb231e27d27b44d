"""Orders and the idempotency records that make POST /orders safe to retry."""

from decimal import Decimal

from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import ForeignKey, Index, Integer, Numeric, String
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from chassis.storage import SESSION_OPTIONS, Timestamps, iso_utc
from order_service.money import CENT, format_amount

db = SQLAlchemy(session_options=SESSION_OPTIONS)


class Money(TypeDecorator):
    """NUMERIC(12,2) in the schema on every database, Decimal in Python.

    PostgreSQL keeps NUMERIC exactly. SQLite has no decimal type: NUMERIC affinity stores the
    value as an integer or a double, exact for the 12 significant digits allowed here, so it is
    read back through str() and quantized instead of letting SQLAlchemy warn about floats.
    """

    impl = Numeric(12, 2)
    cache_ok = True

    def load_dialect_impl(self, dialect):
        if dialect.name == "sqlite":
            return dialect.type_descriptor(Numeric(12, 2, asdecimal=False))
        return dialect.type_descriptor(Numeric(12, 2))

    def process_bind_param(self, value, dialect):
        if value is None or dialect.name != "sqlite":
            return value
        return format_amount(value)

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return Decimal(str(value)).quantize(CENT)


class Order(Timestamps, db.Model):
    __tablename__ = "orders"
    # A user's orders in id order (GET /orders?user_id=, /orders/user/<id>) come straight
    # from the first index: no sort, nothing read of other users' orders. The orders in one
    # status (GET /orders?status=) come from the second: a rare status would otherwise walk
    # the whole table for one page. A user's orders in one status come from the first
    # (order_service.orders.order_conditions says how SQLite is kept to it).
    __table_args__ = (
        Index("ix_orders_user_id_id", "user_id", "id"),
        Index("ix_orders_status_id", "status", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # No foreign key: users live in user-service's own database.
    user_id: Mapped[int] = mapped_column(Integer, nullable=False)
    total_amount: Mapped[Decimal] = mapped_column(Money, nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="pending")

    def to_json(self) -> dict:
        """The API's order; also called as Order.to_json(row) on a Core row of the table."""
        return {
            "id": self.id,
            "user_id": self.user_id,
            "total_amount": format_amount(self.total_amount),
            "status": self.status,
            "created_at": iso_utc(self.created_at),
            "updated_at": iso_utc(self.updated_at),
        }


class IdempotencyKey(db.Model):
    """One row per Idempotency-Key, written in the same transaction as its order.

    The primary key on `key` makes concurrent first uses race in the database: one commits,
    the others get an IntegrityError and read the winner's order. The index on `order_id`
    gives the sweep of expired keys the oldest first (order_service.idempotency).
    """

    __tablename__ = "idempotency_keys"
    __table_args__ = (Index("ix_idempotency_keys_order_id", "order_id"),)

    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), nullable=False)
