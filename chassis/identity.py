"""Instance identity: the one place that spells `<service>-<host>-<port>` (DESIGN.md contract)."""

import importlib.metadata
import socket

from chassis.env import env_int, env_str


def instance_id(service: str, host: str, port: int) -> str:
    return f"{service}-{host}-{port}"


def default_advertise_address() -> str:
    """An address other hosts can reach: the one the default route leaves from, else loopback.

    Connecting a UDP socket sends nothing; it only asks the kernel which source address it would use.
    """
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        # TEST-NET-1: never routed to, only used for the lookup.
        probe.connect(("192.0.2.1", 9))
        return probe.getsockname()[0]
    except OSError:
        return "127.0.0.1"
    finally:
        probe.close()


def instance_id_from_env(service_name: str, default_port: int = 0, environ=None) -> str:
    """`<service>-<SERVICE_ADDRESS>-<PORT>`, the id registration gives this instance in Consul."""
    host = env_str("SERVICE_ADDRESS", "", environ) or default_advertise_address()
    port = env_int("PORT", default_port, minimum=0, maximum=65535, environ=environ)
    return instance_id(service_name, host, port)


def service_version_from_env(environ=None) -> str:
    """SERVICE_VERSION, else the installed switchyard version: Consul's Meta.version and the
    traces' service.version."""
    try:
        installed = importlib.metadata.version("switchyard")
    except importlib.metadata.PackageNotFoundError:
        installed = "unknown"
    return env_str("SERVICE_VERSION", installed, environ)
