import time

import pytest


@pytest.fixture
def utc(monkeypatch):
    """Local time is UTC for the test: printed clock times do not depend on the machine."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()
