import io

import pytest

from switchyard.render import Console, table, truncate


def test_table_pads_columns_and_has_a_rule():
    text = table(["ID", "PID"], [["user-service-1", 12], ["gw", 345]])
    assert text.splitlines() == [
        "ID              PID",
        "--------------  ---",
        "user-service-1  12",
        "gw              345",
    ]


def test_table_without_rows_is_just_the_header():
    assert table(["A", "BB"], []).splitlines() == ["A  BB", "-  --"]


@pytest.mark.parametrize(
    "text, width, expected",
    [
        ("short", 10, "short"),
        ("line one\nline two", 40, "line one line two"),
        ("abcdefghij", 8, "abcde..."),
    ],
)
def test_truncate(text, width, expected):
    assert truncate(text, width) == expected


def test_log_lines_are_held_back_until_following_then_prefixed():
    out = io.StringIO()
    console = Console(out)
    console.log_line("gw", "early")
    console.follow_logs(["gw", "user-service-1"])
    console.log_line("gw", "hello")
    assert out.getvalue() == "gw             | hello\n"


def test_quiet_console_writes_nothing():
    out = io.StringIO()
    console = Console(out, quiet=True)
    console.say("x")
    console.step("[up]", "a", "b")
    assert out.getvalue() == ""
