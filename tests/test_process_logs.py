"""Where the processes tests start keep their output."""

import sys

from tests.support.processes import ManagedProcess


def test_a_test_process_logs_into_the_runs_temporary_directory(
    process_logs, tmp_path_factory
):
    # Not /tmp itself: a full run starts several hundred processes, and pytest removes
    # its own older run directories.
    proc = ManagedProcess([sys.executable, "-c", "print('hello')"], name="log-check")
    proc.start().wait(timeout=10)
    assert proc.log.parent == process_logs
    assert process_logs.is_relative_to(tmp_path_factory.getbasetemp())
    assert "hello" in proc.output()
