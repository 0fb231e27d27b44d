import pytest

from switchyard.consul_api import ConsulAPI, aggregate_status, service_checks


@pytest.mark.parametrize(
    "statuses, expected",
    [
        ([], "passing"),
        (["passing", "passing"], "passing"),
        (["passing", "warning"], "warning"),
        (["warning", "critical", "passing"], "critical"),
    ],
)
def test_aggregate_status_is_the_worst(statuses, expected):
    assert aggregate_status([{"Status": s} for s in statuses]) == expected


def test_service_checks_leave_out_node_checks():
    checks = [
        {"CheckID": "serfHealth", "ServiceID": ""},
        {"CheckID": "c1", "ServiceID": "a"},
    ]
    assert service_checks(checks) == [checks[1]]


@pytest.mark.integration
def test_against_devconsul(devconsul):
    api = ConsulAPI(devconsul.url)
    assert api.leader_ready()
    body = {"ID": "svc-127.0.0.1-1", "Name": "svc", "Address": "127.0.0.1", "Port": 1}
    api.session.put(
        f"{devconsul.url}/v1/agent/service/register", json=body
    ).raise_for_status()
    assert "svc" in api.service_names()
    assert api.instance_status("svc") == {"svc-127.0.0.1-1": "passing"}
    api.deregister("svc-127.0.0.1-1")
    api.deregister("svc-127.0.0.1-1")  # already gone: not an error
    assert api.instance_status("svc") == {}


def test_unreachable_agent_is_not_ready():
    assert not ConsulAPI("http://127.0.0.1:9").leader_ready()
