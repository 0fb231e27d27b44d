"""user-service configuration, from the environment only, checked when the app is built."""

from dataclasses import dataclass

from chassis.service import ServiceSettings


@dataclass(frozen=True)
class Settings(ServiceSettings):
    service_name = "user-service"
    default_port = 8001
