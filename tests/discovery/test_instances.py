import math
import time

import pytest

from discovery.instances import Instance, Snapshot


def test_instance_is_immutable_and_hashable():
    a = Instance("u-1", "user-service", "10.0.0.1", 80, ["v1"], {"version": "1"})
    b = Instance("u-1", "user-service", "10.0.0.1", 80, ("v1",), {"version": "1"})
    assert a == b and hash(a) == hash(b)
    assert a.tags == ("v1",)
    with pytest.raises(TypeError):
        a.meta["version"] = "2"
    with pytest.raises(AttributeError):
        a.port = 81


def test_meta_is_a_copy_of_the_given_mapping():
    meta = {"version": "1"}
    instance = Instance("u-1", "user-service", "10.0.0.1", 80, meta=meta)
    meta["version"] = "2"
    assert instance.meta["version"] == "1"


@pytest.mark.parametrize(
    "address, url",
    [
        ("10.0.0.1", "http://10.0.0.1:80"),
        ("users.internal", "http://users.internal:80"),
        ("::1", "http://[::1]:80"),
    ],
)
def test_base_url(address, url):
    assert Instance("x", "s", address, 80).base_url == url


def test_snapshot_age_and_loaded():
    empty = Snapshot()
    assert not empty.loaded and empty.stale and math.isinf(empty.age)
    fresh = Snapshot((), index=5, updated_at=time.monotonic() - 2, stale=False)
    assert fresh.loaded and 2 <= fresh.age < 60
