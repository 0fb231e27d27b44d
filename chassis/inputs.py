"""Reading a request: its JSON body (exact numbers), paging parameters, and field-set checks.

Every problem is an APIError with the shared error shape, so a client's mistake is a 4xx, never a 500.
"""

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal

from flask import request
from werkzeug.exceptions import RequestEntityTooLarge

from chassis.errors import APIError
from chassis.storage import MAX_ID

__all__ = [
    "DEFAULT_LIMIT",
    "MAX_LIMIT",
    "MAX_OFFSET",
    "PageRequest",
    "json_body",
    "page_params",
    "require_fields",
    "validation_failed",
]

MAX_LIMIT = 500
DEFAULT_LIMIT = 50
MAX_OFFSET = 2**62


MAX_DIGITS = 100  # no number a service reads comes near (ids < 2**63, amounts < 1e9)


def _reject_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


def _bounded_int(text: str) -> int:
    # Python refuses past 4300 digits itself, with advice about sys.set_int_max_str_digits
    # that means nothing to a client; a bound of our own says what is wrong.
    if len(text) > MAX_DIGITS:
        raise ValueError(f"a number has more than {MAX_DIGITS} digits")
    return int(text)


def json_body(parse_float=Decimal) -> dict:
    """The request's JSON object, or an APIError: 415 unless JSON, 400 when malformed or not an object.

    Parses the raw bytes itself so numbers keep their exact decimal value (no float round trip),
    and NaN/Infinity -- which Python's json accepts but JSON does not -- are rejected.
    """
    is_json = request.mimetype == "application/json" or request.mimetype.endswith(
        "+json"
    )
    if not is_json:
        raise APIError(
            415, "unsupported_media_type", "Content-Type must be application/json"
        )
    raw = request.get_data(cache=True)
    if _cut_short(raw):
        raise RequestEntityTooLarge()
    try:
        value = json.loads(
            raw,
            parse_float=parse_float,
            parse_int=_bounded_int,
            parse_constant=_reject_constant,
        )
    except (ValueError, RecursionError) as exc:
        raise APIError(
            400, "malformed_json", "request body is not valid JSON", {"body": str(exc)}
        ) from None
    if not isinstance(value, dict):
        raise APIError(
            400,
            "validation_failed",
            "request body must be a JSON object",
            {"body": "expected an object"},
        )
    return value


def _cut_short(raw: bytes) -> bool:
    """Whether a chunked body went on past MAX_CONTENT_LENGTH. Werkzeug stops reading such a
    body at the limit and hands back what it read, without an error (a declared
    Content-Length over it is refused before any read): one byte more from the WSGI input
    tells a body of exactly the limit from a longer one that would be parsed cut short."""
    limit = request.max_content_length
    return (
        request.content_length is None
        and limit is not None
        and len(raw) >= limit
        and bool(request.environ["wsgi.input"].read(1))
    )


@dataclass(frozen=True)
class PageRequest:
    """Which page of a list a request asks for: `limit` rows, after the row whose id is
    `after` (keyset: O(page) to serve) if given, then after skipping `offset` rows
    (O(offset))."""

    limit: int
    offset: int = 0
    after: int | None = None


def page_params(args: Mapping[str, str] | None = None) -> PageRequest:
    """The page asked for in the query string: `limit` 1..500 (default 50), `offset` >= 0
    (default 0) and `after`, the last id of the page before (0..MAX_ID; none by default)."""
    args = request.args if args is None else args
    problems = {}
    limit = _int_param(args, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT, problems)
    offset = _int_param(args, "offset", 0, 0, MAX_OFFSET, problems)
    after = _int_param(args, "after", None, 0, MAX_ID, problems)
    if problems:
        raise APIError(400, "validation_failed", "invalid query parameters", problems)
    return PageRequest(limit, offset, after)


def _int_param(
    args: Mapping[str, str],
    name: str,
    default: int | None,
    low: int,
    high: int,
    problems: dict,
) -> int | None:
    raw = args.get(name)
    if raw is None:
        return default
    if raw.isascii() and raw.isdigit() and len(raw) <= 19 and low <= int(raw) <= high:
        return int(raw)
    problems[name] = f"must be an integer from {low} to {high}"
    return default


def require_fields(
    payload: Mapping, required: Iterable[str], allowed: Iterable[str]
) -> dict[str, str]:
    """Problems with the field set of a request object: each unknown field and each missing one."""
    allowed = set(allowed)
    problems = {name: "unknown field" for name in payload if name not in allowed}
    problems.update({name: "required" for name in required if name not in payload})
    return problems


def validation_failed(problems: Mapping[str, str]) -> APIError:
    return APIError(
        400, "validation_failed", "request is invalid", dict(sorted(problems.items()))
    )
