"""The exceptions a service's code meets, in one place.

ConfigError              a bad environment variable (from chassis.env), named in the message
APIError                 raise from a view: answered with the shared JSON error shape
DiscoveryError           finding or calling another service failed (raised by discovery)
├── NoHealthyInstance    no instance is listed for the service (nothing was tried)
└── ServiceUnavailable   instances were listed, every attempt failed
"""

from chassis.env import ConfigError

__all__ = [
    "APIError",
    "ConfigError",
    "DiscoveryError",
    "NoHealthyInstance",
    "ServiceUnavailable",
]


class APIError(Exception):
    """Raise from a view to answer with the shared error shape."""

    def __init__(
        self, status: int, code: str, message: str, details=None, headers=None
    ):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.headers = dict(headers or {})


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
