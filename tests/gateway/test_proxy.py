"""The forwarder against real upstream servers in threads: choice, retries, failures."""

import itertools
import json
import random
import time

import pytest
import uvloop

from discovery.instances import Instance, Snapshot
from discovery.strategies import make_strategy
from gateway.directory import ServiceState
from gateway.proxy import Forwarder, Outcome, retryable
from gateway.resilience import Ejector
from gateway.settings import GatewaySettings
from gateway.upstream import RequestBody
from tests.support.clock import Clock
from tests.support.processes import free_port
from tests.support.tracing import exported, keeping_recorder


@pytest.fixture
def upstreams(upstream):
    """conftest's `upstream`, answering with the Instance a snapshot would list."""
    return lambda name, **kwargs: instance(name, upstream(name, **kwargs))


def instance(name, port, status="passing"):
    return Instance(
        name, "echo", "127.0.0.1", port, meta={"gateway_prefix": "/echo"}, status=status
    )


def dead(name):
    return instance(name, free_port())


def service(instances, strategy="round_robin", rng=None):
    snapshot = Snapshot(tuple(instances), 1, time.monotonic(), False, None)
    return ServiceState("echo", snapshot, strategy, make_strategy(strategy, rng))


def forwarder(clock=None, **settings):
    s = GatewaySettings(**{"connect_timeout": 0.5, "read_timeout": 2.0, **settings})
    ejector = Ejector(
        s.eject_after, s.eject_base, s.eject_max, clock=clock or time.monotonic
    )
    return Forwarder(s, ejector)


@pytest.fixture(autouse=True)
def loop():
    """The forwarder runs on an event loop; its pooled connections belong to one."""
    global _loop
    _loop = uvloop.new_event_loop()
    yield _loop
    _loop.close()


_loop = None


def get(fw, state, method="GET", path="/echo/x", headers=(), body=b"", key=False):
    forwarding = fw.forward(state, method, path, list(headers), body, key)
    return _loop.run_until_complete(forwarding)


@pytest.mark.parametrize(
    ("outcome", "method", "key", "retry"),
    [
        (Outcome.CONNECT_FAILED, "POST", False, True),
        (Outcome.CONNECT_FAILED, "PATCH", False, True),
        (Outcome.UNAVAILABLE, "GET", False, True),
        (Outcome.UNAVAILABLE, "HEAD", False, True),
        (Outcome.UNAVAILABLE, "OPTIONS", False, True),
        (Outcome.UNAVAILABLE, "PUT", False, True),
        (Outcome.UNAVAILABLE, "DELETE", False, True),
        (Outcome.UNAVAILABLE, "POST", False, False),
        (Outcome.UNAVAILABLE, "PATCH", False, False),
        (Outcome.UNAVAILABLE, "POST", True, True),
        (Outcome.TIMEOUT, "GET", False, True),
        (Outcome.TIMEOUT, "POST", False, False),
        (Outcome.TIMEOUT, "PATCH", True, True),
        (Outcome.RESET, "POST", False, False),
        (Outcome.SERVER_ERROR, "GET", False, False),
        (Outcome.OK, "GET", False, False),
    ],
)
def test_retry_rules(outcome, method, key, retry):
    assert retryable(outcome, method, key) is retry


def test_round_robin_alternates_exactly(upstreams):
    state = service([upstreams("a"), upstreams("b")])
    fw = forwarder()
    served = [get(fw, state).instance for _ in range(20)]
    assert all(x != y for x, y in itertools.pairwise(served))
    assert sorted(set(served)) == ["a", "b"]


def test_random_covers_both(upstreams):
    state = service([upstreams("a"), upstreams("b")], "random", random.Random(7))
    fw = forwarder()
    served = {get(fw, state).instance for _ in range(30)}
    assert served == {"a", "b"}


def test_upstream_answer_comes_back_untouched(upstreams):
    state = service([upstreams("a")])
    result = get(
        forwarder(),
        state,
        "POST",
        "/echo/x?q=%2Bx",
        [("Content-Type", "text/plain")],
        b"\x00\xffhi",
    )
    assert result.status == 200
    assert dict(result.headers)["X-Served-By"] == "a"
    assert b'"target": "/echo/x?q=%2Bx"' in result.body


