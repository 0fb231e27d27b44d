"""Pure validation of order requests: bodies, query filters and the Idempotency-Key header."""

import hashlib
import json
import re
from collections.abc import Mapping
from decimal import Decimal

from chassis.inputs import require_fields, validation_failed
from chassis.storage import MAX_ID
from order_service.lifecycle import STATUSES
from order_service.money import format_amount, parse_amount

NEW_ORDER_FIELDS = ("user_id", "total_amount")
IDEMPOTENCY_KEY_MAX = 255
# visible ASCII but the comma
IDEMPOTENCY_KEY_PATTERN = rf"^[!-+\--~]{{1,{IDEMPOTENCY_KEY_MAX}}}$"


def clean_new_order(payload: Mapping) -> tuple[int, Decimal]:
    problems = require_fields(payload, NEW_ORDER_FIELDS, NEW_ORDER_FIELDS)
    user_id = amount = None
    if "user_id" in payload:
        user_id = integral(payload["user_id"])
        if not is_id(user_id):
            problems["user_id"] = f"must be an integer from 1 to {MAX_ID}"
    if "total_amount" in payload:
        try:
            amount = parse_amount(payload["total_amount"])
        except ValueError as exc:
            problems["total_amount"] = str(exc)
    if problems:
        raise validation_failed(problems)
    return user_id, amount


def clean_status_change(payload: Mapping) -> str:
    problems = require_fields(payload, ("status",), ("status",))
    status = payload.get("status")
    if "status" in payload and status not in STATUSES:
        problems["status"] = f"must be one of {', '.join(STATUSES)}"
    if problems:
        raise validation_failed(problems)
    return status


def clean_filters(args: Mapping[str, str]) -> dict:
    """`user_id` and `status` filters of GET /orders; absent ones are left out."""
    filters, problems = {}, {}
    if "user_id" in args:
        raw = args["user_id"]
        if raw.isascii() and raw.isdigit() and len(raw) <= 10 and is_id(int(raw)):
            filters["user_id"] = int(raw)
        else:
            problems["user_id"] = f"must be an integer from 1 to {MAX_ID}"
    if "status" in args:
        if args["status"] in STATUSES:
            filters["status"] = args["status"]
        else:
            problems["status"] = f"must be one of {', '.join(STATUSES)}"
    if problems:
        raise validation_failed(problems)
    return filters


def clean_idempotency_key(raw: str | None) -> str | None:
    """The header value, or None when absent: 1..255 visible ASCII characters, no comma."""
    if raw is None:
        return None
    if "," in raw:
        # Two Idempotency-Key lines reach the app as one value joined by a comma (RFC 9110,
        # section 5.3): taken as one key, "a,b" would match neither request's key.
        problem = "must be sent once, one key without a comma"
    elif not re.fullmatch(IDEMPOTENCY_KEY_PATTERN, raw):
        problem = f"must be 1 to {IDEMPOTENCY_KEY_MAX} visible ASCII characters"
    else:
        return raw
    raise validation_failed({"Idempotency-Key": problem})


def request_fingerprint(user_id: int, amount: Decimal) -> str:
    """Hash of the request's meaning, so 12.5 and "12.50" count as the same body."""
    canonical = json.dumps(
        {"total_amount": format_amount(amount), "user_id": user_id}, sort_keys=True
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def is_id(value: object) -> bool:
    return (
        isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_ID
    )


def integral(value: object) -> object:
    """JSON Schema counts 3.0 as an integer; the JSON parser made it a Decimal."""
    # Range first: int() of a huge exponent such as 1E+999999999 would exhaust memory.
    if (
        isinstance(value, Decimal)
        and 1 <= value <= MAX_ID
        and value == value.to_integral_value()
    ):
        return int(value)
    return value
