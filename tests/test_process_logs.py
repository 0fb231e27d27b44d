"""Where the processes tests start keep their output, and how a failed wait shows it."""

import socket
import sys

import pytest

from tests.support.processes import ManagedProcess, wait_until
from tests.support.services import gunicorn_argv


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


def test_a_wait_that_times_out_shows_the_log_as_it_is_then(tmp_path):
    # A message built when the wait began would show a log as it was at the signal, not
    # what the process wrote while the test waited (a CI failure read that way).
    log = tmp_path / "proc.log"
    log.write_text("")

    def written_while_waiting():
        log.write_text("late line")
        return False

    with pytest.raises(AssertionError, match="late line"):
        wait_until(written_while_waiting, 0.2, what=log.read_text)


def test_a_service_whose_port_another_process_holds_is_not_taken_for_ready():
    """free_port() can hand out a port another process binds before gunicorn does: probing
    the URL would then read that process's answers as the service's (a test saw users
    vanish that way). wait_listening waits for this process's own bind."""
    holder = socket.create_server(("127.0.0.1", 0))
    port = holder.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    service = ManagedProcess(
        [*gunicorn_argv("user_service"), "--bind", f"127.0.0.1:{port}"],
        env={"DATABASE_URL": "sqlite://", "CONSUL_HTTP_ADDR": f"127.0.0.1:{port}"},
        name="port-taken",
    ).start()
    try:
        with pytest.raises(AssertionError, match="exited early"):
            service.wait_listening(url, timeout=30)
    finally:
        service.stop()
        holder.close()
