"""Pure validation of user request bodies: each problem is reported against its field.

The patterns here are also the OpenAPI document's, so what the document calls valid is
exactly what the service accepts.
"""

import re

from chassis.inputs import require_fields, validation_failed

FIELDS = ("name", "email")
NAME_MAX = 100
EMAIL_MAX = 254
# Not blank (one visible character at least) and no control characters, which not every
# database stores (PostgreSQL rejects NUL).
NAME_PATTERN = r"^[^\u0000-\u001f\u007f-\u009f]*[^\s\u0000-\u001f\u007f-\u009f][^\u0000-\u001f\u007f-\u009f]*$"
# ASCII addresses: local part of up to 64 characters, a dotted domain; surrounding blanks
# are allowed and stripped. Deliverability is not ours to judge.
EMAIL_BLANKS = " \t\r\n"
EMAIL_PATTERN = r"^[ \t\r\n]*[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+[ \t\r\n]*$"


def normalize_email(value: str) -> str:
    return value.strip(EMAIL_BLANKS).lower()


def clean_user(payload: dict, partial: bool) -> dict:
    """The validated, normalized fields of a user body, or APIError 400 naming every bad field.

    `partial` (PATCH) makes every field optional; unknown fields are always rejected.
    """
    problems = require_fields(payload, () if partial else FIELDS, FIELDS)
    for field, check in (("name", name_problem), ("email", email_problem)):
        if (
            field in payload
            and field not in problems
            and (problem := check(payload[field]))
        ):
            problems[field] = problem
    if problems:
        raise validation_failed(problems)
    cleaned = {field: payload[field] for field in FIELDS if field in payload}
    if "email" in cleaned:
        cleaned["email"] = normalize_email(cleaned["email"])
    return cleaned


def name_problem(value: object) -> str | None:
    return text_problem(
        value, NAME_MAX, NAME_PATTERN, "must not be blank or contain control characters"
    )


def email_problem(value: object) -> str | None:
    return text_problem(
        value, EMAIL_MAX, EMAIL_PATTERN, "must be a valid email address"
    )


def text_problem(
    value: object, max_length: int, pattern: str, mismatch: str
) -> str | None:
    if not isinstance(value, str):
        return "must be a string"
    if len(value) > max_length:
        return f"must be at most {max_length} characters"
    # The email pattern is ASCII-only, so the surrogate check only ever matters for names.
    if not re.fullmatch(pattern, value) or has_surrogates(value):
        return mismatch
    return None


def has_surrogates(value: str) -> bool:
    # JSON can spell a lone surrogate ("\ud800"); it is not text and UTF-8 cannot store it.
    return any("\ud800" <= char <= "\udfff" for char in value)
