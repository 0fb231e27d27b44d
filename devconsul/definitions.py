"""Service and check definitions as clients send them, validated with Consul's texts."""

import ipaddress
import re
from dataclasses import dataclass, field

from devconsul import schemas
from devconsul.decode import Fields, decode_failed
from devconsul.errors import HTTPError

STATUSES = ("passing", "warning", "critical")
_META_KEY = re.compile(r"^[A-Za-z0-9_-]+$")
# Kinds Consul knows but this agent does not run; naming them gives a clear error.
_UNSUPPORTED_KINDS = (
    ("grpc", "GRPC"),
    ("udp", "UDP"),
    ("alias", "AliasService"),
    ("alias", "AliasNode"),
    ("docker", "DockerContainerID"),
    ("h2ping", "H2PING"),
    ("os_service", "OSService"),
)
# Agent.addCheck's refusal of a script check registered through the HTTP API
# (a "remote" source) unless the agent runs with -enable-script-checks
# (agent/agent.go). -enable-local-script-checks covers only checks from the
# agent's own configuration files, so it never admits an API registration.
SCRIPTS_DISABLED = (
    "Scripts are disabled on this agent from remote calls; to enable, configure "
    "'enable_script_checks' to true"
)


@dataclass
class CheckDefinition:
    id: str = ""
    name: str = ""
    notes: str = ""
    status: str = ""
    service_id: str = ""
    http: str = ""
    method: str = ""
    header: dict[str, list[str]] = field(default_factory=dict)
    body: str = ""
    tls_skip_verify: bool = False
    tls_server_name: str = ""
    disable_redirects: bool = False
    tcp: str = ""
    args: list[str] = field(default_factory=list)
    output_max_size: int = 0
    ttl: int = 0
    interval: int = 0
    timeout: int = 0
    deregister_after: int = 0
    success_before_passing: int = 0
    failures_before_critical: int = 0
    failures_before_warning: int = 0
    unsupported: str = ""

    @property
    def kind(self) -> str:
        if self.unsupported:
            return self.unsupported
        if self.args:
            return "script"
        if self.http:
            return "http"
        if self.ttl > 0:
            return "ttl"
        if self.tcp:
            return "tcp"
        return ""

    def is_empty(self) -> bool:
        return self == CheckDefinition()

    def validation_error(self) -> str | None:
        """Consul's ``CheckType.Validate`` reasons, or None when valid."""
        interval_kind = bool(self.http or self.tcp or self.args or self.unsupported)
        if self.interval > 0 and self.ttl > 0:
            return "Interval and TTL cannot both be specified"
        if interval_kind and self.interval <= 0:
            return (
                "Interval must be > 0 for Script, HTTP, H2PING, TCP, UDP or "
                "OSService checks"
            )
        if not interval_kind and self.ttl <= 0:
            return (
                "Must provide TTL or Script/DockerContainerID/HTTP/TCP/UDP/H2PING/"
                "GRPC/AliasService/OSService and Interval"
            )
        if self.output_max_size < 0:
            return "MaxOutputMaxSize must be positive"
        if self.failures_before_warning > self.failures_before_critical > 0:
            return "FailuresBeforeWarning must be <= FailuresBeforeCritical"
        return None


# The field names of each struct a check arrives as.
_CHECK_STRUCTS = {
    "CheckDefinition": schemas.CHECK_DEFINITION,
    "CheckType": schemas.CHECK_TYPE,
    "HealthCheckDefinition": schemas.HEALTH_CHECK_DEFINITION,
}


def parse_check(obj, struct: str = "CheckDefinition") -> CheckDefinition:
    f = Fields(obj, struct, _CHECK_STRUCTS[struct])
    # Embedded service checks use CheckID, the standalone endpoint ID; take both.
    check_id = f.str("CheckID") or f.str("ID")
    return CheckDefinition(
        id=check_id,
        name=f.str("Name"),
        notes=f.str("Notes"),
        status=f.str("Status"),
        service_id=f.str("ServiceID"),
        http=f.str("HTTP"),
        method=f.str("Method"),
        header=_header(f),
        body=f.str("Body"),
        tls_skip_verify=f.bool("TLSSkipVerify"),
        tls_server_name=f.str("TLSServerName"),
        disable_redirects=f.bool("DisableRedirects"),
        tcp=f.str("TCP"),
        # CheckType.UnmarshalJSON: ScriptArgs, else "args", else "script_args".
        args=f.str_list("ScriptArgs") or f.str_list("Args"),
        output_max_size=f.int("OutputMaxSize"),
        ttl=f.duration("TTL"),
        interval=f.duration("Interval"),
        timeout=f.duration("Timeout"),
        deregister_after=f.duration("DeregisterCriticalServiceAfter"),
        success_before_passing=f.int("SuccessBeforePassing"),
        failures_before_critical=f.int("FailuresBeforeCritical"),
        failures_before_warning=f.int("FailuresBeforeWarning"),
        unsupported=next(
            (kind for kind, key in _UNSUPPORTED_KINDS if f.has(key) and f.raw(key)),
            "",
        ),
    )


def _header(f: Fields) -> dict[str, list[str]]:
    header = f.obj("Header") or {}
    for values in header.values():
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise decode_failed(
                f"json: cannot unmarshal {type(values).__name__} into Go struct "
                f"field {f.struct}.Header of type []string"
            )
    return {name: list(values) for name, values in header.items()}


