import pytest

from devconsul.durations import (
    MILLISECOND,
    MINUTE,
    SECOND,
    format_duration,
    parse_duration,
)


@pytest.mark.parametrize(
    ("text", "ns"),
    [
        ("10s", 10 * SECOND),
        ("1m30s", 90 * SECOND),
        ("500ms", 500 * MILLISECOND),
        ("1.5s", 1500 * MILLISECOND),
        ("2h", 120 * MINUTE),
        ("0", 0),
        ("60000ms", MINUTE),
        ("100us", 100_000),
        ("100\u00b5s", 100_000),
        ("3ns", 3),
        ("-1s", -SECOND),
    ],
)
def test_parse(text, ns):
    assert parse_duration(text) == ns


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("10", 'time: missing unit in duration "10"'),
        ("abc", 'time: invalid duration "abc"'),
        ("", 'time: invalid duration ""'),
        ("5x", 'time: unknown unit "x" in duration "5x"'),
    ],
)
def test_parse_errors_use_go_wording(text, message):
    with pytest.raises(ValueError, match=f"^{message}$"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("ns", "text"),
    [
        (0, "0s"),
        (SECOND, "1s"),
        (MINUTE, "1m0s"),
        (90 * SECOND, "1m30s"),
        (60 * MINUTE, "1h0m0s"),
        (1500 * MILLISECOND, "1.5s"),
        (500 * MILLISECOND, "500ms"),
        (1500, "1.5\u00b5s"),
        (7, "7ns"),
        (-SECOND, "-1s"),
    ],
)
def test_format_like_go(ns, text):
    assert format_duration(ns) == text
