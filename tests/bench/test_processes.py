"""The benchmarks' child processes: their logs go when they are stopped, stay when they fail."""

import sys

import pytest

from bench.processes import Process


def test_a_stopped_process_leaves_no_log(capsys):
    process = Process([sys.executable, "-c", "import time; time.sleep(60)"], {}, "t")
    assert process.log.exists()
    process.stop()
    assert not process.log.exists()
    assert capsys.readouterr().out == ""


def test_a_process_that_died_keeps_its_log_and_says_where(capsys):
    process = Process([sys.executable, "-c", "print('boom'); exit(3)"], {}, "t")
    with pytest.raises(RuntimeError, match="exited"):
        process.wait_until(lambda: False, 10, "never")
    process.stop()
    try:
        assert "boom" in process.log.read_text()
        assert str(process.log) in capsys.readouterr().out
    finally:
        process.log.unlink()
