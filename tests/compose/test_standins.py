"""The stand-in images' commands, run here as real processes on loopback, without Docker, so
CI checks them too.

docker/standins/consul/consul runs devconsul for the compose file's own Consul command and
answers the compose healthcheck (`consul members`). docker/standins/jaeger/jaeger takes what
the services' OTLP exporters send and answers Jaeger's query API in Jaeger's JSON shape.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests
import yaml
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceResponse,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
    InMemorySpanExporter,
)
from opentelemetry.trace import SpanKind, set_span_in_context

from tests.compose.tooling import COMPOSE_FILE, REPO
from tests.support.processes import ManagedProcess, free_port

CONSUL = REPO / "docker" / "standins" / "consul" / "consul"
JAEGER = REPO / "docker" / "standins" / "jaeger" / "jaeger"
# The stand-in execs `devconsul`: the one installed beside this interpreter.
ENV = {"PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}


def consul(*args: str, address: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(CONSUL), *args],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, **ENV, "CONSUL_HTTP_ADDR": address},
        check=False,
    )


def compose_consul_command() -> list[str]:
    """The compose file's command, with its mounted config dir at its place in the repo."""
    service = yaml.safe_load(COMPOSE_FILE.read_text())["services"]["consul"]
    (volume,) = service["volumes"]
    source, target, _ = volume.split(":")
    return [arg.replace(target, str(REPO / source)) for arg in service["command"]]


def test_compose_command_runs_devconsul_with_the_agent_config_and_members_answers():
    port = free_port()
    address = f"127.0.0.1:{port}"
    agent = ManagedProcess(
        [
            sys.executable,
            str(CONSUL),
            *compose_consul_command(),
            # Later flags win: loopback and a free port instead of the container's 0.0.0.0:8500.
            "-client=127.0.0.1",
            f"-http-port={port}",
        ],
        env=ENV,
        name="standin-consul",
    ).start()
    try:
        agent.wait_http(f"http://{address}/v1/status/leader")
        # node_name and datacenter come from consul/agent.hcl.
        self_info = requests.get(f"http://{address}/v1/agent/self", timeout=5).json()
        assert (self_info["Config"]["NodeName"], self_info["Config"]["Datacenter"]) == (
            "consul",
            "dc1",
        )
        members = consul("members", address=address)
        assert members.returncode == 0, members.stderr
        assert members.stdout.splitlines()[1].split()[:3] == [
            "consul",
            "127.0.0.1:8301",
            "alive",
        ]
    finally:
        agent.stop()
    assert "ignoring setting ui_config.enabled" in agent.output()


def test_members_fails_when_no_agent_answers():
    result = consul("members", address=f"127.0.0.1:{free_port()}")
    assert result.returncode == 1
    assert "Error retrieving members" in result.stderr


def test_commands_it_cannot_stand_in_for_are_refused():
    for args in (["kv", "get", "x"], ["agent", "-dev", "-retry-join=x"], ["agent"]):
        result = consul(*args, address="127.0.0.1:1")
        assert result.returncode == 1, args
        assert "consul (devconsul stand-in):" in result.stderr, args


@pytest.fixture
def jaeger(tmp_path):
    """The stand-in on free loopback ports: (OTLP base URL, query base URL)."""
    otlp_port, query_port = free_port(), free_port()
    process = ManagedProcess(
        [
            sys.executable,
            str(JAEGER),
            "--host=127.0.0.1",
            f"--otlp-port={otlp_port}",
            f"--query-port={query_port}",
            f"--data-dir={tmp_path}",
        ],
        name="standin-jaeger",
    ).start()
    query = f"http://127.0.0.1:{query_port}"
    try:
        process.wait_http(f"{query}/api/services")
        yield f"http://127.0.0.1:{otlp_port}", query
    finally:
        process.stop()


def gateway_to_order_service_spans() -> list:
    """A gateway server span and an order-service child in the same trace, as the SDK
    hands them to an exporter."""
    exporter = InMemorySpanExporter()

    def tracer(service: str):
        provider = TracerProvider(
            resource=Resource.create({"service.name": service}),
            shutdown_on_exit=False,
        )
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        return provider.get_tracer("test")

    with tracer("gateway").start_as_current_span(
        "GET /api/orders", kind=SpanKind.SERVER, attributes={"http.status_code": 200}
    ) as parent:
        tracer("order-service").start_span(
            "GET /orders", kind=SpanKind.SERVER, context=set_span_in_context(parent)
        ).end()
    return list(exporter.get_finished_spans())


def test_jaeger_standin_takes_otlp_and_serves_traces_in_jaegers_shape(jaeger):
    otlp, query = jaeger
    spans = gateway_to_order_service_spans()
    child, parent = spans  # children end first
    trace_id = format(parent.context.trace_id, "032x")
    # What the services' exporter does; then the raw answer: 200, an empty response message.
    exporter = OTLPSpanExporter(endpoint=f"{otlp}/v1/traces")
    assert exporter.export(spans) is SpanExportResult.SUCCESS
    raw = requests.post(
        f"{otlp}/v1/traces",
        data=b"",
        headers={"Content-Type": "application/x-protobuf"},
        timeout=5,
    )
    assert raw.status_code == 200
    assert ExportTraceServiceResponse.FromString(raw.content) == (
        ExportTraceServiceResponse()
    )

    services = requests.get(f"{query}/api/services", timeout=5).json()
    assert services["data"] == ["gateway", "order-service"]
    found = requests.get(f"{query}/api/traces?service=order-service", timeout=5)
    assert found.status_code == 200
    (trace,) = found.json()["data"]  # the whole trace, the gateway's span too
    assert trace["traceID"] == trace_id
    by_name = {span["operationName"]: span for span in trace["spans"]}
    assert set(by_name) == {"GET /api/orders", "GET /orders"}
    root, leaf = by_name["GET /api/orders"], by_name["GET /orders"]
    assert root["references"] == []
    assert leaf["references"] == [
        {
            "refType": "CHILD_OF",
            "traceID": trace_id,
            "spanID": format(parent.context.span_id, "016x"),
        }
    ]
    assert leaf["spanID"] == format(child.context.span_id, "016x")
    assert {"key": "http.status_code", "type": "int64", "value": 200} in root["tags"]
    assert trace["processes"][root["processID"]]["serviceName"] == "gateway"
    assert trace["processes"][leaf["processID"]]["serviceName"] == "order-service"
    one = requests.get(f"{query}/api/traces/{trace_id}", timeout=5).json()
    assert one["data"] == [trace]
    assert trace_id in requests.get(query, timeout=5).text  # the page a person reads


@pytest.mark.parametrize(
    "path, status",
    [
        ("/api/traces", 400),  # Jaeger requires the service
        ("/api/traces?service=x&limit=many", 400),
        (f"/api/traces/{'ab' * 16}", 404),
        ("/api/dependencies", 404),  # not stood in for
    ],
)
def test_jaeger_standin_errors_are_jaegers_json_errors(jaeger, path, status):
    _, query = jaeger
    response = requests.get(f"{query}{path}", timeout=5)
    assert response.status_code == status
    assert response.json()["data"] is None
    assert response.json()["errors"][0]["code"] == status


def test_jaeger_standin_finds_nothing_for_an_unknown_service(jaeger):
    _, query = jaeger
    found = requests.get(f"{query}/api/traces?service=nobody", timeout=5)
    assert (found.status_code, found.json()["data"]) == (200, [])