@dataclass
class ServiceDefinition:
    id: str
    name: str
    tags: list[str] | None
    address: str
    port: int
    meta: dict[str, str]
    weights: dict[str, int]
    enable_tag_override: bool
    tagged_addresses: dict[str, dict]
    kind: str = ""
    proxy: dict | None = None
    connect: dict | None = None
    checks: list[CheckDefinition] = field(default_factory=list)


def service_fields(f: Fields, default_weight: int = 1) -> dict:
    """The NodeService fields agent and catalog registrations share, as keyword
    arguments of ServiceDefinition and store.Service."""
    weights = Fields(f.raw("Weights"), "Weights", schemas.WEIGHTS)
    # Decoded for their field names only; stored as sent.
    Fields(f.raw("Locality"), "Locality", schemas.LOCALITY)
    Fields(f.raw("Proxy"), "ConnectProxyConfig", schemas.CONNECT_PROXY_CONFIG)
    Fields(f.raw("Connect"), "ServiceConnect", schemas.SERVICE_CONNECT)
    return {
        "tags": None if f.raw("Tags") is None else f.str_list("Tags"),
        "address": f.str("Address"),
        "port": f.int("Port"),
        "meta": f.str_map("Meta"),
        "weights": {
            "Passing": weights.int("Passing", default_weight),
            "Warning": weights.int("Warning", default_weight),
        },
        "enable_tag_override": f.bool("EnableTagOverride"),
        "tagged_addresses": _tagged_addresses(f),
        "kind": f.str("Kind"),
        "proxy": f.obj("Proxy"),
        "connect": f.obj("Connect"),
    }


def parse_service(obj) -> ServiceDefinition:
    f = Fields(obj, "ServiceDefinition", schemas.SERVICE_DEFINITION)
    name = f.str("Name")
    # Consul keeps its {1, 1} default only when Weights is absent altogether.
    default_weight = 0 if f.has("Weights") else 1
    definition = ServiceDefinition(
        id=f.str("ID") or name, name=name, **service_fields(f, default_weight)
    )
    checks = [f.raw("Check")] if f.has("Check") else []
    if f.has("Checks"):
        many = f.raw("Checks")
        if not isinstance(many, list):
            raise decode_failed("json: cannot unmarshal object into Go struct field")
        checks += many
    parsed = (parse_check(c, "CheckType") for c in checks)
    definition.checks = [c for c in parsed if not c.is_empty()]
    return definition


def _tagged_addresses(f: Fields) -> dict[str, dict]:
    result = {}
    for name, value in (f.obj("TaggedAddresses") or {}).items():
        entry = Fields(value, "ServiceAddress", schemas.SERVICE_ADDRESS)
        result[name] = {"Address": entry.str("Address"), "Port": entry.int("Port")}
    return result


def validate_service(definition: ServiceDefinition, scripts: bool = False) -> None:
    """Consul's checks on a service registration; `scripts` is whether this
    agent runs script checks registered through the API."""
    if not definition.name:
        raise HTTPError(400, "Missing service name")
    if definition.address in ("0.0.0.0", "::", "[::]"):
        raise HTTPError(400, "Invalid service address")
    meta_error = _meta_error(definition.meta)
    if meta_error:
        raise HTTPError(400, f"Invalid Service Meta: {meta_error}")
    weights_error = _weights_error(definition.weights)
    if weights_error:
        raise HTTPError(400, f"Invalid Weights: {weights_error}")
    for check in definition.checks:
        if check.status and check.status not in STATUSES:
            raise HTTPError(
                400, "Status for checks must 'passing', 'warning', 'critical'"
            )
        reason = check.validation_error()
        if reason:
            raise HTTPError(400, f"Invalid check: {reason}")
        reject_unsupported(check, scripts)


def reject_unsupported(check: CheckDefinition, scripts: bool = False) -> None:
    """Refuse what this agent will not run: script checks unless enabled (a
    Docker check is a script check run in a container), other kinds always."""
    if (check.args or check.unsupported == "docker") and not scripts:
        raise HTTPError(500, SCRIPTS_DISABLED)
    if check.unsupported:
        raise HTTPError(
            400, f"Invalid check: devconsul does not run {check.unsupported} checks"
        )


def _meta_error(meta: dict[str, str]) -> str | None:
    if len(meta) > 64:
        return "Node metadata cannot contain more than 64 key/value pairs"
    for key, value in meta.items():
        if not key:
            return "Key cannot be blank"
        if not _META_KEY.match(key):
            return "Key contains invalid characters"
        if len(key) > 128:
            return "Key is too long (limit: 128 characters)"
        if key.startswith("consul-"):
            return "Key prefix 'consul-' is reserved for internal use"
        if len(value) > 512:
            return "Value is too long (limit: 512 characters)"
    return None


def _weights_error(weights: dict[str, int]) -> str | None:
    if weights["Passing"] < 1:
        return "Passing must be greater than 0"
    if weights["Warning"] < 0:
        return "Warning must be greater or equal than 0"
    if weights["Passing"] > 65535 or weights["Warning"] > 65535:
        return "Passing and Warning must be lower than 65536"
    return None


def is_ip(address: str) -> bool:
    try:
        ipaddress.ip_address(address)
    except ValueError:
        return False
    return True
