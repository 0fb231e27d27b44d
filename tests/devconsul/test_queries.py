import pytest

from devconsul.errors import HTTPError
from devconsul.messages import Request, Response
from devconsul.queries import AnswerCache, meta_headers, parse_blocking


def _req(query: str) -> Request:
    return Request("GET", f"/v1/x?{query}", {}, b"")


def test_wait_with_jitter_up_to_a_sixteenth():
    for _ in range(50):
        index, timeout = parse_blocking(_req("index=5&wait=16s"))
        assert index == 5 and 16 <= timeout <= 17


def test_defaults_and_cap():
    assert parse_blocking(_req(""))[0] == 0
    assert 300 <= parse_blocking(_req("index=1"))[1] <= 300 * 17 / 16
    assert parse_blocking(_req("index=1&wait=1h"))[1] <= 600 * 17 / 16


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("index=x", "Invalid index"),
        ("index=-1", "Invalid index"),
        ("wait=10", "Invalid wait time"),
        (
            "stale&consistent=1",
            "Cannot specify ?stale with ?consistent, conflicting semantics.",
        ),
    ],
)
def test_errors(query, message):
    with pytest.raises(HTTPError) as err:
        parse_blocking(_req(query))
    assert (err.value.status, err.value.message) == (400, message)


def test_index_header_is_never_zero():
    assert meta_headers(0)["X-Consul-Index"] == "1"
    assert meta_headers(7) == {
        "X-Consul-Index": "7",
        "X-Consul-KnownLeader": "true",
        "X-Consul-LastContact": "0",
    }


def test_answer_cache_keys_ignore_blocking_params_and_follow_the_store():
    cache = AnswerCache(size=2)
    first = AnswerCache.key(_req("passing&index=3&wait=1s"), 7)
    assert first == AnswerCache.key(_req("passing&index=9"), 7)
    assert first != AnswerCache.key(_req("passing"), 8)
    assert first != AnswerCache.key(_req(""), 7)
    answer = Response(200, b"[]")
    cache.put(first, answer)
    assert cache.get(first) is answer
    cache.put(("a",), answer)
    cache.put(("b",), answer)
    assert cache.get(first) is None
