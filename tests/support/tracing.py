"""A gateway span recorder (chassis.spans) for tests: what it ends is kept in a list."""

from chassis.spans import Sampling, SpanRecorder

__all__ = ["keeping_recorder"]


def keeping_recorder(sampler: str = "parentbased_always_on"):
    """(recorder, the list its ended spans are appended to, children before parents)."""
    ended: list = []
    return SpanRecorder(Sampling(sampler), ended.append), ended
