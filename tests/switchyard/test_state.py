import os
import stat
import subprocess
import sys

import pytest

from switchyard.process import process_start_time
from switchyard.state import (
    ProcessRecord,
    StackState,
    UnreadableState,
    read_state,
    remove_state,
    state_path,
    write_state,
)


def sample() -> StackState:
    return StackState(
        supervisor_pid=os.getpid(),
        supervisor_started=process_start_time(os.getpid()),
        consul_addr="127.0.0.1:8500",
        consul_kind="devconsul",
        consul_token="tok",
        gateway_url="http://127.0.0.1:8000",
        processes=[
            ProcessRecord("user-service-127.0.0.1-4001", "user-service", 4001, 123, 99)
        ],
    )


def test_round_trip_and_private_mode(tmp_path):
    write_state(tmp_path, sample())
    assert read_state(tmp_path) == sample()
    assert stat.S_IMODE(state_path(tmp_path).stat().st_mode) == 0o600


def test_missing_file_reads_as_none_and_remove_is_idempotent(tmp_path):
    assert read_state(tmp_path) is None
    remove_state(tmp_path)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('{"version": 99}', "unsupported state file version 99"),
        ("", "Expecting value: line 1 column 1"),
        ('{"supervisor_pid": 1', "Expecting ',' delimiter"),
        ("[]", "not a JSON object"),
        ('{"version": 1}', "missing 3 required positional arguments"),
        ('{"version": 1, "colour": "red"}', "unexpected keyword argument 'colour'"),
    ],
    ids=["version", "empty", "cut-short", "list", "missing-fields", "unknown-field"],
)
def test_a_state_file_that_cannot_be_trusted_says_why(tmp_path, text, problem):
    state_path(tmp_path).write_text(text)
    with pytest.raises(UnreadableState) as exc:
        read_state(tmp_path)
    assert str(exc.value).startswith(f"cannot read {state_path(tmp_path)}: ")
    assert problem in str(exc.value)


def test_record_lookup():
    assert sample().record("user-service-127.0.0.1-4001").port == 4001
    assert sample().record("nope") is None


def test_liveness_follows_the_process_and_its_start_time():
    me = os.getpid()
    assert ProcessRecord("x", "x", 1, me, process_start_time(me)).alive()
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    started = process_start_time(child.pid)
    child.wait()
    assert not ProcessRecord("x", "x", 1, child.pid, started).alive()
    # Same pid, different start time: a reused pid is not ours.
    assert not ProcessRecord("x", "x", 1, os.getpid(), 1).alive()
