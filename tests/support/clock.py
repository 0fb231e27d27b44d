"""Time by hand: a clock the test moves (`clock.now += 5`), for code that takes a clock, and
a rate limit that counts the tokens asked of it, for loops that take one."""


class Clock:
    def __init__(self, now: float = 1000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


class RecordingRate:
    """discovery.watcher.RateLimit's shape: free for the first `free` tokens, then makes
    the loop wait an hour, so that the test can count what went out before."""

    def __init__(self, free: int):
        self.free, self.asked = free, 0

    def delay(self) -> float:
        self.asked += 1
        return 0.0 if self.asked <= self.free else 3600.0

    def refill(self) -> None:
        pass
