from decimal import Decimal

import pytest

from chassis.errors import APIError
from order_service.validation import (
    clean_filters,
    clean_idempotency_key,
    clean_new_order,
    clean_status_change,
    request_fingerprint,
)


def problems_of(call, *args):
    with pytest.raises(APIError) as caught:
        call(*args)
    assert (caught.value.status, caught.value.code) == (400, "validation_failed")
    return caught.value.details


@pytest.mark.parametrize(
    ("payload", "cleaned"),
    [
        ({"user_id": 1, "total_amount": "12.50"}, (1, Decimal("12.50"))),
        ({"user_id": Decimal("3.0"), "total_amount": Decimal(1)}, (3, Decimal("1.00"))),
        ({"user_id": 2147483647, "total_amount": 5}, (2147483647, Decimal("5.00"))),
    ],
)
def test_clean_new_order(payload, cleaned):
    assert clean_new_order(payload) == cleaned


@pytest.mark.parametrize(
    ("payload", "fields"),
    [
        ({}, {"user_id", "total_amount"}),
        ({"user_id": 0, "total_amount": "1"}, {"user_id"}),
        ({"user_id": 2147483648, "total_amount": "1"}, {"user_id"}),
        ({"user_id": True, "total_amount": "1"}, {"user_id"}),
        ({"user_id": "7", "total_amount": "1"}, {"user_id"}),
        ({"user_id": Decimal("1.5"), "total_amount": "1"}, {"user_id"}),
        ({"user_id": Decimal("1E+999999999"), "total_amount": "1"}, {"user_id"}),
        ({"user_id": 1, "total_amount": "0"}, {"total_amount"}),
        ({"user_id": 1, "total_amount": "1", "note": "x"}, {"note"}),
    ],
)
def test_clean_new_order_names_each_bad_field(payload, fields):
    assert set(problems_of(clean_new_order, payload)) == fields


@pytest.mark.parametrize(
    "status", ["pending", "paid", "shipped", "delivered", "cancelled"]
)
def test_clean_status_change(status):
    assert clean_status_change({"status": status}) == status


@pytest.mark.parametrize(
    ("payload", "fields"),
    [
        ({}, {"status"}),
        ({"status": "PAID"}, {"status"}),
        ({"status": None}, {"status"}),
        ({"status": "paid", "x": 1}, {"x"}),
    ],
)
def test_clean_status_change_errors(payload, fields):
    assert set(problems_of(clean_status_change, payload)) == fields


@pytest.mark.parametrize(
    ("args", "filters"),
    [
        ({}, {}),
        ({"user_id": "5"}, {"user_id": 5}),
        ({"status": "paid", "user_id": "1"}, {"status": "paid", "user_id": 1}),
    ],
)
def test_clean_filters(args, filters):
    assert clean_filters(args) == filters


@pytest.mark.parametrize(
    ("args", "fields"),
    [
        ({"user_id": ""}, {"user_id"}),
        ({"user_id": "-1"}, {"user_id"}),
        ({"user_id": "99999999999"}, {"user_id"}),
        ({"user_id": "²"}, {"user_id"}),
        ({"status": "gone", "user_id": "x"}, {"status", "user_id"}),
    ],
)
def test_clean_filters_errors(args, fields):
    assert set(problems_of(clean_filters, args)) == fields


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        (None, None),
        ("a", "a"),
        ("~" * 255, "~" * 255),
        ("order-1:retry", "order-1:retry"),
    ],
)
def test_clean_idempotency_key(raw, key):
    assert clean_idempotency_key(raw) == key


@pytest.mark.parametrize("raw", ["", " ", "a b", "x" * 256, "é", "a\tb"])
def test_clean_idempotency_key_errors(raw):
    assert set(problems_of(clean_idempotency_key, raw)) == {"Idempotency-Key"}


def test_fingerprint_is_about_meaning_not_spelling():
    assert request_fingerprint(1, Decimal("12.5")) == request_fingerprint(
        1, Decimal("12.50")
    )
    assert request_fingerprint(1, Decimal("12.50")) != request_fingerprint(
        2, Decimal("12.50")
    )
    assert request_fingerprint(1, Decimal("12.50")) != request_fingerprint(
        1, Decimal("12.51")
    )
