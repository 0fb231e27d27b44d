"""The discovery exception tree.

    DiscoveryError
    ├── NoHealthyInstance    no instance is listed for the service (nothing was tried)
    └── ServiceUnavailable   instances were listed, every attempt failed

ConfigError (from discovery.env) is re-exported: it is what a bad environment raises.
"""

from discovery.env import ConfigError

__all__ = ["ConfigError", "DiscoveryError", "NoHealthyInstance", "ServiceUnavailable"]


class DiscoveryError(Exception):
    """Base of every error raised while finding or calling another service."""

    def __init__(self, message: str, service: str | None = None):
        super().__init__(message)
        self.service = service


class NoHealthyInstance(DiscoveryError):
    """No instance to choose from: Consul lists none passing (or none is left)."""

    def __init__(self, service: str | None = None):
        what = service or "the service"
        super().__init__(f"no healthy instance of {what}", service)


class ServiceUnavailable(DiscoveryError):
    """Instances were listed but every attempt failed; `attempts` holds (id, error)."""

    def __init__(self, service: str, attempts: list[tuple[str, BaseException]]):
        tried = "; ".join(f"{iid}: {exc}" for iid, exc in attempts) or "no attempt"
        super().__init__(f"{service} unavailable ({tried})", service)
        self.attempts = attempts
