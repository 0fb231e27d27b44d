"""The directory against fake Consul parts: following the catalog, forgetting instances."""

from discovery.consul_client import ConsulSettings
from gateway.directory import Directory
from gateway.resilience import Ejector
from tests.gateway.fakes import FakeCatalog, FakeWatchers
from tests.support.processes import wait_until


class RecordingCatalog(FakeCatalog):
    """Fails once after its first answer; records the index of every query."""

    def __init__(self):
        super().__init__()
        self.queries = []

    def services(self, index=None, wait=None):
        self.queries.append(index)
        self.fail = len(self.queries) == 2
        return super().services(index, wait)


def test_catalog_query_after_a_failure_starts_without_an_index():
    catalog = RecordingCatalog()
    catalog.index = 7
    directory = Directory(
        ConsulSettings.from_env({}),
        "round_robin",
        Ejector(),
        watcher_factory=FakeWatchers(),
        catalog=catalog,
    )
    directory.start()
    try:
        wait_until(lambda: len(catalog.queries) >= 3, 5, what="a query after failing")
    finally:
        directory.stop()
    # A restarted agent's index starts low again: a kept one would mean a blocked wait.
    assert catalog.queries[:3] == [None, 7, None]
