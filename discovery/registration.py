"""Self-registration of one service instance with its local Consul agent.

One call registers the service and its HTTP check on /health; `drain()` takes the instance
out of the passing set (service maintenance, visible in the UI with a reason), waits, then
deregisters; `AntiEntropy` re-registers when the agent forgets the instance (an agent
restart loses everything registered over HTTP). Registration happens once per instance, from
the gunicorn master (see discovery.gunicorn_hooks), never per worker or in create_app.

| variable | default | meaning |
|---|---|---|
| SERVICE_ADDRESS | address of the default route, else 127.0.0.1 | address advertised to Consul |
| PORT | per service (user 8001, order 8002) | port served and advertised |
| CHECK_INTERVAL | 10s | HTTP check interval (Go duration or seconds; the local stack uses 1s) |
| CHECK_TIMEOUT | 2s | HTTP check timeout |
| DEREGISTER_CRITICAL_AFTER | 1m | Consul reaps an instance critical this long (Consul's floor: 1m) |
| DRAIN_SECONDS | 3 | on SIGTERM, keep serving this long after leaving the passing set |
| SERVICE_WEIGHT_PASSING | 1 | Consul Weights.Passing (1..65535), used by the weighted strategy |
| SERVICE_WEIGHT_WARNING | 1 | Consul Weights.Warning (0..65535) |
| SERVICE_TAGS | (none) | comma-separated Consul tags |
| SERVICE_VERSION | the installed switchyard version | Meta "version" |
| SERVICE_LB_STRATEGY | (none) | Meta "lb_strategy": the strategy this service asks the gateway to use |

Plus CONSUL_HTTP_ADDR / CONSUL_HTTP_TOKEN and the rest of discovery.consul_client.
DRAIN_SECONDS must cover a watcher noticing the change (under 1 s after Consul's answer
changes) plus requests already routed to this instance; 3 s suits the local stack, raise it
where callers use longer timeouts.
"""

import ipaddress
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from chassis.env import ConfigError, env_float, env_int, env_str
from chassis.identity import (
    default_advertise_address,
    instance_id,
    service_version_from_env,
)
from consul import Check
from discovery.consul_client import ConsulSettings, make_consul
from discovery.instances import host_for_url
from discovery.strategies import STRATEGIES

log = logging.getLogger("discovery")

ANTI_ENTROPY_SECONDS = (
    2.0  # poll period: a forgotten instance is back within about twice this
)
DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(name: str, raw: str) -> float:
    """`10s`, `1m30s`, `500ms` (Go style) or a bare number of seconds -> seconds (> 0)."""
    text = raw.strip()
    try:
        seconds = float(text)
    except ValueError:
        parts = DURATION.findall(text)
        if not parts or "".join(n + u for n, u in parts) != text:
            raise ConfigError(
                f"{name}: expected a duration like 10s or 1m, got {raw!r}"
            ) from None
        seconds = sum(float(n) * UNIT_SECONDS[u] for n, u in parts)
    if seconds <= 0:
        raise ConfigError(f"{name}: must be > 0, got {raw!r}")
    return seconds


def go_duration(seconds: float) -> str:
    """Seconds -> a duration string Consul accepts (whole seconds when exact)."""
    if seconds == int(seconds):
        return f"{int(seconds)}s"
    return f"{round(seconds * 1000)}ms"


@dataclass(frozen=True)
class RegistrationSettings:
    name: str
    prefix: str
    address: str
    port: int
    check_interval: float = 10.0
    check_timeout: float = 2.0
    deregister_after: float = 60.0
    drain_seconds: float = 3.0
    weights: tuple[int, int] = (1, 1)
    tags: tuple[str, ...] = ()
    version: str = "unknown"
    lb_strategy: str | None = None

    @classmethod
    def from_env(
        cls,
        name: str,
        prefix: str,
        default_port: int = 8000,
        environ: Mapping[str, str] | None = None,
    ) -> "RegistrationSettings":
        environ = os.environ if environ is None else environ

        def duration(var: str, default: str) -> float:
            return parse_duration(var, env_str(var, default, environ))

        strategy = environ.get("SERVICE_LB_STRATEGY", "").strip() or None
        if strategy is not None and strategy not in STRATEGIES:
            valid = ", ".join(sorted(STRATEGIES))
            raise ConfigError(
                f"SERVICE_LB_STRATEGY: unknown strategy {strategy!r}; valid: {valid}"
            )
        tags = env_str("SERVICE_TAGS", "", environ)
        return cls(
            name=name,
            prefix=prefix,
            address=advertised_address(env_str("SERVICE_ADDRESS", "", environ)),
            port=env_int(
                "PORT", default_port, minimum=1, maximum=65535, environ=environ
            ),
            check_interval=duration("CHECK_INTERVAL", "10s"),
            check_timeout=duration("CHECK_TIMEOUT", "2s"),
            deregister_after=duration("DEREGISTER_CRITICAL_AFTER", "1m"),
            drain_seconds=env_float("DRAIN_SECONDS", 3.0, minimum=0.0, environ=environ),
            weights=(
                env_int("SERVICE_WEIGHT_PASSING", 1, 1, 65535, environ),
                env_int("SERVICE_WEIGHT_WARNING", 1, 0, 65535, environ),
            ),
            tags=tuple(t.strip() for t in tags.split(",") if t.strip()),
            version=service_version_from_env(environ),
            lb_strategy=strategy,
        )

    @property
    def service_id(self) -> str:
        return instance_id(self.name, self.address, self.port)

    @property
    def check_url(self) -> str:
        return f"http://{host_for_url(self.address)}:{self.port}/health"

    @property
    def meta(self) -> dict[str, str]:
        meta = {"version": self.version}
        if self.prefix:  # the gateway itself claims no prefix
            meta["gateway_prefix"] = self.prefix
        if self.lb_strategy:
            meta["lb_strategy"] = self.lb_strategy
        return meta


