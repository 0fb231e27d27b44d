"""user-service configuration, from the environment only, checked when the app is built."""

from collections.abc import Mapping
from dataclasses import dataclass

from discovery.env import env_int
from discovery.storage import database_url_from_env
from discovery.web import instance_id_from_env, log_level_from_env

SERVICE_NAME = "user-service"
DEFAULT_PORT = 8001


@dataclass(frozen=True)
class Settings:
    database_url: str
    log_level: str = "INFO"
    max_body_bytes: int = 1024 * 1024
    instance_id: str | None = (
        None  # None: `<name>-<SERVICE_ADDRESS>-<PORT>` at app creation
    )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "Settings":
        return cls(
            database_url=database_url_from_env(SERVICE_NAME, environ),
            log_level=log_level_from_env(environ),
            max_body_bytes=env_int(
                "MAX_BODY_BYTES", 1024 * 1024, minimum=1024, environ=environ
            ),
            instance_id=instance_id_from_env(SERVICE_NAME, DEFAULT_PORT, environ),
        )
