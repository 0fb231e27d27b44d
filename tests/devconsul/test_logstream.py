"""devconsul.logstream: hclog-shaped lines, level names, slow readers."""

import json
import logging

import pytest

from devconsul.logstream import BUFFER, LogHub, format_line, parse_level


def _record(
    level: int = logging.INFO, name: str = "devconsul.agent"
) -> logging.LogRecord:
    record = logging.LogRecord(name, level, __file__, 1, "hello %s", ("you",), None)
    record.created = 1_700_000_000.5
    return record


def test_text_and_json_lines():
    assert format_line(_record(), False) == (
        b"2023-11-14T22:13:20.500Z [INFO]  agent: hello you\n"
    )
    assert format_line(_record(logging.ERROR, "devconsul.http"), False).endswith(
        b"[ERROR] http: hello you\n"
    )
    assert json.loads(format_line(_record(logging.WARNING), True)) == {
        "@level": "warn",
        "@message": "hello you",
        "@module": "agent",
        "@timestamp": "2023-11-14T22:13:20.500000+00:00",
    }


@pytest.mark.parametrize(
    "text, level",
    [("INFO", logging.INFO), (" trace ", logging.DEBUG), ("Warn", logging.WARNING)],
)
def test_levels_are_hclogs(text, level):
    assert parse_level(text) == level


@pytest.mark.parametrize("text", ["err", "warning", "verbose", ""])
def test_unknown_levels(text):
    assert parse_level(text) is None


def test_a_slow_reader_loses_lines_not_the_agent():
    hub = LogHub()
    sub = hub.subscribe(logging.INFO, as_json=False)
    for _ in range(BUFFER + 3):
        hub.emit(_record())
    hub.emit(_record(logging.DEBUG))  # below the subscriber's level: not counted
    assert (sub.lines.qsize(), sub.dropped) == (BUFFER, 3)
    stream = hub.stream(sub, poll=0.01)
    assert next(stream).endswith(b"hello you\n")
    stream.close()
    hub.emit(_record())
    assert sub.lines.qsize() == BUFFER - 1  # unsubscribed when the stream closed