def advertised_address(raw: str) -> str:
    """SERVICE_ADDRESS, else a default one. Not an unspecified address (0.0.0.0, ::): Consul
    refuses it (400 Invalid service address) at every try, so the instance would serve and
    never register; nor could a caller reach it."""
    if not raw:
        return default_advertise_address()
    try:
        unspecified = ipaddress.ip_address(raw).is_unspecified
    except ValueError:
        unspecified = False  # a host name
    if unspecified:
        raise ConfigError(
            f"SERVICE_ADDRESS: {raw!r} is an address to listen on (BIND_HOST), "
            "not one others can reach"
        )
    return raw


class Registration:
    """This instance's entry in the local agent. Calls are serialised: the anti-entropy
    thread and the shutdown path share one Consul client. Once the instance starts leaving
    (`close`, which drain and deregistration begin with) it never registers again: a late
    re-registration would drop the drain's maintenance check (replace-existing-checks) or
    bring back an instance that is gone."""

    def __init__(
        self,
        settings: RegistrationSettings,
        consul=None,
        consul_settings: ConsulSettings | None = None,
    ):
        self.settings = settings
        self._consul = consul
        # Checked at boot by the caller; None reads CONSUL_HTTP_* on first use.
        self.consul_settings = consul_settings
        self._lock = threading.Lock()
        self._closed = False

    @property
    def service_id(self) -> str:
        return self.settings.service_id

    def _client(self):
        if self._consul is None:
            self._consul = make_consul(self.consul_settings)
        return self._consul

    def register(self) -> bool:
        """Service and check in one call; replace-existing-checks drops stale checks (and a
        maintenance flag left from an earlier life of the same ID). False, and nothing
        sent, once closed."""
        s = self.settings
        check = Check.http(
            s.check_url,
            go_duration(s.check_interval),
            timeout=go_duration(s.check_timeout),
            deregister=go_duration(s.deregister_after),
        )
        with self._lock:
            if self._closed:
                return False
            self._client().agent.service.register(
                s.name,
                service_id=s.service_id,
                address=s.address,
                port=s.port,
                tags=list(s.tags),
                meta=s.meta,
                weights={"Passing": s.weights[0], "Warning": s.weights[1]},
                check=check,
                replace_existing_checks=True,
            )
        log.info(
            "registered %s at %s (check %s)",
            s.service_id,
            s.check_url,
            check["interval"],
        )
        return True

    def close(self) -> None:
        """Never register again. Under the lock: a registration in flight ends first."""
        with self._lock:
            self._closed = True

    def is_known(self) -> bool:
        """Whether the local agent still has this instance (it forgets all on restart)."""
        with self._lock:
            return self.service_id in self._client().agent.services()

    def enter_maintenance(self, reason: str) -> None:
        with self._lock:
            self._client().agent.service.maintenance(
                self.service_id, True, reason=reason
            )

    def deregister(self) -> None:
        with self._lock:
            self._closed = True
            self._client().agent.service.deregister(self.service_id)
        log.info("deregistered %s", self.service_id)

    def drain(self, sleep: Callable[[float], None] = time.sleep) -> None:
        """Leave the passing set, keep serving `drain_seconds`, then deregister. Never
        raises: shutdown must go on when Consul is unreachable."""
        seconds = self.settings.drain_seconds
        self.close()
        try:
            self.enter_maintenance(f"draining: shutting down, gone in {seconds:g}s")
        except Exception as exc:  # noqa: BLE001 - logged; nobody to tell but the log
            # Watchers cannot learn anything from an unreachable Consul: no point waiting.
            log.warning(
                "drain of %s: maintenance failed (%s); not waiting",
                self.service_id,
                exc,
            )
        else:
            log.info(
                "draining %s: out of the passing set, serving %gs more",
                self.service_id,
                seconds,
            )
            sleep(seconds)
        self.safe_deregister()

    def safe_deregister(self) -> None:
        try:
            self.deregister()
        except Exception as exc:  # noqa: BLE001 - the check and reaper clean up after us
            log.warning("deregistering %s failed: %s", self.service_id, exc)


class AntiEntropy:
    """Re-registers the instance when the agent no longer knows it, checking every
    `interval` seconds from a daemon thread. Also completes a registration that failed at
    start-up because Consul was not reachable yet."""

    def __init__(
        self, registration: Registration, interval: float = ANTI_ENTROPY_SECONDS
    ):
        self.registration = registration
        self.interval = interval
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> "AntiEntropy":
        self._stopping = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(self._stopping,), name="anti-entropy", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()

    def _run(self, stopping: threading.Event) -> None:
        failing = False
        while not stopping.wait(self.interval):
            try:
                if self.registration.is_known() or stopping.is_set():
                    failing = False
                    continue
                if self.registration.register():
                    log.info(
                        "re-registered %s: the agent did not know it",
                        self.registration.service_id,
                    )
                failing = False
            except Exception as exc:  # noqa: BLE001 - try again next round
                if not failing:  # once per outage, not once per poll
                    log.warning(
                        "anti-entropy for %s: %s", self.registration.service_id, exc
                    )
                failing = True
