from decimal import Decimal

import pytest
from sqlalchemy import inspect, text

from order_service.models import Order, db

AMOUNTS = ["0.01", "0.10", "12.50", "999999999.99", "1000000000.00", "123456789.07"]


def test_amount_column_is_numeric_12_2(app):
    with app.app_context():
        column = {c["name"]: c for c in inspect(db.engine).get_columns("orders")}[
            "total_amount"
        ]
        assert str(column["type"]).upper().replace(" ", "") == "NUMERIC(12,2)"


@pytest.mark.parametrize("amount", AMOUNTS)
def test_amounts_round_trip_exactly(app, amount):
    with app.app_context():
        order = Order(user_id=1, total_amount=Decimal(amount))
        db.session.add(order)
        db.session.commit()
        order_id = order.id
        db.session.remove()
        stored = db.session.get(Order, order_id)
        assert stored.total_amount == Decimal(amount)
        assert stored.to_json()["total_amount"] == amount
        assert (
            db.session.execute(
                text("SELECT count(*) FROM orders WHERE total_amount > 0")
            ).scalar()
            == 1
        )
