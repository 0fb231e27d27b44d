from decimal import Decimal

import pytest

from order_service.money import InvalidAmount, format_amount, parse_amount


@pytest.mark.parametrize(
    ("value", "amount"),
    [
        (Decimal("12.5"), "12.50"),
        (Decimal("0.01"), "0.01"),
        (Decimal("1E+2"), "100.00"),
        (Decimal("12.500"), "12.50"),  # trailing zeros are not extra precision
        (7, "7.00"),
        (1_000_000_000, "1000000000.00"),
        ("999999999.99", "999999999.99"),
        ("0.1", "0.10"),
        ("0.05", "0.05"),
        ("1000000000.0", "1000000000.00"),
        ("42", "42.00"),
    ],
)
def test_accepted_amounts_are_exact(value, amount):
    assert format_amount(parse_amount(value)) == amount


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (Decimal(0), "greater than 0"),
        (-1, "greater than 0"),
        (Decimal("1000000000.01"), "at most 1000000000"),
        (Decimal("1E+400"), "at most 1000000000"),
        (Decimal("NaN"), "greater than 0"),
        (Decimal("0.001"), "at most 2 decimal places"),
        (Decimal("1.005"), "at most 2 decimal places"),
        ("0", "decimal string"),
        ("0.00", "decimal string"),
        ("-1", "decimal string"),
        ("1e3", "decimal string"),
        ("1_000", "decimal string"),
        (" 5", "decimal string"),
        ("NaN", "decimal string"),
        ("١٢", "decimal string"),  # Arabic-Indic digits: Decimal() would take them
        ("12.345", "decimal string"),
        ("1000000000.01", "decimal string"),
        ("01.50", "decimal string"),
        (True, "number or a decimal string"),
        (None, "number or a decimal string"),
        (
            1.5,
            "number or a decimal string",
        ),  # floats never reach here: JSON gives Decimal
        ([1], "number or a decimal string"),
    ],
)
def test_rejected_amounts_say_why(value, message):
    with pytest.raises(InvalidAmount, match=message):
        parse_amount(value)
