import random
import threading
from collections import Counter

import pytest

from chassis.env import ConfigError
from chassis.errors import NoHealthyInstance
from discovery.instances import Instance
from discovery.strategies import STRATEGIES, make_strategy

# Critical chi-square values at p = 0.001; with a fixed seed a pass is reproducible, and a
# broken strategy (e.g. always the first instance) exceeds them by orders of magnitude.
CHI2_CRITICAL_P001 = {1: 10.83, 2: 13.82, 3: 16.27, 4: 18.47}


def inst(name: str, passing: int = 1, warning: int = 1, status: str = "passing"):
    return Instance(
        id=f"svc-{name}",
        service="svc",
        address="127.0.0.1",
        port=1,
        weights=(passing, warning),
        status=status,
    )


def chi_square(counts: Counter, expected: dict[str, float]) -> float:
    return sum((counts[k] - e) ** 2 / e for k, e in expected.items())


def draw(strategy, instances, n):
    return Counter(strategy.choose(instances).id for _ in range(n))


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_every_strategy_raises_on_empty_list(name):
    with pytest.raises(NoHealthyInstance):
        make_strategy(name, random.Random(1)).choose([])


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_every_strategy_only_returns_listed_instances(name):
    instances = [inst("a"), inst("b"), inst("c")]
    chosen = draw(make_strategy(name, random.Random(2)), instances, 300)
    assert set(chosen) <= {i.id for i in instances}


def test_unknown_strategy_names_the_variable_and_lists_valid_ones():
    with pytest.raises(ConfigError) as err:
        make_strategy("fastest", variable="GATEWAY_LB_STRATEGY")
    message = str(err.value)
    assert message.startswith("GATEWAY_LB_STRATEGY:")
    for name in STRATEGIES:
        assert name in message


@pytest.mark.parametrize("n", [1, 2, 3, 5])
def test_round_robin_is_exactly_even(n):
    instances = [inst(str(k)) for k in range(n)]
    counts = draw(make_strategy("round_robin", random.Random(n)), instances, 100 * n)
    assert counts == Counter({i.id: 100 for i in instances})


def test_round_robin_ignores_answer_order():
    a, b, c = inst("a"), inst("b"), inst("c")
    rr = make_strategy("round_robin", random.Random(3))
    picks = [rr.choose(order).id for order in ([a, b, c], [c, b, a], [b, a, c]) * 20]
    assert Counter(picks) == Counter({a.id: 20, b.id: 20, c.id: 20})


def test_round_robin_survives_membership_changes_mid_rotation():
    a, b, c, d = inst("a"), inst("b"), inst("c"), inst("d")
    rr = make_strategy("round_robin", random.Random(4))
    rr.choose([a, b, c])  # mid-rotation over three
    assert draw(rr, [a, c], 40) == Counter({a.id: 20, c.id: 20})
    assert draw(rr, [a, b, c, d], 40) == Counter({i.id: 10 for i in (a, b, c, d)})


def test_round_robin_stays_even_under_concurrent_use():
    instances = [inst(str(k)) for k in range(4)]
    rr = make_strategy("round_robin", random.Random(5))
    counts: Counter = Counter()
    lock = threading.Lock()

    def worker():
        local = draw(rr, instances, 1000)
        with lock:
            counts.update(local)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert counts == Counter({i.id: 2000 for i in instances})


@pytest.mark.parametrize("n, draws", [(2, 2000), (3, 3000), (5, 5000)])
def test_random_is_uniform_within_chi_square_bound(n, draws):
    instances = [inst(str(k)) for k in range(n)]
    counts = draw(make_strategy("random", random.Random(42)), instances, draws)
    expected = {i.id: draws / n for i in instances}
    assert chi_square(counts, expected) < CHI2_CRITICAL_P001[n - 1]


def test_random_is_reproducible_with_a_seed():
    instances = [inst(str(k)) for k in range(4)]

    def seq(seed):
        strategy = make_strategy("random", random.Random(seed))
        return [strategy.choose(instances).id for _ in range(50)]

    assert seq(7) == seq(7)
    assert seq(7) != seq(8)


def test_least_connections_prefers_idle_instances():
    a, b, c = inst("a"), inst("b"), inst("c")
    lc = make_strategy("least_connections", random.Random(6))
    with lc.track(a), lc.track(b):
        assert {lc.choose([a, b, c]).id for _ in range(50)} == {c.id}
        with lc.track(c), lc.track(c):
            # a and b have one in flight, c two: only a or b now
            assert {lc.choose([a, b, c]).id for _ in range(50)} == {a.id, b.id}


def test_least_connections_breaks_ties_at_random():
    instances = [inst("a"), inst("b"), inst("c")]
    counts = draw(make_strategy("least_connections", random.Random(8)), instances, 3000)
    expected = {i.id: 1000 for i in instances}
    assert chi_square(counts, expected) < CHI2_CRITICAL_P001[2]


def test_track_counts_in_flight_and_releases_on_error():
    a = inst("a")
    lc = make_strategy("least_connections")
    with pytest.raises(RuntimeError), lc.track(a):
        assert lc.in_flight(a.id) == 1
        raise RuntimeError("request failed")
    assert lc.in_flight(a.id) == 0


@pytest.mark.parametrize(
    "instances, expected_share",
    [
        ([inst("a", 1), inst("b", 3)], {"svc-a": 0.25, "svc-b": 0.75}),
        (
            [inst("a", 2), inst("b", 2), inst("c", 4)],
            {"svc-a": 0.25, "svc-b": 0.25, "svc-c": 0.5},
        ),
        # a warning instance weighs its Warning weight
        ([inst("a", 5, 1, "warning"), inst("b", 3)], {"svc-a": 0.25, "svc-b": 0.75}),
        # warning weight 0 and critical instances are never chosen
        (
            [inst("a", 5, 0, "warning"), inst("b", 1), inst("c", 9, 9, "critical")],
            {"svc-b": 1.0},
        ),
    ],
)
def test_weighted_follows_weights(instances, expected_share):
    draws = 4000
    counts = draw(make_strategy("weighted", random.Random(9)), instances, draws)
    assert set(counts) == set(expected_share)
    if len(expected_share) > 1:
        expected = {k: share * draws for k, share in expected_share.items()}
        assert chi_square(counts, expected) < CHI2_CRITICAL_P001[len(expected) - 1]


def test_weighted_with_nothing_admitted_raises():
    with pytest.raises(NoHealthyInstance):
        make_strategy("weighted").choose([inst("a", 1, 0, "warning")])
