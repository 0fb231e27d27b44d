import threading
import time

from devconsul.store import CHECKS, KV, SERVICES, Check, KVEntry, Node, Service, Store


def _store() -> Store:
    store = Store()
    store.put_node(Node("id", "n1", "127.0.0.1", "dc1", {}, {}))
    return store


def test_a_transaction_takes_one_index_and_stamps_records():
    store = _store()
    with store.write():
        store.put_service(Service(node="n1", id="a", name="web"))
        store.put_check(Check(node="n1", id="c", name="c", service_id="a"))
    svc, check = store.services[("n1", "a")], store.checks[("n1", "c")]
    assert svc.create_index == svc.modify_index == check.modify_index == store.index
    assert store.table_index[SERVICES] == store.table_index[CHECKS] == store.index
    assert store.service_name_index["web"] == store.index


def test_unchanged_check_result_bumps_nothing():
    store = _store()
    store.put_service(Service(node="n1", id="a", name="web"))
    store.put_check(
        Check(node="n1", id="c", name="c", service_id="a", service_name="web")
    )
    assert store.set_check_status("n1", "c", "passing", "ok") == "critical"
    before = store.index
    assert store.set_check_status("n1", "c", "passing", "ok") is None
    assert store.index == before
    assert store.set_check_status("n1", "c", "passing", "changed") is None
    assert store.index == before + 1
    assert store.service_name_index["web"] == store.index


def test_critical_since_follows_status_changes():
    store = _store()
    store.put_check(Check(node="n1", id="c", name="c"))
    assert store.checks[("n1", "c")].critical_since is not None
    store.set_check_status("n1", "c", "passing", "")
    assert store.checks[("n1", "c")].critical_since is None


def test_node_check_touches_every_service_name_on_the_node():
    store = _store()
    store.put_service(Service(node="n1", id="a", name="web"))
    store.put_service(Service(node="n1", id="b", name="api"))
    store.put_check(Check(node="n1", id="_node_maintenance", name="m"))
    assert (
        store.service_name_index["web"]
        == store.service_name_index["api"]
        == store.index
    )


def test_deregistration_keeps_the_name_index_rising():
    store = _store()
    store.put_service(Service(node="n1", id="a", name="web"))
    first = store.service_name_index["web"]
    store.delete_service("n1", "a")
    assert store.service_name_index["web"] > first


def test_kv_cas_and_tombstones():
    store = Store()
    assert store.kv_put(KVEntry("a/b", b"1"), cas=0) is True
    assert store.kv_put(KVEntry("a/b", b"2"), cas=0) is False
    index = store.kv["a/b"].modify_index
    assert store.kv_put(KVEntry("a/b", b"3"), cas=index) is True
    assert store.kv["a/b"].create_index == index
    assert store.kv_delete("a/b", cas=1) is False
    store.kv_delete("a/b")
    assert store.kv_prefix_index("a/") == store.index == store.table_index[KV]
    assert store.kv_key_index("a/b") == store.index


def test_wait_until_wakes_on_a_write_not_by_polling():
    store = Store()
    woke = threading.Event()

    def waiter():
        store.wait_until(lambda: "k" in store.kv, timeout=10)
        woke.set()

    threading.Thread(target=waiter, daemon=True).start()
    time.sleep(0.05)
    assert not woke.is_set()
    store.kv_put(KVEntry("k", b""))
    assert woke.wait(2)


def test_wait_until_times_out():
    store = Store()
    start = time.monotonic()
    store.wait_until(lambda: False, timeout=0.1)
    assert 0.09 <= time.monotonic() - start < 2


def test_identical_rewrites_bump_nothing():
    store = _store()
    store.put_service(Service(node="n1", id="a", name="web", port=80))
    store.put_check(Check(node="n1", id="c", name="c", service_id="a"))
    before = store.index
    store.put_node(Node("id", "n1", "127.0.0.1", "dc1", {}, {}))
    store.put_service(Service(node="n1", id="a", name="web", port=80))
    store.put_check(Check(node="n1", id="c", name="c", service_id="a"))
    assert store.index == before
    store.put_service(Service(node="n1", id="a", name="web", port=81))
    assert store.index == before + 1
