"""Environment-only configuration, checked at boot.

Every reader names the variable in its error, so a bad deployment fails at start-up with a
message that says exactly what to fix.
"""

import os
from collections.abc import Mapping


class ConfigError(ValueError):
    """A configuration variable is missing or malformed. The message starts with its name."""


def env_str(
    name: str, default: str | None = None, environ: Mapping[str, str] | None = None
) -> str:
    environ = os.environ if environ is None else environ
    value = environ.get(name, "").strip()
    if value:
        return value
    if default is None:
        raise ConfigError(f"{name}: required but not set")
    return default


def env_int(
    name: str,
    default: int,
    minimum: int | None = None,
    maximum: int | None = None,
    environ: Mapping[str, str] | None = None,
) -> int:
    raw = env_str(name, str(default), environ)
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name}: expected an integer, got {raw!r}") from None
    if minimum is not None and value < minimum:
        raise ConfigError(f"{name}: must be >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ConfigError(f"{name}: must be <= {maximum}, got {value}")
    return value


def env_float(
    name: str,
    default: float,
    minimum: float | None = None,
    environ: Mapping[str, str] | None = None,
) -> float:
    raw = env_str(name, str(default), environ)
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name}: expected a number, got {raw!r}") from None
    if minimum is not None and value < minimum:
        raise ConfigError(f"{name}: must be >= {minimum}, got {value}")
    return value


def env_choice(
    name: str,
    default: str,
    choices: list[str],
    environ: Mapping[str, str] | None = None,
) -> str:
    value = env_str(name, default, environ)
    if value not in choices:
        raise ConfigError(
            f"{name}: unknown value {value!r}; valid: {', '.join(sorted(choices))}"
        )
    return value
