"""Service-to-service HTTP calls through discovery.

    users = ServiceClient("user-service")            # watches Consul, round-robin
    r = users.request("GET", "/users/42")            # requests.Response, any status

A failure moves on to a different instance when the request cannot have been processed
twice: always when the connection was never made, and for idempotent methods also when it
broke later or timed out waiting for the answer (a frozen instance accepts connections and
never answers; the caller then waits one read timeout per frozen instance tried).

The request path never asks Consul or waits for it: it reads the source's current snapshot.
A process that calls a service has the snapshot before it serves (discovery.gunicorn_hooks,
`depends_on`); one that has none answers NoHealthyInstance at once.
"""

import os
import threading
import time
import urllib.parse
import weakref
from collections.abc import Iterable

import requests
import urllib3.exceptions

from chassis.env import ConfigError
from chassis.errors import NoHealthyInstance, ServiceUnavailable
from chassis.identity import instance_id
from discovery.instances import Instance, Snapshot
from discovery.strategies import Strategy, make_strategy
from discovery.watcher import watch

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})
MAX_ATTEMPTS = 3


class StaticSource:
    """A fixed instance list with the watcher's `snapshot()` interface, for tests and for
    running one service alone: StaticSource("http://127.0.0.1:8001,http://127.0.0.1:8002")."""

    def __init__(
        self, urls: str | Iterable[str], service: str = "static", variable: str = "urls"
    ):
        if isinstance(urls, str):
            urls = urls.split(",")
        self.instances = tuple(
            static_instance(u.strip(), service, variable) for u in urls if u.strip()
        )
        if not self.instances:
            raise ConfigError(f"{variable}: no URL given")

    def snapshot(self) -> Snapshot:
        return Snapshot(
            self.instances, index=1, updated_at=time.monotonic(), stale=False
        )


def static_instance(url: str, service: str, variable: str) -> Instance:
    parsed = urllib.parse.urlsplit(url)
    try:
        port = parsed.port
    except ValueError:
        port = None
    if parsed.scheme != "http" or not parsed.hostname or not port:
        raise ConfigError(f"{variable}: expected http://host:port, got {url!r}")
    if parsed.path not in ("", "/"):
        raise ConfigError(f"{variable}: base URL must have no path, got {url!r}")
    return Instance(
        id=instance_id(service, parsed.hostname, port),
        service=service,
        address=parsed.hostname,
        port=port,
    )


class ServiceClient:
    def __init__(
        self,
        service: str,
        strategy: str | Strategy = "round_robin",
        source=None,
        connect_timeout: float = 1.0,
        read_timeout: float = 5.0,
        max_attempts: int = MAX_ATTEMPTS,
    ):
        self.service = service
        self.strategy = (
            make_strategy(strategy) if isinstance(strategy, str) else strategy
        )
        self.source = source if source is not None else watch(service)
        self.timeout = (connect_timeout, read_timeout)
        self.max_attempts = max_attempts
        self._local = threading.local()
        _CLIENTS.add(self)

    def request(self, method: str, path: str, **kwargs) -> requests.Response:
        """Send to one chosen instance; on a retryable connection failure, to another.

        Raises NoHealthyInstance when none is listed, ServiceUnavailable when all attempts
        failed. Any HTTP status is returned as is: the caller decides what a 404 means.
        """
        method = method.upper()
        kwargs.setdefault("timeout", self.timeout)
        candidates = list(self.source.snapshot().instances)
        if not candidates:
            raise NoHealthyInstance(self.service)
        attempts: list[tuple[str, BaseException]] = []
        while candidates and len(attempts) < self.max_attempts:
            instance = self.strategy.choose(candidates)
            candidates.remove(instance)
            try:
                with self.strategy.track(instance):
                    return self._session().request(
                        method, instance.base_url + path, **kwargs
                    )
            except requests.RequestException as exc:
                attempts.append((instance.id, exc))
                if not retryable(method, exc):
                    break
        raise ServiceUnavailable(self.service, attempts)

    def _session(self) -> requests.Session:
        # One Session (and connection pool) per thread: Session is not documented thread-safe.
        # A forked child starts with none (_forget_sessions_after_fork), so it never shares the
        # parent's pooled sockets; checking the pid here would be a syscall per request.
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
        return session


_CLIENTS: "weakref.WeakSet[ServiceClient]" = weakref.WeakSet()


def _forget_sessions_after_fork() -> None:
    for client in list(_CLIENTS):
        client._local = threading.local()


os.register_at_fork(after_in_child=_forget_sessions_after_fork)


def retryable(method: str, exc: requests.RequestException) -> bool:
    if isinstance(exc, requests.ConnectTimeout):
        return True
    if isinstance(exc, requests.ReadTimeout):
        return method in IDEMPOTENT_METHODS
    if not isinstance(exc, requests.ConnectionError):
        return False  # bad URLs, too many redirects...
    return method in IDEMPOTENT_METHODS or never_connected(exc)


def never_connected(exc: requests.ConnectionError) -> bool:
    """True when the TCP connection was never established, so nothing was sent."""
    reason = exc.args[0] if exc.args else None
    if isinstance(reason, urllib3.exceptions.MaxRetryError):
        reason = reason.reason
    return isinstance(reason, urllib3.exceptions.NewConnectionError)