@pytest.mark.parametrize("method", ["GET", "POST", "PATCH", "DELETE"])
def test_connect_failure_is_retried_elsewhere_for_any_method(upstreams, method):
    state = service([dead("a-dead"), upstreams("b")])
    fw = forwarder(eject_after=100)
    results = [get(fw, state, method) for _ in range(4)]
    assert [r.status for r in results] == [200] * 4
    retried = [r for r in results if len(r.attempts) == 2]
    assert retried, "round robin must have picked the dead instance first at least once"
    assert [(a.instance, a.outcome) for a in retried[0].attempts] == [
        ("a-dead", Outcome.CONNECT_FAILED),
        ("b", Outcome.OK),
    ]


@pytest.mark.parametrize(
    ("method", "key", "retried"),
    [
        ("GET", False, True),
        ("PUT", False, True),
        ("POST", False, False),
        ("PATCH", False, False),
        ("POST", True, True),
    ],
)
def test_503_is_retried_only_when_safe(upstreams, method, key, retried):
    state = service([upstreams("a-503", status=503), upstreams("b")])
    fw = forwarder(eject_after=100)
    results = [get(fw, state, method, key=key) for _ in range(4)]
    first_503 = [r for r in results if r.attempts[0].instance == "a-503"]
    assert first_503
    for r in first_503:
        if retried:
            assert (r.status, r.instance) == (200, "b")
        else:
            assert (r.status, r.instance, len(r.attempts)) == (503, "a-503", 1)
            assert b"served_by" in r.body  # the upstream's own answer


def test_read_timeout_is_retried_for_get_and_504_for_post(upstreams):
    state = service([upstreams("a-slow", delay=1.0), upstreams("b")])
    fw = forwarder(read_timeout=0.2, eject_after=100)
    gets = [get(fw, state) for _ in range(2)]
    assert [r.status for r in gets] == [200, 200]
    posts = [get(fw, state, "POST") for _ in range(2)]
    slow = [r for r in posts if r.attempts[0].instance == "a-slow"]
    assert slow and slow[0].status == 504 and slow[0].error_code == "upstream_timeout"


def test_all_attempts_failing_to_connect_is_502_after_three_distinct_tries():
    state = service([dead(f"d{n}") for n in range(5)])
    result = get(forwarder(eject_after=100), state)
    assert (result.status, result.error_code) == (502, "bad_gateway")
    assert len(result.attempts) == 3
    assert len({a.instance for a in result.attempts}) == 3


def test_no_routable_instance_is_503_with_retry_after():
    state = service([instance("x", free_port(), status="critical")])
    result = get(forwarder(), state)
    assert (result.status, result.error_code) == (503, "no_healthy_instance")
    assert ("Retry-After", "1") in result.headers
    assert result.attempts == []


def test_an_upstreams_503_says_when_to_try_again(upstreams):
    """The service's own Retry-After when it gave one, else GATEWAY_RETRY_AFTER."""
    state = service([upstreams("a-503", status=503)])
    result = get(forwarder(retry_after=7), state)
    assert (result.status, result.error_code) == (503, None)
    assert ("Retry-After", "7") in result.headers
    own = [("retry-after", "30")]
    assert forwarder(retry_after=7).with_retry_after(own) == [("retry-after", "30")]


def test_overall_deadline_gives_504(upstreams):
    state = service([upstreams("a-slow", delay=3.0), upstreams("b-slow", delay=3.0)])
    started = time.monotonic()
    result = get(forwarder(deadline=0.4, read_timeout=5), state)
    assert (result.status, result.error_code) == (504, "upstream_timeout")
    assert time.monotonic() - started < 2.5  # one slow answer alone would take 3 s


def test_retry_budget_stops_retries(upstreams):
    state = service([dead("a-dead"), upstreams("b")])
    fw = forwarder(retry_budget_min=0, retry_budget_ratio=0.0, eject_after=100)
    results = [get(fw, state) for _ in range(4)]
    assert all(len(r.attempts) == 1 for r in results)
    assert sorted(r.status for r in results) == [200, 200, 502, 502]


def test_ejection_and_recovery(upstreams):
    clock = Clock()
    state = service([dead("a-dead"), upstreams("b")])
    fw = forwarder(clock=clock, eject_after=2, eject_base=5.0)
    for _ in range(4):
        assert get(fw, state).status == 200
    assert fw.ejector.is_ejected("a-dead")
    assert all(len(get(fw, state).attempts) == 1 for _ in range(4))
    clock.now += 5.1
    tries = [get(fw, state) for _ in range(2)]
    assert any(r.attempts[0].instance == "a-dead" for r in tries)


