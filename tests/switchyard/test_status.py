import json
import os

import pytest

from switchyard.process import process_start_time
from switchyard.state import ProcessRecord, StackState
from switchyard.status import collect, to_json, to_text

ID = "user-service-127.0.0.1-4001"


def report(**overrides) -> dict:
    base = {
        "consul": {"addr": "127.0.0.1:8500", "kind": "devconsul"},
        "gateway_url": "http://127.0.0.1:8000",
        "consul_ui_url": "http://127.0.0.1:8500/ui/",
        "reachable": True,
        "error": None,
        "processes": [],
        "services": [
            {
                "name": "user-service",
                "instances": [
                    {
                        "id": ID,
                        "address": "127.0.0.1",
                        "port": 4001,
                        "status": "critical",
                        "pid": 42,
                        "checks": [
                            {
                                "id": "c",
                                "name": "http",
                                "status": "critical",
                                "output": "HTTP GET\nrefused",
                            }
                        ],
                    }
                ],
            }
        ],
    }
    return {**base, **overrides}


def test_text_is_a_table_with_check_output():
    lines = to_text(report()).splitlines()
    assert lines[0] == "Consul 127.0.0.1:8500"
    assert lines[1].split() == [
        "SERVICE",
        "ID",
        "ADDRESS",
        "PID",
        "HEALTH",
        "CHECK",
        "OUTPUT",
    ]
    assert lines[3].split() == [
        "user-service",
        ID,
        "127.0.0.1:4001",
        "42",
        "critical",
        "HTTP",
        "GET",
        "refused",
    ]


def test_text_reports_an_unreachable_agent_and_dead_processes():
    text = to_text(
        report(
            reachable=False,
            error="connection refused",
            services=[],
            processes=[
                {
                    "name": "consul",
                    "service": "consul",
                    "port": 1,
                    "pid": 5,
                    "alive": False,
                }
            ],
        )
    )
    assert "unreachable: connection refused" in text
    assert "not running (in the state file): consul" in text


def test_json_is_sorted_and_parseable():
    text = to_json(report())
    assert json.loads(text) == report()
    assert text == json.dumps(report(), indent=2, sort_keys=True)


@pytest.mark.integration
def test_collect_joins_consul_and_local_pids(devconsul):
    import requests

    check = {
        "CheckID": "c",
        "Name": "http",
        "TTL": "30s",
        "Status": "warning",
        "Notes": "",
    }
    body = {
        "ID": ID,
        "Name": "user-service",
        "Address": "127.0.0.1",
        "Port": 4001,
        "Check": check,
    }
    requests.put(
        f"{devconsul.url}/v1/agent/service/register", json=body, timeout=5
    ).raise_for_status()
    me = ProcessRecord(
        ID, "user-service", 4001, os.getpid(), process_start_time(os.getpid())
    )
    state = StackState(
        supervisor_pid=1,
        consul_addr=devconsul.addr,
        consul_kind="devconsul",
        processes=[me],
    )
    result = collect(devconsul.addr, "", state)
    assert result["reachable"]
    (service,) = [s for s in result["services"] if s["name"] == "user-service"]
    (instance,) = service["instances"]
    assert (instance["id"], instance["port"], instance["pid"], instance["status"]) == (
        ID,
        4001,
        os.getpid(),
        "warning",
    )
    assert [c["id"] for c in instance["checks"]] == ["c"]
    assert result["processes"][0]["alive"] is True


def test_collect_from_an_unreachable_agent():
    result = collect("127.0.0.1:9")
    assert result["reachable"] is False
    assert result["error"]
    assert result["services"] == []
