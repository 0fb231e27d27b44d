"""Whether a user exists, asked of user-service: the one place order-service learns where
user-service is (USER_SERVICE_URL for a fixed list, else Consul through discovery)."""

from collections.abc import Mapping
from functools import cached_property

from chassis.env import env_str
from chassis.errors import DiscoveryError
from discovery.client import ServiceClient, StaticSource
from discovery.consul_client import ConsulSettings
from order_service.settings import USER_SERVICE, Settings


class UserServiceUnavailable(Exception):
    """user-service could not give an answer: no healthy instance, unreachable, or failing."""


def discovered_services(environ: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """The services found through Consul: named at boot, so that gunicorn has their
    instances before a worker serves (discovery.gunicorn_hooks). None with USER_SERVICE_URL."""
    return () if env_str("USER_SERVICE_URL", "", environ) else (USER_SERVICE,)


class UserDirectory:
    def __init__(self, settings: Settings):
        self.settings = settings
        # Fail at boot on a malformed USER_SERVICE_URL rather than on the first order.
        self.static_source = (
            StaticSource(
                settings.user_service_url,
                service=USER_SERVICE,
                variable="USER_SERVICE_URL",
            )
            if settings.user_service_url
            else None
        )
        if self.static_source is None:
            # Likewise CONSUL_HTTP_*, which the watcher reads when it starts: a ConfigError
            # there would be a 500. (Under gunicorn service_hooks checked them already;
            # this covers create_app run any other way.)
            ConsulSettings.from_env()

    @cached_property
    def client(self) -> ServiceClient:
        # Built on first use: with Consul as the source this is the process's watcher, which
        # runs in the serving process (after gunicorn forks), not when the app is created.
        # Under gunicorn the worker started it, and had its first answer, before serving.
        return ServiceClient(
            USER_SERVICE,
            source=self.static_source,
            read_timeout=self.settings.user_service_timeout,
        )

    def discovery_state(self) -> str:
        """For /health: "ok"; "stale" while Consul is away (the last instances serve);
        "unavailable" until this process has had one answer."""
        snapshot = self.client.source.snapshot()
        if not snapshot.loaded:
            return "unavailable"
        return "stale" if snapshot.stale else "ok"

    def exists(self, user_id: int, request_id: str | None = None) -> bool:
        """`request_id`: the X-Request-ID of the request asking, passed on, so that
        user-service's access line and server span carry it too."""
        headers = {"X-Request-ID": request_id} if request_id else None
        try:
            response = self.client.request("GET", f"/users/{user_id}", headers=headers)
        except DiscoveryError as exc:
            raise UserServiceUnavailable(str(exc)) from exc
        if response.status_code == 200:
            return True
        if response.status_code == 404:
            return False
        raise UserServiceUnavailable(f"user-service answered {response.status_code}")
