"""The one place that builds a py-consul client from the environment.

| variable | default | meaning |
|---|---|---|
| CONSUL_HTTP_ADDR | 127.0.0.1:8500 | agent address: host:port, or http(s)://host[:port] |
| CONSUL_HTTP_TOKEN | (none) | ACL token, sent as X-Consul-Token on every call |
| CONSUL_HTTP_SSL | false | use https when CONSUL_HTTP_ADDR carries no scheme |
| CONSUL_HTTP_SSL_VERIFY | true | verify the agent's TLS certificate |
| CONSUL_CACERT | (none) | CA bundle file for verifying the agent |
| CONSUL_CLIENT_CERT | (none) | client certificate file, for an agent that verifies clients |
| CONSUL_CLIENT_KEY | (none) | its private key file (none: CONSUL_CLIENT_CERT holds both) |
| CONSUL_TIMEOUT | 5 | seconds to connect or get an answer; blocking queries add their wait |

The names follow Consul's own CLI, so a shell already set up for `consul` works unchanged.

Health and catalog reads are `stale` (Consul's consistency modes): any server answers them,
not only the leader. Discovery reads all the time, from every process, and must go on
answering while the servers elect a leader; Consul says such reads are generally within
50 ms of the leader, and its own DNS interface reads stale by default. A read a little
behind costs at most a request to an instance just gone, which callers retry elsewhere.
"""

import os
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass

import consul
from chassis.env import ConfigError, env_float, env_str

DEFAULT_ADDR = "127.0.0.1:8500"
STALE_READS = ("/v1/health/", "/v1/catalog/")
CONSISTENCY_MODES = {"stale", "consistent", "leader"}
TRUE_WORDS = {"1", "t", "true", "yes", "on"}
FALSE_WORDS = {"0", "f", "false", "no", "off"}


@dataclass(frozen=True)
class ConsulSettings:
    host: str = "127.0.0.1"
    port: int = 8500
    scheme: str = "http"
    token: str | None = None
    timeout: float = 5.0
    verify: bool | str = True
    cert: str | tuple[str, str] | None = None  # requests' `cert`: file, or (file, key)

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "ConsulSettings":
        environ = os.environ if environ is None else environ
        use_ssl = env_bool("CONSUL_HTTP_SSL", False, environ)
        host, port, scheme = parse_addr(
            env_str("CONSUL_HTTP_ADDR", DEFAULT_ADDR, environ),
            "https" if use_ssl else "http",
        )
        verify: bool | str = env_bool("CONSUL_HTTP_SSL_VERIFY", True, environ)
        if verify:
            verify = environ.get("CONSUL_CACERT", "").strip() or True
        return cls(
            host=host,
            port=port,
            scheme=scheme,
            token=environ.get("CONSUL_HTTP_TOKEN", "").strip() or None,
            timeout=env_float("CONSUL_TIMEOUT", 5.0, minimum=0.1, environ=environ),
            verify=verify,
            cert=client_cert(environ),
        )


def client_cert(environ: Mapping[str, str]) -> str | tuple[str, str] | None:
    """CONSUL_CLIENT_CERT and CONSUL_CLIENT_KEY, as Consul's CLI reads them: what an agent
    with `verify_incoming` on its HTTPS port asks every client for."""
    cert = environ.get("CONSUL_CLIENT_CERT", "").strip()
    key = environ.get("CONSUL_CLIENT_KEY", "").strip()
    if key and not cert:
        raise ConfigError("CONSUL_CLIENT_KEY: set, but CONSUL_CLIENT_CERT is not")
    return (cert, key) if key else cert or None


def env_bool(name: str, default: bool, environ: Mapping[str, str]) -> bool:
    raw = environ.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in TRUE_WORDS:
        return True
    if raw in FALSE_WORDS:
        return False
    raise ConfigError(f"{name}: expected true or false, got {raw!r}")


def parse_addr(value: str, default_scheme: str = "http") -> tuple[str, int, str]:
    """`host:port` or `http(s)://host[:port]` -> (host, port, scheme)."""
    name = "CONSUL_HTTP_ADDR"
    has_scheme = "://" in value
    parsed = urllib.parse.urlsplit(value if has_scheme else f"//{value}")
    scheme = parsed.scheme if has_scheme else default_scheme
    if scheme not in ("http", "https"):
        raise ConfigError(f"{name}: scheme must be http or https, got {value!r}")
    if parsed.path not in ("", "/") or parsed.query or parsed.fragment:
        raise ConfigError(
            f"{name}: expected host:port or URL without path, got {value!r}"
        )
    try:
        port = parsed.port
    except ValueError:
        raise ConfigError(f"{name}: bad port in {value!r}") from None
    if not parsed.hostname:
        raise ConfigError(f"{name}: no host in {value!r}")
    if port is None:
        # A bare host keeps Consul's port; an https URL without one means the https default.
        port = 443 if has_scheme and scheme == "https" else 8500
    return parsed.hostname, port, scheme


class StaleReadsHTTP(consul.std.HTTPClient):
    """py-consul's transport, asking for `stale` on health and catalog reads that name no
    consistency mode (py-consul's health calls cannot name one)."""

    def get(self, callback, path, params=None, headers=None, raw=False):
        params = list(params or ())
        named = any(name in CONSISTENCY_MODES for name, _ in params)
        if path.startswith(STALE_READS) and not named:
            params.append(("stale", "1"))
        return super().get(callback, path, params, headers, raw)


class StaleReadsConsul(consul.Consul):
    def http_connect(self, host, port, scheme, verify=True, cert=None):
        return StaleReadsHTTP(
            host,
            port,
            scheme,
            verify,
            cert,
            connections_timeout=self.connections_timeout,
        )


def make_consul(settings: ConsulSettings | None = None) -> consul.Consul:
    """A py-consul client for `settings` (default: from the environment).

    Each client owns one requests.Session: give every thread that calls Consul its own client.
    """
    settings = settings or ConsulSettings.from_env()
    client = StaleReadsConsul(
        host=settings.host,
        port=settings.port,
        scheme=settings.scheme,
        token=settings.token,
        verify=settings.verify,
        cert=settings.cert,
        connections_timeout=settings.timeout,
    )
    # py-consul lets os.environ's CONSUL_HTTP_TOKEN override the argument; the settings win,
    # so a client built from another mapping (tests, tools) sends exactly what it was given.
    client.token = settings.token
    return client
