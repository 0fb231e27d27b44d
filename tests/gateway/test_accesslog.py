import logging

from gateway.accesslog import AccessLog
from tests.support.processes import wait_until


def test_lines_reach_stderr_in_the_log_shape_without_an_explicit_flush(capsys):
    logger = logging.getLogger("gateway.test-access-batched")
    logger.setLevel(logging.INFO)
    access = AccessLog(logger)
    assert access.enabled()
    access.info("GET /api/x -> svc 200")
    access.info("GET /api/y -> svc 404")
    seen = []

    def written():
        seen.append(capsys.readouterr().err)
        return "".join(seen).count("\n") == 2

    wait_until(written, timeout=5, what="the batch writer")
    assert "".join(seen) == (
        "INFO gateway.test-access-batched: GET /api/x -> svc 200\n"
        "INFO gateway.test-access-batched: GET /api/y -> svc 404\n"
    )


def test_flush_writes_what_is_pending(capsys):
    access = AccessLog(logging.getLogger("gateway.test-access-flush"))
    access.info("one")
    access.flush()
    assert capsys.readouterr().err == "INFO gateway.test-access-flush: one\n"
    access.flush()
    assert capsys.readouterr().err == ""


def test_below_info_the_log_is_off():
    logger = logging.getLogger("gateway.test-access-quiet")
    logger.setLevel(logging.WARNING)
    assert not AccessLog(logger).enabled()
