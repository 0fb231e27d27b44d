"""/v1/agent/metrics, /v1/agent/reload and /v1/agent/monitor against a real devconsul.

Relies on hashicorp/consul agent/agent_endpoint.go (AgentMetrics: JSON from
go-metrics' inmem sink, 415 for Prometheus without a retention time, which dev
mode does not set -- DevSource in agent/config/default.go; AgentReload;
AgentMonitor: loglevel validated by hclog.LevelFromString, "Unknown log level",
a chunked text stream until the client leaves) and api/agent.go. With
telemetry.prometheus_retention_time set, the same gauges in Prometheus' text
format as go-metrics' prometheus sink names them (dots to underscores, under
the "consul" prefix), served by promhttp without OpenMetrics.
"""

import json
import re

import pytest
import requests

import consul
from tests.conftest import Agent
from tests.support.processes import free_port, wait_until

pytestmark = pytest.mark.integration


def _gauges(client) -> dict[str, float]:
    return {g["Name"]: g["Value"] for g in client.agent.metrics()["Gauges"]}


def test_metrics_json_shape_and_gauges_follow_the_store(client, api):
    data = client.agent.metrics()
    assert set(data) == {"Timestamp", "Gauges", "Points", "Counters", "Samples"}
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d0 \+0000 UTC", data["Timestamp"])
    assert all(set(g) == {"Name", "Value", "Labels"} for g in data["Gauges"])
    before = _gauges(client)
    api.register({"Name": "web", "Port": 80})
    client.kv.put("metrics/a", "1")
    after = _gauges(client)
    assert after["consul.state.service_instances"] == (
        before["consul.state.service_instances"] + 1
    )
    assert after["consul.state.kv_entries"] == before["consul.state.kv_entries"] + 1
    assert after["consul.state.nodes"] == 1.0


def test_prometheus_is_refused_as_on_a_dev_agent(client, api):
    for r in (
        api.get("/v1/agent/metrics?format=prometheus"),
        api.get(
            "/v1/agent/metrics", headers={"Accept": "application/openmetrics-text"}
        ),
    ):
        assert (r.status_code, r.headers["Content-Type"], r.text) == (
            415,
            "text/plain",
            "Prometheus is not enabled since its retention time is not positive",
        )
    with pytest.raises(consul.ConsulException, match="415"):
        client.agent.metrics(format_prometheus=True)


@pytest.fixture
def prometheus_agent():
    """Started the way a user turns Prometheus output on in Consul."""
    hcl = 'telemetry { prometheus_retention_time = "60s" }'
    agent = Agent(free_port(), "-hcl", hcl)
    yield agent
    agent.process.stop()


def _parse_exposition(text: str) -> dict[str, float]:
    """Samples of Prometheus' text format, checking each has HELP and TYPE."""
    samples, declared = {}, set()
    for line in text.splitlines():
        if line.startswith("# "):
            kind, name, rest = line[2:].split(" ", 2)
            assert kind in ("HELP", "TYPE")
            if kind == "TYPE":
                assert rest == "gauge"
                declared.add(name)
            continue
        name, value = line.split(" ")
        assert name in declared, f"{name} has no TYPE line before it"
        samples[name] = float(value)
    return samples


def test_prometheus_output_when_retention_is_set(prometheus_agent):
    client = consul.Consul(host="127.0.0.1", port=prometheus_agent.port)
    client.agent.service.register("web", port=80)
    client.kv.put("metrics/a", "1")
    url = f"{prometheus_agent.url}/v1/agent/metrics?format=prometheus"
    r = requests.get(url, timeout=10)
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert r.text.endswith("\n")
    samples = _parse_exposition(r.text)
    assert all(re.fullmatch(r"consul_[a-z_]+", name) for name in samples)
    assert list(samples) == sorted(samples)
    # The same gauges as the JSON answer, under the flattened names.
    json_gauges = _gauges(client)
    assert set(samples) == {name.replace(".", "_") for name in json_gauges}
    for name in ("state.service_instances", "state.kv_entries", "state.nodes"):
        assert (
            samples[f"consul_{name.replace('.', '_')}"] == json_gauges[f"consul.{name}"]
        )
    assert samples["consul_state_kv_entries"] == 1
    text = client.agent.metrics(format_prometheus=True)
    assert text.startswith("# HELP consul_autopilot_failure_tolerance ")


