"""bench.gateway_bench: the order of the interleaved rounds."""

import pytest

from bench.gateway_bench import rotated

PATHS = ["direct", "gateway", "nginx"]


@pytest.mark.parametrize(
    "round_, order",
    [
        (0, ["direct", "gateway", "nginx"]),
        (1, ["gateway", "nginx", "direct"]),
        (2, ["nginx", "direct", "gateway"]),
        (3, ["direct", "gateway", "nginx"]),
    ],
)
def test_each_path_takes_each_place_in_turn(round_, order):
    assert rotated(round_, PATHS) == order


def test_rotated_without_nginx():
    assert rotated(1, ["direct", "gateway"]) == ["gateway", "direct"]
