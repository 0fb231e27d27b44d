"""Both required strategies, observed through X-Served-By."""

import itertools

import pytest
import requests

from tests.integration.api import TIMEOUT, create_user

pytestmark = pytest.mark.integration


def served_by(url: str, n: int) -> list[str]:
    with requests.Session() as session:
        answers = [session.get(url, timeout=TIMEOUT) for _ in range(n)]
    assert all(a.status_code == 200 for a in answers), [
        a.text for a in answers if a.status_code != 200
    ]
    return [a.headers["X-Served-By"] for a in answers]


def test_round_robin_alternates_between_instances(stack, gateway):
    user = create_user(gateway)
    ids = served_by(f"{gateway}/api/users/{user['id']}", 10)
    expected = {s.name for s in stack.instances("user-service")}
    assert set(ids) == expected
    assert all(a != b for a, b in itertools.pairwise(ids)), ids


def test_random_reaches_every_instance(stack, gateway):
    user = create_user(gateway)
    spec = stack.add_gateway("random")
    try:
        ids = served_by(f"{spec.url}/api/users/{user['id']}", 40)
    finally:
        stack.retire(spec.name)
    assert set(ids) == {s.name for s in stack.instances("user-service")}
    # 40 strict alternations would be a 1 in 2**39 accident for a fair coin.
    assert any(a == b for a, b in itertools.pairwise(ids)), ids
