"""Exact money: amounts are Decimals with at most two places, never floats.

AMOUNT_STRING_PATTERN is also the OpenAPI document's, so a string the document calls valid is
exactly a string the service accepts.
"""

import re
from decimal import Decimal

CENT = Decimal("0.01")
MAXIMUM = Decimal(1000000000)
# 0.01 .. 1000000000.00 in plain notation, at most 2 decimals, no sign, no leading zeros.
# (Decimal() alone would also take "1_000", "1e3", "NaN" and non-ASCII digits.)
AMOUNT_STRING_PATTERN = (
    r"^([1-9][0-9]{0,8}(\.[0-9]{1,2})?|0\.(0[1-9]|[1-9][0-9]?)|1000000000(\.00?)?)$"
)


class InvalidAmount(ValueError):
    """The message says what is wrong, for the field's entry in the error details."""


def parse_amount(value: object) -> Decimal:
    """A positive amount of at most 1,000,000,000 with at most 2 decimals, from a JSON number
    (parsed as int or Decimal, never float) or a string."""
    if isinstance(value, str):
        if not re.fullmatch(AMOUNT_STRING_PATTERN, value):
            raise InvalidAmount(
                "must be a decimal string from 0.01 to 1000000000 such as 12.50"
            )
        return Decimal(value).quantize(CENT)
    if isinstance(value, bool) or not isinstance(value, (int, Decimal)):
        raise InvalidAmount("must be a number or a decimal string")
    amount = Decimal(value)
    if not amount.is_finite() or amount <= 0 or amount > MAXIMUM:
        raise InvalidAmount("must be greater than 0 and at most 1000000000")
    if amount != amount.quantize(CENT):
        raise InvalidAmount("must have at most 2 decimal places")
    return amount.quantize(CENT)


def format_amount(amount: Decimal) -> str:
    return f"{amount.quantize(CENT):f}"