def test_500_is_returned_as_is_and_counts_towards_ejection(upstreams):
    state = service([upstreams("a-500", status=500), upstreams("b")])
    fw = forwarder(eject_after=1)
    results = [get(fw, state) for _ in range(2)]
    assert sorted(r.status for r in results) == [200, 500]
    assert fw.ejector.is_ejected("a-500")


def test_critical_peers_do_not_make_room_for_ejecting_the_last_passing_one(upstreams):
    critical = instance("b-critical", free_port(), status="critical")
    state = service([upstreams("a-500", status=500), critical])
    fw = forwarder(eject_after=1)
    for _ in range(3):
        assert get(fw, state).status == 500
    assert not fw.ejector.is_ejected("a-500")


class Streamed(RequestBody):
    """A request body too large to hold: it can be read once."""

    def __init__(self, data: bytes):
        self.data, self.length, self.reads = data, len(data), 0

    async def chunks(self):
        self.reads += 1
        yield self.data


def test_a_streamed_body_is_retried_after_a_connect_failure_only(upstreams):
    fw = forwarder(eject_after=100)
    state = service([dead("a-dead"), upstreams("b")])
    results = [get(fw, state, "PUT", body=Streamed(b"big")) for _ in range(2)]
    assert [r.status for r in results] == [200, 200]
    assert any(len(r.attempts) == 2 for r in results)  # nothing was read: resent
    state = service([upstreams("c-503", status=503), upstreams("d")])
    results = [get(fw, state, "PUT", body=Streamed(b"big")) for _ in range(2)]
    refused = [r for r in results if r.attempts[0].instance == "c-503"]
    assert refused and refused[0].status == 503  # read once, cannot be sent again
    assert len(refused[0].attempts) == 1


# -- tracing --------------------------------------------------------------------------------


def test_each_attempt_is_a_client_span_and_a_retry_its_sibling(upstreams):
    recorder, spans = keeping_recorder()
    state = service([dead("a-dead"), upstreams("b")])
    fw = forwarder(eject_after=100)
    fw.tracing = True
    for _ in range(4):  # round robin picks the dead instance first once in two
        spans.clear()
        with recorder.server_span({}, "POST", "/api/echo/x", "r-1") as server:
            result = get(fw, state, "POST")
        if len(result.attempts) == 2:
            break
    first, second, ended = spans
    assert ended is server
    assert first.parent is second.parent is server
    assert (first.instance.id, first.number) == ("a-dead", 1)
    assert (first.outcome, first.status) == (Outcome.CONNECT_FAILED, None)
    assert first.error == Outcome.CONNECT_FAILED  # an error span, its outcome said
    assert (second.instance.id, second.number) == ("b", 2)
    assert (second.outcome, second.status, second.error) == (Outcome.OK, 200, None)
    # the upstream's parent is the attempt that reached it
    sent = json.loads(result.body)["headers"]["traceparent"]
    assert sent == f"00-{server.trace_hex}-{second.span_id:016x}-03"  # new and random


def test_an_attempt_span_is_named_by_its_method_its_instance_in_attributes(upstreams):
    """The semantic conventions' client span name: one operation, not one per instance."""
    recorder, spans = keeping_recorder()
    state = service([upstreams("b")])
    [instance] = state.snapshot.instances
    fw = forwarder()
    fw.tracing = True
    with recorder.server_span({}, "POST", "/api/echo/x", "r-1"):
        get(fw, state, "POST", path="/echo/x?q=1")
    [attempt, _] = exported(spans)
    attributes = {a.key: a.value for a in attempt.attributes}
    assert attempt.name == "POST"
    assert attributes["http.request.method"].string_value == "POST"
    assert attributes["server.address"].string_value == instance.address
    assert attributes["server.port"].int_value == instance.port
    assert attributes["switchyard.instance.id"].string_value == "b"
    assert attributes["url.full"].string_value == f"{instance.base_url}/echo/x?q=1"


def test_untraced_attempts_pass_the_request_headers_on(upstreams):
    state = service([upstreams("a")])
    sent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    result = get(forwarder(), state, headers=[("traceparent", sent)])
    assert json.loads(result.body)["headers"]["traceparent"] == sent
