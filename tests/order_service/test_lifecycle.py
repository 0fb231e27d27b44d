import itertools

import pytest

from order_service.lifecycle import STATUSES, can_move

ALLOWED = {
    ("pending", "paid"),
    ("paid", "shipped"),
    ("shipped", "delivered"),
    ("pending", "cancelled"),
    ("paid", "cancelled"),
}


@pytest.mark.parametrize(
    ("current", "target"), list(itertools.product(STATUSES, repeat=2))
)
def test_only_the_documented_moves_are_allowed(current, target):
    assert can_move(current, target) == ((current, target) in ALLOWED)


def test_unknown_status_moves_nowhere():
    assert not can_move("lost", "paid")
