"""What the local stack runs: one spec per process, with its command line and environment.

Pure data, so the layout (ports, names, variables) is testable without starting anything.
Every service runs the same way as in production, `gunicorn -c python:<pkg>.gunicorn_conf
<pkg>.wsgi:app`, configured by environment only.
"""

import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

# The shared discovery layer, not the services: switchyard starts them, never imports them.
from chassis.identity import instance_id
from chassis.launch import gunicorn_argv
from switchyard.agent import AgentChoice

ADDRESS = "127.0.0.1"

# Service name -> Python package. The gateway starts last, after the services it routes to.
PACKAGES = {
    "user-service": "user_service",
    "order-service": "order_service",
    "gateway": "gateway",
}

# A drain long enough for the gateway to stop routing to an instance before it exits,
# short enough that Ctrl-C is quick (StackOptions.drain_seconds, `up --drain-seconds`).
DRAIN_SECONDS = 3.0
MAX_DRAIN_SECONDS = 10.0  # switchyard.stack.STOP_GRACE leaves room for it

# Tuned for a laptop stack (names from discovery.registration): checks every second so
# changes show up at once; loopback only.
LOCAL_ENV = {
    "CHECK_INTERVAL": "1s",
    "CHECK_TIMEOUT": "1s",
    "DEREGISTER_CRITICAL_AFTER": "1m",
    "BIND_HOST": ADDRESS,
    "WEB_CONCURRENCY": "1",
    "GUNICORN_THREADS": "8",
    "PYTHONUNBUFFERED": "1",
}


@dataclass(frozen=True)
class ProcessSpec:
    name: str  # instance id for services; the agent is "consul"
    service: str
    port: int
    argv: tuple[str, ...]
    env: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://{ADDRESS}:{self.port}"


@dataclass(frozen=True)
class StackOptions:
    users: int = 2
    orders: int = 2
    gateway_port: int = 8000
    strategy: str = "round_robin"
    data_dir: Path = Path("var")
    token: str = ""
    log_level: str = "INFO"
    otlp_endpoint: str = ""  # where every process sends its spans; "" = no tracing
    drain_seconds: float = DRAIN_SECONDS


def free_port() -> int:
    with socket.socket() as s:
        s.bind((ADDRESS, 0))
        return s.getsockname()[1]


def sqlite_url(data_dir: Path, service: str) -> str:
    return f"sqlite:///{(data_dir / f'{service}.db').resolve()}"


def tracing_env(otlp_endpoint: str) -> dict[str, str]:
    """Spans to `otlp_endpoint`, within a second of their end: a laptop stack is watched live.

    The processes inherit switchyard's environment, where a user's own OTel set-up may name
    a traces endpoint or protocol; the SDK prefers OTEL_EXPORTER_OTLP_TRACES_ENDPOINT to the
    endpoint given here, so both are pinned, or the stack's spans would silently go there."""
    if not otlp_endpoint:
        return {}
    return {
        "OTEL_EXPORTER_OTLP_ENDPOINT": otlp_endpoint,
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": f"{otlp_endpoint.rstrip('/')}/v1/traces",
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf",
        "OTEL_BSP_SCHEDULE_DELAY": "500",
    }


def service_spec(
    service: str, port: int, options: StackOptions, agent: AgentChoice, **extra: str
) -> ProcessSpec:
    env = {
        **LOCAL_ENV,
        "DRAIN_SECONDS": f"{options.drain_seconds:g}",
        "PORT": str(port),
        "SERVICE_ADDRESS": ADDRESS,
        "CONSUL_HTTP_ADDR": agent.addr,
        "CONSUL_HTTP_TOKEN": options.token,
        "LOG_LEVEL": options.log_level,
        **tracing_env(options.otlp_endpoint),
        **extra,
    }
    if service != "gateway":
        env["DATABASE_URL"] = sqlite_url(options.data_dir, service)
    return ProcessSpec(
        instance_id(service, ADDRESS, port),
        service,
        port,
        tuple(gunicorn_argv(PACKAGES[service])),
        env,
    )


def gateway_spec(
    port: int, strategy: str, options: StackOptions, agent: AgentChoice
) -> ProcessSpec:
    return service_spec("gateway", port, options, agent, GATEWAY_LB_STRATEGY=strategy)


def plan_stack(
    options: StackOptions, agent: AgentChoice, pick_port: Callable[[], int] = free_port
) -> list[ProcessSpec]:
    """Specs in start order: user-service instances, order-service instances, gateway."""
    taken = {options.gateway_port, agent.port}
    specs = []
    for service, count in (
        ("user-service", options.users),
        ("order-service", options.orders),
    ):
        for _ in range(count):
            port = pick_port()
            while port in taken:  # a just-released port can come back from the kernel
                port = pick_port()
            taken.add(port)
            specs.append(service_spec(service, port, options, agent))
    specs.append(gateway_spec(options.gateway_port, options.strategy, options, agent))
    return specs


def agent_spec(agent: AgentChoice) -> ProcessSpec:
    return ProcessSpec(
        "consul", "consul", agent.port, agent.argv, {"PYTHONUNBUFFERED": "1"}
    )
