from devconsul import render
from devconsul.definitions import CheckDefinition
from devconsul.durations import SECOND
from devconsul.store import Check, KVEntry, Store


def _row(check_id, status):
    return {"CheckID": check_id, "Status": status}


def test_aggregate_status_precedence():
    assert render.aggregate_status([]) == "passing"
    assert (
        render.aggregate_status([_row("a", "warning"), _row("b", "passing")])
        == "warning"
    )
    assert (
        render.aggregate_status([_row("a", "warning"), _row("b", "critical")])
        == "critical"
    )
    rows = [_row("_service_maintenance:x", "critical"), _row("a", "passing")]
    assert render.aggregate_status(rows) == "maintenance"
    assert (
        render.aggregate_status([_row("_node_maintenance", "critical")])
        == "maintenance"
    )


def test_kv_entry_empty_value_is_null():
    assert render.kv_entry(KVEntry("k", b""))["Value"] is None
    assert render.kv_entry(KVEntry("k", b"hi"))["Value"] == "aGk="
    assert "Session" not in render.kv_entry(KVEntry("k", b""))


def test_check_definition_durations_are_go_strings():
    check = Check(
        node="n",
        id="c",
        name="c",
        definition=CheckDefinition(http="http://x", interval=SECOND),
        type="http",
    )
    row = render.health_check(check, Store())
    assert (row["Interval"], row["Timeout"]) == ("1s", "")
    definition = row["Definition"]
    assert (definition["Interval"], definition["Timeout"]) == ("1s", "0s")
    assert definition["DeregisterCriticalServiceAfter"] == "0s"
    bare = render.health_check(Check(node="n", id="s", name="s"), Store())
    assert bare["Definition"] == {}
