import pytest

from chassis.errors import APIError
from user_service.validation import clean_user

VALID = {"name": "Ada Lovelace", "email": "ada@example.com"}


@pytest.mark.parametrize(
    ("payload", "partial", "cleaned"),
    [
        (VALID, False, VALID),
        (
            {"name": "Ada", "email": "  Ada@Example.COM\n"},
            False,
            {"name": "Ada", "email": "ada@example.com"},
        ),
        ({"name": " padded name "}, True, {"name": " padded name "}),
        ({"email": "X@Y.io"}, True, {"email": "x@y.io"}),
        ({}, True, {}),
        ({"name": "x" * 100, "email": "a" * 64 + "@" + "b" * 185 + ".io"}, False, None),
        ({"name": "Zoë 山田", "email": "o'brien+tag@sub.example.org"}, False, None),
    ],
)
def test_accepts_and_normalizes(payload, partial, cleaned):
    assert clean_user(payload, partial=partial) == (
        payload if cleaned is None else cleaned
    )


@pytest.mark.parametrize(
    ("payload", "partial", "problems"),
    [
        ({}, False, {"name": "required", "email": "required"}),
        ({"name": "A", "email": "a@b.co", "age": 3}, False, {"age": "unknown field"}),
        ({"nickname": "x"}, True, {"nickname": "unknown field"}),
        (
            {"name": 5, "email": ["a@b.co"]},
            False,
            {"name": "must be a string", "email": "must be a string"},
        ),
        ({"name": None}, True, {"name": "must be a string"}),
        (
            {"name": "", "email": "a@b.co"},
            False,
            {"name": "must not be blank or contain control characters"},
        ),
        (
            {"name": "   \t"},
            True,
            {"name": "must not be blank or contain control characters"},
        ),
        (
            {"name": "a\x00b"},
            True,
            {"name": "must not be blank or contain control characters"},
        ),
        (
            {"name": "a\ud800"},
            True,
            {"name": "must not be blank or contain control characters"},
        ),
        ({"name": "x" * 101}, True, {"name": "must be at most 100 characters"}),
        ({"email": "not-an-email"}, True, {"email": "must be a valid email address"}),
        ({"email": "a@b"}, True, {"email": "must be a valid email address"}),
        ({"email": "a b@c.io"}, True, {"email": "must be a valid email address"}),
        ({"email": "a@@c.io"}, True, {"email": "must be a valid email address"}),
        (
            {"email": "a" * 65 + "@c.io"},
            True,
            {"email": "must be a valid email address"},
        ),
        (
            {"email": "a@" + "b" * 250 + ".io"},
            True,
            {"email": "must be at most 254 characters"},
        ),
        (
            {"email": "ünï@example.com"},
            True,
            {"email": "must be a valid email address"},
        ),
    ],
)
def test_rejects_naming_each_bad_field(payload, partial, problems):
    with pytest.raises(APIError) as caught:
        clean_user(payload, partial=partial)
    assert caught.value.status == 400
    assert caught.value.code == "validation_failed"
    assert caught.value.details == problems
