"""order-service configuration, from the environment only, checked when the app is built."""

from collections.abc import Mapping
from dataclasses import dataclass

from discovery.env import env_float, env_int, env_str
from discovery.storage import database_url_from_env
from discovery.web import instance_id_from_env, log_level_from_env

SERVICE_NAME = "order-service"
USER_SERVICE = "user-service"
DEFAULT_PORT = 8002


@dataclass(frozen=True)
class Settings:
    database_url: str
    user_service_url: str = (
        ""  # comma-separated base URLs; empty: find user-service in Consul
    )
    user_service_timeout: float = 5.0
    log_level: str = "INFO"
    max_body_bytes: int = 1024 * 1024
    instance_id: str | None = (
        None  # None: `<name>-<SERVICE_ADDRESS>-<PORT>` at app creation
    )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "Settings":
        return cls(
            database_url=database_url_from_env(SERVICE_NAME, environ),
            user_service_url=env_str("USER_SERVICE_URL", "", environ),
            user_service_timeout=env_float(
                "USER_SERVICE_TIMEOUT", 5.0, minimum=0.1, environ=environ
            ),
            log_level=log_level_from_env(environ),
            max_body_bytes=env_int(
                "MAX_BODY_BYTES", 1024 * 1024, minimum=1024, environ=environ
            ),
            instance_id=instance_id_from_env(SERVICE_NAME, DEFAULT_PORT, environ),
        )
