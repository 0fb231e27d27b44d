"""Log configuration: LOG_LEVEL from the environment, lines shaped `LEVEL subsystem: message`."""

import logging
from collections.abc import Mapping

from chassis.env import ConfigError, env_str

__all__ = ["LOG_FORMAT", "LOG_LEVELS", "configure_logging", "log_level_from_env"]

LOG_FORMAT = "%(levelname)s %(name)s: %(message)s"
LOG_LEVELS = ("CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG")


def log_level_from_env(environ: Mapping[str, str] | None = None) -> str:
    """LOG_LEVEL (default INFO), any case: CRITICAL, ERROR, WARNING, INFO or DEBUG."""
    level = env_str("LOG_LEVEL", "INFO", environ).upper()
    if level not in LOG_LEVELS:
        raise ConfigError(
            f"LOG_LEVEL: unknown value {level!r}; valid: {', '.join(LOG_LEVELS)}"
        )
    return level


def configure_logging(level: str = "INFO") -> None:
    """`LEVEL subsystem: message` lines on stderr, unless the host process configured logging first."""
    logging.basicConfig(level=level, format=LOG_FORMAT)
