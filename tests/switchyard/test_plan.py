import itertools
import sys
from pathlib import Path

from switchyard.agent import choose_agent
from switchyard.plan import StackOptions, agent_spec, plan_stack

AGENT = choose_agent("127.0.0.1:8501", 8500)


def ports(*values):
    return itertools.chain(values, itertools.count(20000)).__next__


def test_start_order_names_and_counts():
    specs = plan_stack(
        StackOptions(users=3, orders=1, gateway_port=9000), AGENT, ports(4001)
    )
    assert [s.service for s in specs] == ["user-service"] * 3 + [
        "order-service",
        "gateway",
    ]
    assert specs[0].name == "user-service-127.0.0.1-4001"
    assert specs[-1].port == 9000


def test_duplicate_or_reserved_ports_are_picked_again():
    specs = plan_stack(
        StackOptions(users=2, orders=1, gateway_port=9000),
        AGENT,
        ports(9000, 8501, 5000, 5000, 5001),
    )
    assert [s.port for s in specs] == [5000, 5001, 20000, 9000]


def test_service_environment():
    options = StackOptions(users=1, orders=1, data_dir=Path("/tmp/sy"), token="t0k")
    users, orders, gateway = plan_stack(options, AGENT, ports(4001, 4002))
    assert users.env["PORT"] == "4001"
    assert users.env["SERVICE_ADDRESS"] == "127.0.0.1"
    assert users.env["CONSUL_HTTP_ADDR"] == "127.0.0.1:8501"
    assert users.env["CONSUL_HTTP_TOKEN"] == "t0k"
    assert users.env["CHECK_INTERVAL"] == "1s"
    assert users.env["DATABASE_URL"] == "sqlite:////tmp/sy/user-service.db"
    assert orders.env["DATABASE_URL"] == "sqlite:////tmp/sy/order-service.db"
    assert "DATABASE_URL" not in gateway.env
    assert gateway.env["GATEWAY_LB_STRATEGY"] == "round_robin"
    assert {spec.env["DRAIN_SECONDS"] for spec in (users, orders, gateway)} == {"3"}


def test_every_instance_drains_for_the_stack_s_drain_seconds():
    options = StackOptions(users=1, orders=1, drain_seconds=0.5)
    for spec in plan_stack(options, AGENT, ports(4001, 4002)):
        assert spec.env["DRAIN_SECONDS"] == "0.5"


def test_every_process_sends_its_spans_to_the_stack_s_endpoint():
    options = StackOptions(users=1, orders=1, otlp_endpoint="http://127.0.0.1:4318")
    for spec in plan_stack(options, AGENT, ports(4001, 4002)):
        assert spec.env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://127.0.0.1:4318"
    for spec in plan_stack(StackOptions(users=1, orders=1), AGENT, ports(4001, 4002)):
        assert not any(name.startswith("OTEL_") for name in spec.env)


def test_the_user_s_own_otel_variables_do_not_send_the_stack_s_spans_elsewhere(
    monkeypatch,
):
    """A process runs with switchyard's environment under its spec's (switchyard.stack);
    where the SDK's exporter then sends is what counts."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    from chassis.tracing import check_exporter

    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://elsewhere:4318/x")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
    options = StackOptions(users=1, orders=1, otlp_endpoint="http://127.0.0.1:4318/")
    for spec in plan_stack(options, AGENT, ports(4001, 4002)):
        with monkeypatch.context() as process:
            for name, value in spec.env.items():
                process.setenv(name, value)
            assert OTLPSpanExporter()._endpoint == "http://127.0.0.1:4318/v1/traces"
            check_exporter()  # the protocol it speaks: the boot goes on


def test_instances_of_one_service_share_its_database():
    specs = plan_stack(StackOptions(users=2, orders=0), AGENT, ports(4001, 4002))
    assert specs[0].env["DATABASE_URL"] == specs[1].env["DATABASE_URL"]


def test_services_run_under_gunicorn_with_their_config_module():
    users = plan_stack(StackOptions(users=1, orders=0), AGENT, ports(4001))[0]
    assert users.argv == (
        sys.executable,
        "-m",
        "gunicorn",
        "-c",
        "python:user_service.gunicorn_conf",
        "user_service.wsgi:app",
    )


def test_agent_spec_uses_the_chosen_argv():
    agent = choose_agent(None, 8502, which=lambda name: None)
    spec = agent_spec(agent)
    assert (spec.name, spec.port, spec.argv) == ("consul", 8502, agent.argv)
