"""Real processes for gateway integration tests: the gateway and echo upstreams under gunicorn,
registered in a devconsul agent through discovery's gunicorn hooks."""

import signal
import subprocess

import requests

from chassis.identity import instance_id
from tests.support.processes import ManagedProcess, free_port, python_module, wait_until

__all__ = [
    "quick_stop",
    "register_static",
    "start_gateway",
    "start_upstream",
    "wait_routable",
]

COMMON = {
    "SERVICE_ADDRESS": "127.0.0.1",
    "BIND_HOST": "127.0.0.1",
    "CHECK_INTERVAL": "1s",
}


def start_gateway(
    consul_addr: str, wait: bool = True, **env: str
) -> tuple[ManagedProcess, str]:
    port = free_port()
    settings = {
        **COMMON,
        "CONSUL_HTTP_ADDR": consul_addr,
        "PORT": str(port),
        "WEB_CONCURRENCY": "1",
        "GUNICORN_THREADS": "8",
        "DRAIN_SECONDS": "0",
        **env,
    }
    process = ManagedProcess(
        python_module("gateway"), settings, name=f"gateway-{port}"
    ).start()
    base_url = f"http://127.0.0.1:{port}"
    if wait:
        process.wait_http(f"{base_url}/openapi.json", status=200)
    return process, base_url


def start_upstream(
    consul_addr: str, service: str, prefix: str, wait: bool = True, **env: str
) -> tuple[ManagedProcess, str]:
    port = free_port()
    iid = instance_id(service, "127.0.0.1", port)
    settings = {
        **COMMON,
        "CONSUL_HTTP_ADDR": consul_addr,
        "PORT": str(port),
        "WEB_CONCURRENCY": "1",
        "GUNICORN_THREADS": "8",
        "UPSTREAM_SERVICE": service,
        "UPSTREAM_PREFIX": prefix,
        "UPSTREAM_NAME": iid,
        "DRAIN_SECONDS": "0",
        **env,
    }
    argv = python_module(
        "gunicorn",
        "-c",
        "python:tests.gateway.upstream_conf",
        "tests.gateway.upstream:app",
    )
    process = ManagedProcess(argv, settings, name=iid).start()
    if wait:
        process.wait_http(f"http://127.0.0.1:{port}/health", status=200)
    return process, iid


def wait_routable(
    base_url: str, service: str, count: int, timeout: float = 15.0
) -> None:
    def ready():
        services = requests.get(f"{base_url}/health", timeout=2).json()["services"]
        return services.get(service, {}).get("routable") == count

    wait_until(ready, timeout, what=f"{count} routable {service} instances")


def quick_stop(process: ManagedProcess) -> None:
    """SIGINT: gunicorn stops at once (no drain, no keep-alive linger); on_exit deregisters."""
    process.signal(signal.SIGINT)
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.stop()


def register_static(consul_url: str, service: str, prefix: str, port: int) -> str:
    """An instance Consul believes healthy (TTL check, passing) whatever happens on its port."""
    iid = instance_id(service, "127.0.0.1", port)
    body = {
        "Name": service,
        "ID": iid,
        "Address": "127.0.0.1",
        "Port": port,
        "Meta": {"gateway_prefix": prefix},
        "Check": {"TTL": "1h", "Status": "passing"},
    }
    requests.put(
        f"{consul_url}/v1/agent/service/register", json=body, timeout=5
    ).raise_for_status()
    return iid
