"""The directory against fake Consul parts: following the catalog, forgetting instances."""

from discovery.consul_client import ConsulSettings
from discovery.watcher import RateLimit
from gateway.directory import Directory
from gateway.resilience import Ejector
from tests.gateway.fakes import FakeCatalog, FakeWatchers
from tests.support.clock import RecordingRate
from tests.support.processes import wait_until


class QueryLog(FakeCatalog):
    """Records the index of every query: one with index N means answer N was applied."""

    def __init__(self):
        super().__init__()
        self.queries = []

    def services(self, index=None, wait=None):
        self.queries.append(index)
        return super().services(index, wait)

    def applied(self, index) -> None:
        wait_until(lambda: index in self.queries, 5, what=f"answer {index} applied")


class RecordingCatalog(QueryLog):
    """Fails once after its first answer."""

    def services(self, index=None, wait=None):
        self.fail = len(self.queries) == 1
        return super().services(index, wait)


def following(
    catalog, watchers=None, reset_hold=30.0, rate=None, watch_tag=""
) -> Directory:
    """A started directory following `catalog`, with fake watchers."""
    directory = Directory(
        ConsulSettings.from_env({}),
        "round_robin",
        Ejector(),
        watcher_factory=watchers or FakeWatchers(),
        catalog=catalog,
        reset_hold=reset_hold,
        rate=rate or RateLimit(period=0.01),
        watch_tag=watch_tag,
    )
    directory.start()
    return directory


def test_a_watch_tag_follows_only_the_services_carrying_it():
    catalog = QueryLog()
    catalog.tags = {"users": ["v1", "edge"], "orders": ["v1"], "Edgy": ["Edge"]}
    catalog.set("users", "orders", "Edgy", "consul")
    directory = following(catalog, watch_tag="edge")
    try:
        catalog.applied(catalog.index)
        assert watched(directory) == {"users"}
        catalog.tags["orders"] = ["edge"]
        catalog.set("users", "orders", "Edgy", "consul")
        catalog.applied(catalog.index)
        assert watched(directory) == {"users", "orders"}
    finally:
        directory.stop()


def test_without_a_watch_tag_every_service_but_consul_is_followed():
    catalog = QueryLog()
    catalog.tags = {"users": ["edge"]}
    catalog.set("users", "orders", "consul")
    directory = following(catalog)
    try:
        catalog.applied(catalog.index)
        assert watched(directory) == {"users", "orders"}
    finally:
        directory.stop()


def test_catalog_query_after_a_failure_starts_without_an_index():
    catalog = RecordingCatalog()
    catalog.index = 7
    directory = following(catalog)
    try:
        wait_until(lambda: len(catalog.queries) >= 3, 5, what="a query after failing")
    finally:
        directory.stop()
    # A restarted agent's index starts low again: a kept one would mean a blocked wait.
    assert catalog.queries[:3] == [None, 7, None]


def watched(directory: Directory) -> set[str]:
    return set(directory.view().services)


def restart_empty(catalog: FakeCatalog) -> None:
    """What a restarted agent shows: its index starts low again, nothing registered."""
    with catalog._changed:
        catalog.names, catalog.index = set(), 1
        catalog._changed.notify_all()


def test_a_restarted_empty_catalog_keeps_services_until_they_re_register():
    catalog = QueryLog()
    catalog.index = 40
    catalog.set("users", "orders")
    directory = following(catalog)
    try:
        catalog.applied(41)
        restart_empty(catalog)
        catalog.applied(1)
        assert watched(directory) == {"users", "orders"}
        catalog.set("users")  # one re-registered, the other not yet
        catalog.applied(2)
        assert watched(directory) == {"users", "orders"}
        catalog.set("users", "orders")  # every service back: the hold is over
        catalog.applied(3)
        catalog.set("users")  # so one that leaves now is gone at once
        catalog.applied(4)
        assert watched(directory) == {"users"}
    finally:
        directory.stop()


def test_after_an_outage_a_service_still_missing_goes_when_the_hold_ends():
    catalog = FakeCatalog()
    catalog.set("users", "orders")
    directory = following(catalog, reset_hold=0.5)
    try:
        wait_until(lambda: watched(directory) == {"users", "orders"}, 5, what="both")
        catalog.fail = True
        wait_until(lambda: directory.catalog_error is not None, 5, what="an error")
        catalog.names = {"users"}
        catalog.fail = False
        wait_until(lambda: directory.catalog_error is None, 5, what="back")
        held = watched(directory)
        wait_until(lambda: watched(directory) == {"users"}, 5, what="orders gone")
    finally:
        directory.stop()
    assert held == {"users", "orders"}


def test_an_overdue_consul_answer_makes_consul_unreachable_at_once():
    catalog = QueryLog()
    catalog.set("users")
    watchers = FakeWatchers()
    directory = following(catalog, watchers)
    try:
        catalog.applied(2)
        assert directory.consul_reachable
        watchers.overdue.add("users")  # a hung agent: the blocking query never returns
        assert not directory.consul_reachable
    finally:
        directory.stop()


def test_a_catalog_index_of_zero_is_blocked_on_as_one():
    catalog = QueryLog()
    catalog.index = 0  # X-Consul-Index 0, a Consul bug: index=0 would not block
    directory = following(catalog)
    try:
        wait_until(lambda: len(catalog.queries) >= 3, 5, what="three queries")
    finally:
        directory.stop()
    assert catalog.queries[:3] == [None, 1, 1]


class ChurningCatalog(QueryLog):
    """An index that moves on every query: each answer comes back at once."""

    def services(self, index=None, wait=None):
        self.queries.append(index)
        self.index += 1
        return self.index, {}


def test_a_churning_catalog_does_not_spin_the_loop():
    catalog, rate = ChurningCatalog(), RecordingRate(free=3)
    directory = following(catalog, rate=rate)
    try:
        wait_until(lambda: rate.asked == 4, 5, what="the fourth token asked")
        # Every query paid its token first: the fourth waits, so three went out.
        assert len(catalog.queries) == 3
    finally:
        directory.stop()
