import pytest

from gateway.resilience import Ejector, RetryBudget
from tests.support.clock import Clock


@pytest.fixture
def clock():
    return Clock()


PEERS = ["a", "b", "c", "d"]


def test_ejects_after_consecutive_failures_only(clock):
    ejector = Ejector(after=3, base=5, maximum=60, clock=clock)
    assert not ejector.failure("a", PEERS)
    assert not ejector.failure("a", PEERS)
    ejector.success("a")
    assert not ejector.failure("a", PEERS)
    assert not ejector.failure("a", PEERS)
    assert ejector.failure("a", PEERS)
    assert ejector.is_ejected("a")


def test_ejection_expires_and_grows_with_repeats_up_to_the_maximum(clock):
    ejector = Ejector(after=1, base=5, maximum=12, clock=clock)
    holds = []
    for _ in range(4):
        assert ejector.failure("a", PEERS)
        start = clock.now
        while ejector.is_ejected("a"):
            clock.now += 0.5
        holds.append(clock.now - start)
    assert holds == [5, 10, 12, 12]


def test_success_resets_the_back_off(clock):
    ejector = Ejector(after=1, base=5, maximum=60, clock=clock)
    ejector.failure("a", PEERS)
    clock.now += 5
    ejector.failure("a", PEERS)
    clock.now += 10
    ejector.success("a")
    ejector.failure("a", PEERS)
    assert ejector.state("a").ejected_until == clock.now + 5


@pytest.mark.parametrize(("peers", "most"), [(1, 0), (2, 1), (3, 1), (4, 2), (5, 2)])
def test_never_more_than_half_of_a_service_is_ejected(clock, peers, most):
    ejector = Ejector(after=1, base=5, maximum=60, clock=clock)
    ids = [f"i{n}" for n in range(peers)]
    for instance in ids:
        ejector.failure(instance, ids)
    assert sum(ejector.is_ejected(i) for i in ids) == most


def test_forget_drops_unlisted_instances(clock):
    ejector = Ejector(after=1, clock=clock)
    ejector.failure("a", PEERS)
    ejector.forget({"b"})
    assert not ejector.is_ejected("a")


def test_retry_budget_floor_then_ratio(clock):
    budget = RetryBudget(ratio=0.2, floor=2, window=10, clock=clock)
    assert budget.try_retry() and budget.try_retry()
    assert not budget.try_retry()
    for _ in range(10):
        budget.request()
    assert budget.try_retry() and budget.try_retry()
    assert not budget.try_retry()


def test_retry_budget_window_slides(clock):
    budget = RetryBudget(ratio=0.0, floor=1, window=10, clock=clock)
    assert budget.try_retry()
    assert not budget.try_retry()
    clock.now += 10.01
    assert budget.try_retry()


def test_any_ejected_holds_while_some_ejection_lasts(clock):
    ejector = Ejector(after=1, base=5, maximum=60, clock=clock)
    assert not ejector.any_ejected()
    assert not ejector.failure("a", ["a"])  # never more than half of a service: kept
    assert not ejector.any_ejected()
    assert ejector.failure("a", PEERS)
    clock.now += 2
    assert ejector.failure("b", PEERS)  # ends 2 s after a's
    clock.now += 4
    assert ejector.any_ejected() and not ejector.is_ejected("a")
    clock.now += 2
    assert not ejector.any_ejected()
