"""order-service configuration, from the environment only, checked when the app is built."""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from chassis.env import env_float, env_str
from chassis.service import ServiceSettings

USER_SERVICE = "user-service"


@dataclass(frozen=True)
class Settings(ServiceSettings):
    service_name = "order-service"
    default_port = 8002

    # comma-separated base URLs; empty: find user-service in Consul
    user_service_url: str = ""
    user_service_timeout: float = 5.0
    # seconds an Idempotency-Key is honoured from its order's creation; 0: for ever
    idempotency_key_ttl: float = 86400.0

    @classmethod
    def fields_from_env(cls, environ: Mapping[str, str] | None) -> dict[str, Any]:
        return {
            **super().fields_from_env(environ),
            "user_service_url": env_str("USER_SERVICE_URL", "", environ),
            "user_service_timeout": env_float(
                "USER_SERVICE_TIMEOUT", 5.0, minimum=0.1, environ=environ
            ),
            "idempotency_key_ttl": env_float(
                "IDEMPOTENCY_KEY_TTL", 86400.0, minimum=0, environ=environ
            ),
        }
