"""Stand-ins for Consul in in-process gateway tests: a catalog and health watchers."""

import threading
import time

from discovery.instances import Instance, Snapshot
from discovery.watcher import count_swap

__all__ = ["FakeCatalog", "FakeWatchers", "echo_instance"]


def echo_instance(name, port, service="echo", prefix="/echo", status="passing", **meta):
    return Instance(
        name,
        service,
        "127.0.0.1",
        port,
        meta={"gateway_prefix": prefix, **meta},
        status=status,
    )


class FakeCatalog:
    """py-consul `catalog.services` with blocking semantics; `fail` makes it raise."""

    def __init__(self):
        self.names: set[str] = set()
        self.tags: dict[str, list[str]] = {}  # by name; none: []
        self.index = 1
        self.fail = False
        self._changed = threading.Condition()

    def set(self, *names: str) -> None:
        with self._changed:
            self.names = set(names)
            self.index += 1
            self._changed.notify_all()

    def services(self, index=None, wait=None):
        with self._changed:
            if index is not None:
                self._changed.wait_for(lambda: self.index != index, timeout=0.5)
            if self.fail:
                raise ConnectionError("consul down")
            return self.index, {name: self.tags.get(name, []) for name in self.names}


class FakeWatcher:
    def __init__(self, service, watchers):
        self.service = service
        self.watchers = watchers

    def start(self):
        return self

    def stop(self):
        pass

    def wait_ready(self, timeout):
        return True

    def overdue(self):
        return self.service in self.watchers.overdue

    def snapshot(self):
        return self.watchers.snapshots.setdefault(
            self.service, Snapshot((), 1, time.monotonic(), False)
        )


class FakeWatchers:
    """`watcher_factory` whose snapshots the test sets per service."""

    def __init__(self):
        self.snapshots: dict[str, Snapshot] = {}
        self.overdue: set[str] = set()  # services whose Consul answer is late

    def __call__(self, service):
        return FakeWatcher(service, self)

    def set(self, service, *instances, stale=False):
        self.snapshots[service] = Snapshot(
            tuple(instances), 1, time.monotonic(), stale, "down" if stale else None
        )
        count_swap()  # as a real watcher does after a swap
