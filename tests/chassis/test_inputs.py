from decimal import Decimal

import pytest

from chassis.inputs import require_fields
from tests.chassis.webapp import error_of


@pytest.mark.parametrize(
    ("body", "content_type", "parsed"),
    [
        (b'{"a": 0.1}', "application/json", {"a": Decimal("0.1")}),
        (
            b'{"a": 12345678901234567890.12}',
            "application/json",
            {"a": Decimal("12345678901234567890.12")},
        ),
        (b'{"a": 1}', "application/json; charset=utf-8", {"a": 1}),
        (b'{"a": "x"}', "application/merge-patch+json", {"a": "x"}),
    ],
)
def test_json_body_parses_numbers_exactly(client, body, content_type, parsed):
    response = client.post("/body", data=body, content_type=content_type)
    assert response.json == {"parsed": repr(parsed)}


@pytest.mark.parametrize(
    ("body", "content_type", "status", "code"),
    [
        (b'{"a": 1}', "text/plain", 415, "unsupported_media_type"),
        (b'{"a": 1}', "", 415, "unsupported_media_type"),
        (b"{", "application/json", 400, "malformed_json"),
        (b'{"a": NaN}', "application/json", 400, "malformed_json"),
        (b'{"a": -Infinity}', "application/json", 400, "malformed_json"),
        (b'{"a": ' + b"9" * 5000 + b"}", "application/json", 400, "malformed_json"),
        (b"[" * 3000 + b"]" * 3000, "application/json", 400, "malformed_json"),
        (b"\xc3\x28", "application/json", 400, "malformed_json"),
        (b"[1]", "application/json", 400, "validation_failed"),
        (b"null", "application/json", 400, "validation_failed"),
    ],
)
def test_json_body_rejections(client, body, content_type, status, code):
    response = client.post(
        "/body",
        data=body,
        headers={"Content-Type": content_type} if content_type else {},
    )
    assert error_of(response, status)["code"] == code


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", (50, 0, None)),
        ("?limit=1", (1, 0, None)),
        ("?limit=500&offset=7", (500, 7, None)),
        ("?offset=0", (50, 0, None)),
        ("?after=0", (50, 0, 0)),
        ("?limit=3&after=2147483647", (3, 0, 2147483647)),
        ("?after=3&offset=2", (50, 2, 3)),
    ],
)
def test_page_params(client, query, expected):
    assert client.get(f"/page{query}").json == dict(
        zip(("limit", "offset", "after"), expected, strict=True)
    )


@pytest.mark.parametrize(
    ("query", "bad"),
    [
        ("?limit=0", {"limit"}),
        ("?limit=501", {"limit"}),
        ("?limit=%EF%BC%91", {"limit"}),  # a full-width digit: isdigit() but not ASCII
        ("?limit=-1&offset=x", {"limit", "offset"}),
        ("?offset=99999999999999999999999", {"offset"}),
        ("?limit=", {"limit"}),
        ("?after=abc", {"after"}),
        ("?after=-1", {"after"}),
        ("?after=1.5", {"after"}),
        ("?after=", {"after"}),
        (
            "?after=2147483648",
            {"after"},
        ),  # no id is that large (chassis.storage.MAX_ID)
        ("?after=x&limit=0", {"after", "limit"}),
    ],
)
def test_page_params_errors_name_each_parameter(client, query, bad):
    assert set(error_of(client.get(f"/page{query}"), 400)["details"]) == bad


@pytest.mark.parametrize(
    ("payload", "required", "allowed", "problems"),
    [
        ({"a": 1}, ["a"], ["a"], {}),
        ({}, ["a", "b"], ["a", "b"], {"a": "required", "b": "required"}),
        ({"a": 1, "z": 2}, [], ["a"], {"z": "unknown field"}),
        ({"z": 2}, ["a"], ["a"], {"a": "required", "z": "unknown field"}),
    ],
)
def test_require_fields(payload, required, allowed, problems):
    assert require_fields(payload, required, allowed) == problems


def test_a_number_too_long_is_named_as_such(client):
    response = client.post(
        "/body", data=b'{"a": ' + b"9" * 5000 + b"}", content_type="application/json"
    )
    details = error_of(response, 400)["details"]["body"]
    assert details == "a number has more than 100 digits"
    ok = client.post(
        "/body", data=b'{"a": -' + b"9" * 99 + b"}", content_type="application/json"
    )
    assert ok.json == {"parsed": repr({"a": -int("9" * 99)})}
