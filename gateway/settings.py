"""Gateway configuration: environment only, checked at boot.

| variable | default | meaning |
|---|---|---|
| `PORT` | `8000` | listening port (gunicorn bind and the registered port) |
| `WEB_CONCURRENCY` | `1` | gunicorn worker processes (one event loop each); metrics are summed over them, ejections and retry budgets stay per process |
| `LOG_LEVEL` | `INFO` | `INFO` logs one access line per proxied request |
| `CONSUL_HTTP_ADDR`, `CONSUL_HTTP_TOKEN` | `127.0.0.1:8500`, empty | the Consul agent the gateway watches |
| `GATEWAY_LB_STRATEGY` | `round_robin` | default strategy; a service's Meta `lb_strategy` overrides it |
| `GATEWAY_WATCH_TAG` | (none) | follow only the services carrying this Consul tag (none: every service in the catalog) |
| `GATEWAY_MAX_BODY_BYTES` | `10485760` | request bodies above this get 413 |
| `GATEWAY_MAX_HEADER_BYTES` | `8190` | one request header line (431 beyond); at most 8190 |
| `GATEWAY_MAX_HEADERS` | `100` | number of request headers (431 beyond); at most 100 |
| `GATEWAY_MAX_REQUEST_LINE` | `8177` | request target (414 beyond); at most 8177 |
| `GATEWAY_HEADER_TIMEOUT` | `10` | seconds a client may take to send a request's head (then 408, closed) |
| `GATEWAY_CLIENT_TIMEOUT` | `10` | seconds a client may take to send its whole body (then 408) |
| `GATEWAY_KEEPALIVE_TIMEOUT` | `5` | seconds an idle kept-alive client connection stays open |
| `GATEWAY_MAX_CONNECTIONS` | `4096` | open client connections per worker; past it, 503 at once |
| `GATEWAY_CONNECT_TIMEOUT` | `1.0` | seconds to open an upstream connection |
| `GATEWAY_READ_TIMEOUT` | `10.0` | seconds to wait for upstream bytes |
| `GATEWAY_DEADLINE` | `15.0` | seconds for all attempts of one request together |
| `GATEWAY_MAX_ATTEMPTS` | `3` | attempts per request, each on a different instance |
| `GATEWAY_RETRY_BUDGET_RATIO` | `0.2` | retries allowed per request over the window, per service |
| `GATEWAY_RETRY_BUDGET_MIN` | `5` | retries always allowed per window (the floor) |
| `GATEWAY_RETRY_BUDGET_WINDOW` | `10` | sliding window of the retry budget, seconds |
| `GATEWAY_EJECT_AFTER` | `3` | consecutive failures (connect error, timeout, 5xx) that eject |
| `GATEWAY_EJECT_BASE` | `5` | first ejection, seconds; doubles with each repeat |
| `GATEWAY_EJECT_MAX` | `60` | longest ejection, seconds |
| `GATEWAY_POOL_SIZE` | `64` | kept-alive connections per upstream instance |
| `GATEWAY_RETRY_AFTER` | `1` | seconds in `Retry-After` of a 503 |
| `GATEWAY_TRUST_FORWARDED` | `false` | keep clients' `X-Forwarded-*` (only behind a trusted proxy) |

Never more than half of a service's instances are ejected at once (not configurable).
"""

from collections.abc import Mapping
from dataclasses import dataclass

from chassis.env import ConfigError, env_choice, env_float, env_int, env_str
from discovery.gunicorn_hooks import (
    LIMIT_REQUEST_FIELD_SIZE,
    LIMIT_REQUEST_FIELDS,
    LIMIT_REQUEST_LINE,
)
from discovery.strategies import STRATEGIES
from gateway.paths import API_PREFIX

__all__ = ["DEFAULT_PORT", "ConfigError", "GatewaySettings"]

DEFAULT_PORT = 8000  # PORT unset: what gunicorn binds and Consul registers