def test_reload_answers_empty_200(client, api):
    assert client.agent.reload() is True
    r = api.put("/v1/agent/reload")
    assert (r.status_code, r.content) == (200, b"")
    assert api.get("/v1/agent/reload").status_code == 405


def _first_line(resp, contains: str) -> str:
    for line in resp.iter_lines(decode_unicode=True):
        if contains in line:
            return line
    raise AssertionError(f"stream ended before {contains!r}")


def test_monitor_streams_log_lines_until_the_client_leaves(client, devconsul, api):
    def threads() -> float:
        return _gauges(client)["consul.runtime.num_goroutines"]

    api.get("/v1/agent/self")  # the api's keep-alive connection holds a thread too
    baseline = threads()
    resp = requests.get(devconsul.url + "/v1/agent/monitor", stream=True, timeout=10)
    assert resp.status_code == 200
    assert resp.headers["Transfer-Encoding"] == "chunked"
    assert resp.headers["Content-Type"] == "text/plain; charset=utf-8"
    api.register({"Name": "streamed", "Port": 81})
    line = _first_line(resp, "registered service streamed")
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z \[INFO\]  agent: registered service "
        r"streamed \(streamed\)",
        line,
    )
    resp.close()
    # The agent notices the client left and frees the stream's thread.
    wait_until(lambda: threads() <= baseline, what="monitor thread ended")


def test_monitor_json_lines_and_level_filter(devconsul, api):
    url = devconsul.url + "/v1/agent/monitor"
    with (
        requests.get(url, params={"loglevel": "warn"}, stream=True, timeout=10) as warn,
        requests.get(url, params={"logjson": ""}, stream=True, timeout=10) as js,
    ):
        api.register({"Name": "jsoned", "Port": 82})
        record = json.loads(_first_line(js, "jsoned"))
        assert {k: record[k] for k in ("@level", "@module", "@message")} == {
            "@level": "info",
            "@module": "agent",
            "@message": "registered service jsoned (jsoned)",
        }
        # Too short a check interval logs a warning the warn stream shows,
        # while the info line of the registration before it is filtered out.
        api.register(
            {
                "Name": "hasty",
                "Port": 83,
                "Check": {"HTTP": "http://127.0.0.1:9/", "Interval": "1ms"},
            }
        )
        # The first line the warn stream carries: no "registered service" before it.
        line = next(warn.iter_lines(decode_unicode=True))
        assert "[WARN]  checks: check service:hasty: interval below" in line


@pytest.mark.parametrize("level", ["verbose", "err", "5"])
def test_monitor_refuses_unknown_levels(api, level):
    r = api.get("/v1/agent/monitor", params={"loglevel": level})
    assert (r.status_code, r.text) == (400, f"Unknown log level: {level}")


def test_monitor_at_debug_sees_what_stderr_does_not(devconsul, api):
    """Consul's monitor streams at the level asked for, whatever the agent's
    log level; devconsul's stderr stays at -log-level (info here)."""
    url = devconsul.url + "/v1/agent/monitor"
    with requests.get(url, params={"loglevel": "debug"}, stream=True, timeout=10) as r:
        api.get("/v1/kv/only-in-debug")
        line = _first_line(r, "/v1/kv/only-in-debug")
        assert "[DEBUG] http: " in line
        api.register({"Name": "after-debug", "Port": 84})
    wait_until(
        lambda: (
            "INFO devconsul.agent: registered service after-debug"
            in devconsul.process.output()
        ),
        what="the info line on stderr",
    )
    assert "/v1/kv/only-in-debug" not in devconsul.process.output()
