"""bench.system_bench end to end, briefly: the real local stack under its mixed workload
(reads, the view, orders created with an Idempotency-Key and one in four sent again), on
SQLite and on PostgreSQL. Its figures are not judged here; that every request got its
expected answer is."""

import pytest

from bench import system_bench
from tests.support.services import DATABASE_KINDS, POSTGRES_URL

BRIEF = ["--seconds", "1", "--users", "8", "--connections", "4"]


@pytest.mark.integration
@pytest.mark.parametrize("kind", DATABASE_KINDS)
def test_the_mixed_workload_gets_every_expected_answer(kind, capsys):
    if kind == "postgresql" and not POSTGRES_URL:
        pytest.skip("SWITCHYARD_TEST_POSTGRES_URL is not set")
    status = system_bench.main([*BRIEF, "--database", kind])
    out = capsys.readouterr().out
    assert status == 0, out
    assert f"[{kind}]" in out and "errors 0 (must be 0)" in out
    for mix_kind in system_bench.MIX:  # each kind of request was sent and answered
        assert f"  {mix_kind:7} " in out, out
