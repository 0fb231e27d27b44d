"""user-service configuration, from the environment only, checked when the app is built."""

from dataclasses import dataclass

from discovery.service import ServiceSettings

SERVICE_NAME = "user-service"
DEFAULT_PORT = 8001


@dataclass(frozen=True)
class Settings(ServiceSettings):
    service_name = SERVICE_NAME
    default_port = DEFAULT_PORT
