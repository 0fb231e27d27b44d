from switchyard.restarts import MAX_DELAY, STABLE_AFTER, Restarts
from tests.support.clock import Clock


def test_the_first_restart_is_at_once():
    restarts = Restarts(Clock())
    assert restarts.exited("user-service-1") == 0
    assert restarts.pending("user-service-1")
    assert restarts.due() == ["user-service-1"]
    assert not restarts.pending("user-service-1")
    assert restarts.due() == []


def test_a_process_that_keeps_dying_soon_after_its_start_waits_longer_each_time():
    clock = Clock()
    restarts = Restarts(clock)
    restarts.exited("gateway")
    restarts.due()
    delays = []
    for _ in range(7):
        clock.now += 2  # dies 2 s after each start
        delays.append(restarts.exited("gateway"))
        clock.now += delays[-1] - 0.1
        assert restarts.due() == []  # not before its delay
        clock.now += 0.1
        assert restarts.due() == ["gateway"]
    assert delays == [1, 2, 4, 8, 16, MAX_DELAY, MAX_DELAY]


def test_a_process_that_ran_long_enough_is_started_again_at_once():
    clock = Clock()
    restarts = Restarts(clock)
    for _ in range(3):  # backing off by now
        restarts.exited("consul")
        clock.now += 30
        restarts.due()
    clock.now += STABLE_AFTER
    assert restarts.exited("consul") == 0


def test_each_process_has_its_own_count():
    clock = Clock()
    restarts = Restarts(clock)
    restarts.exited("a")
    restarts.due()
    clock.now += 1
    assert restarts.exited("a") == 1
    assert restarts.exited("b") == 0
    assert restarts.due() == ["b"]