# The most each head limit may be (its default too): what the services take
# (discovery.gunicorn_hooks, as gunicorn counts) less what the gateway may add to a request
# it forwards, so that a request it admits never gets a service's 414 or 431 instead of
# its own. It adds:
# - on the request line, "OPTIONS " (the longest method it proxies) and " HTTP/1.1" around
#   the target, which loses its /api;
MAX_REQUEST_LINE = LIMIT_REQUEST_LINE - len("OPTIONS  HTTP/1.1") + len(API_PREFIX)
# - beside the client's lines (each forwarded once at most), 9 of its own: Host,
#   X-Forwarded-For/-Proto/-Prefix/-Host, X-Request-ID, traceparent, tracestate, and
#   Content-Length or Transfer-Encoding;
MAX_HEADERS = LIMIT_REQUEST_FIELDS - 9
# - to one line (counted here as "name: value"), its CRLF, and ", <client address>" to a
#   trusted X-Forwarded-For (an IPv6 address and its zone: 55 characters at most).
MAX_HEADER_BYTES = LIMIT_REQUEST_FIELD_SIZE - len("\r\n, ") - 55


@dataclass(frozen=True)
class GatewaySettings:
    strategy: str = "round_robin"
    max_body_bytes: int = 10 * 1024 * 1024
    max_header_bytes: int = MAX_HEADER_BYTES
    max_headers: int = MAX_HEADERS
    max_request_line: int = MAX_REQUEST_LINE
    header_timeout: float = 10.0
    client_timeout: float = 10.0
    keepalive_timeout: float = 5.0
    max_connections: int = 4096
    connect_timeout: float = 1.0
    read_timeout: float = 10.0
    deadline: float = 15.0
    max_attempts: int = 3
    retry_budget_ratio: float = 0.2
    retry_budget_min: int = 5
    retry_budget_window: float = 10.0
    eject_after: int = 3
    eject_base: float = 5.0
    eject_max: float = 60.0
    pool_size: int = 64
    retry_after: int = 1
    trust_forwarded: bool = False
    watch_tag: str = ""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "GatewaySettings":
        e = environ
        return cls(
            strategy=env_choice(
                "GATEWAY_LB_STRATEGY", "round_robin", list(STRATEGIES), e
            ),
            max_body_bytes=env_int("GATEWAY_MAX_BODY_BYTES", 10485760, 0, environ=e),
            max_header_bytes=env_int(
                "GATEWAY_MAX_HEADER_BYTES", MAX_HEADER_BYTES, 256, MAX_HEADER_BYTES, e
            ),
            max_headers=env_int("GATEWAY_MAX_HEADERS", MAX_HEADERS, 10, MAX_HEADERS, e),
            max_request_line=env_int(
                "GATEWAY_MAX_REQUEST_LINE", MAX_REQUEST_LINE, 256, MAX_REQUEST_LINE, e
            ),
            header_timeout=env_float("GATEWAY_HEADER_TIMEOUT", 10.0, 0.1, e),
            client_timeout=env_float("GATEWAY_CLIENT_TIMEOUT", 10.0, 0.1, e),
            keepalive_timeout=env_float("GATEWAY_KEEPALIVE_TIMEOUT", 5.0, 0.1, e),
            max_connections=env_int("GATEWAY_MAX_CONNECTIONS", 4096, 1, environ=e),
            connect_timeout=env_float("GATEWAY_CONNECT_TIMEOUT", 1.0, 0.01, e),
            read_timeout=env_float("GATEWAY_READ_TIMEOUT", 10.0, 0.01, e),
            deadline=env_float("GATEWAY_DEADLINE", 15.0, 0.01, e),
            max_attempts=env_int("GATEWAY_MAX_ATTEMPTS", 3, 1, 10, e),
            retry_budget_ratio=env_float("GATEWAY_RETRY_BUDGET_RATIO", 0.2, 0.0, e),
            retry_budget_min=env_int("GATEWAY_RETRY_BUDGET_MIN", 5, 0, environ=e),
            retry_budget_window=env_float("GATEWAY_RETRY_BUDGET_WINDOW", 10.0, 1.0, e),
            eject_after=env_int("GATEWAY_EJECT_AFTER", 3, 1, environ=e),
            eject_base=env_float("GATEWAY_EJECT_BASE", 5.0, 0.01, e),
            eject_max=env_float("GATEWAY_EJECT_MAX", 60.0, 0.01, e),
            pool_size=env_int("GATEWAY_POOL_SIZE", 64, 1, environ=e),
            retry_after=env_int("GATEWAY_RETRY_AFTER", 1, 0, environ=e),
            trust_forwarded=_env_bool("GATEWAY_TRUST_FORWARDED", e),
            watch_tag=env_str("GATEWAY_WATCH_TAG", "", e),
        )


def _env_bool(name: str, environ: Mapping[str, str] | None) -> bool:
    value = env_str(name, "false", environ).lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name}: expected true or false, got {value!r}")
