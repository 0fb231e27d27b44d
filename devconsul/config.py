"""What one agent process is configured with (from the command line)."""

from dataclasses import dataclass

from devconsul.durations import MINUTE, SECOND


@dataclass(frozen=True)
class AgentConfig:
    node: str = "devconsul"
    datacenter: str = "dc1"
    client_addr: str = "127.0.0.1"
    http_port: int = 8500
    bind_addr: str = "127.0.0.1"
    acl_token: str | None = None
    # -enable-script-checks: run script checks registered through the API.
    # -enable-local-script-checks only allows those from configuration files,
    # which this agent does not read; it is accepted for command-line parity.
    enable_script_checks: bool = False
    enable_local_script_checks: bool = False
    # telemetry.prometheus_retention_time (from -hcl); 0, as in dev mode,
    # leaves Prometheus output off.
    prometheus_retention_ns: int = 0
    # Consul's fixed values; only the hidden dev-only CLI flags change them so
    # that tests need not wait a minute for DeregisterCriticalServiceAfter or
    # 20 seconds for the shortest session TTL to run out.
    reap_interval_ns: int = 30 * SECOND
    deregister_minimum_ns: int = MINUTE
    # Consul's session_ttl_min: the shortest session TTL it accepts.
    session_ttl_min_ns: int = 10 * SECOND
