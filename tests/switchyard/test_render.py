import contextlib
import io
import os
import threading

import pytest

from switchyard.render import Console, table, truncate
from tests.switchyard.standins import fill_pipe


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


def pipe_without_reader():
    read_end, write_end = os.pipe()
    os.close(read_end)  # `| head -1` once head has its line
    return os.fdopen(write_end, "w")


def hung_up_terminal():
    main_end, sub_end = os.openpty()
    os.close(main_end)  # the terminal window is closed
    return os.fdopen(sub_end, "w")


def closed_file(tmp_path):
    out = open(tmp_path / "out.txt", "w")  # noqa: SIM115 - closed right here
    out.close()
    return out


@pytest.mark.parametrize(
    "lost_output",
    [
        pytest.param(lambda tmp_path: pipe_without_reader(), id="pipe-reader-gone"),
        pytest.param(lambda tmp_path: hung_up_terminal(), id="terminal-hung-up"),
        pytest.param(closed_file, id="closed"),
    ],
)
def test_a_lost_output_is_seen_without_writing_and_writing_never_raises(
    tmp_path, lost_output
):
    out = lost_output(tmp_path)
    console = Console(out)
    assert console.gone()
    console.say("switchyard: stopping")  # must not raise: the stack is being stopped
    console.follow_logs(["gw"])
    console.log_line("gw", "a line from a log thread")
    out.close()


def test_a_failed_write_makes_the_console_gone_for_good():
    out = pipe_without_reader()
    console = Console(out)
    console.say("first")  # EPIPE, swallowed
    console.say("second")
    assert console.gone()
    out.close()  # flushes into /dev/null now, instead of failing again at exit


def test_a_file_or_a_live_pipe_is_never_gone(tmp_path):
    read_end, write_end = os.pipe()
    with open(tmp_path / "log", "w") as log, os.fdopen(write_end, "w") as pipe:
        for out in (log, pipe):
            console = Console(out)
            console.say("hello")
            assert not console.gone()
    assert os.read(read_end, 100) == b"hello\n"
    os.close(read_end)


def test_once_stopping_output_nobody_reads_is_dropped_not_waited_for():
    read_end, write_end = os.pipe()
    fill_pipe(read_end)  # a terminal paused by Ctrl-S, a `| less` nobody scrolls
    out = os.fdopen(write_end, "w")
    try:
        console = Console(out)
        console.follow_logs(["gw"])
        # A log line waits for the reader, holding the console, until stopping begins.
        relay = threading.Thread(target=console.log_line, args=("gw", "GET /"))
        relay.start()
        console.stopping()
        relay.join(timeout=5)
        assert not relay.is_alive()
        console.say("switchyard: stopping")  # dropped at once
        os.set_blocking(read_end, False)
        with contextlib.suppress(BlockingIOError):
            while True:  # the reader reads again: only what filled the pipe is there
                assert set(os.read(read_end, 65536)) == set(b".")
        console.say("switchyard: stopped")
        assert os.read(read_end, 65536) == (
            b"WARNING switchyard: 2 lines not shown (the output was not read while stopping)\n"
            b"switchyard: stopped\n"
        )
    finally:
        os.close(read_end)  # first: a write still blocked (a failure) ends with EPIPE
        out.close()
