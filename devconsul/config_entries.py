"""Config entries (``/v1/config``): which kinds exist, how a body becomes an
entry, and the checks Consul's ConfigEntry.Apply makes before storing one.

An entry is kept as sent, with top-level keys in Consul's CamelCase. Keys a
kind does not have are refused as Consul refuses them, for the kinds in
devconsul.schemas.CONFIG_ENTRY_FIELDS (top-level keys only); Consul also fills
in each kind's defaults, which devconsul does not.
"""

from devconsul.decode import json_object
from devconsul.errors import HTTPError, multierror
from devconsul.schemas import CONFIG_ENTRY_FIELDS

KINDS = frozenset(
    {
        "service-defaults",
        "proxy-defaults",
        "service-router",
        "service-splitter",
        "service-resolver",
        "ingress-gateway",
        "terminating-gateway",
        "service-intentions",
        "mesh",
        "exported-services",
        "sameness-group",
        "api-gateway",
        "bound-api-gateway",
        "inline-certificate",
        "http-route",
        "tcp-route",
        "jwt-provider",
    }
)
# Kinds with a single, fixed name (ProxyConfigGlobal, MeshConfigMesh).
FIXED_NAMES = {"proxy-defaults": "global", "mesh": "mesh"}
DECODING_FAILED = "Request decoding failed: "


def check_kind(kind: str) -> None:
    """structs.MakeConfigEntry's refusal, raised by the caller's status."""
    if kind not in KINDS:
        raise ValueError(f"invalid config entry kind: {kind}")


def camel(key: str) -> str:
    """lib.TranslateKeys-style: ``connect_timeout`` -> ``ConnectTimeout``."""
    if "_" not in key and key[:1].isupper():
        return key
    return "".join(part[:1].upper() + part[1:] for part in key.split("_"))


def decode(body) -> dict:
    """structs.DecodeConfigEntry: a JSON object with a known Kind."""

    def failed(reason: str) -> HTTPError:
        return HTTPError(400, DECODING_FAILED + reason)

    body = json_object(body)
    kind = body.get("Kind", body.get("kind"))
    if kind is None:
        raise failed("Payload does not contain a kind/Kind key at the top level")
    if not isinstance(kind, str):
        raise failed("Kind value in payload is not a string")
    try:
        check_kind(kind)
    except ValueError as exc:
        raise failed(str(exc)) from None
    _refuse_unused(kind, body)
    entry = {
        camel(k): v
        for k, v in body.items()
        if camel(k) not in ("CreateIndex", "ModifyIndex")
    }
    entry["Kind"] = kind
    if not isinstance(entry.get("Name", ""), str):
        raise failed("'Name' expected type 'string'")
    entry.setdefault("Name", "")
    if kind == "proxy-defaults" and not entry["Name"]:
        entry["Name"] = "global"  # ProxyConfigEntry.Normalize
    if kind == "service-defaults" and isinstance(entry.get("Protocol"), str):
        # ServiceConfigEntry.Normalize
        entry["Protocol"] = entry["Protocol"].lower()
    return entry


def _refuse_unused(kind: str, body: dict) -> None:
    """validateUnusedKeys (agent/structs/config_entry_ce.go): every key that
    mapstructure left unused, in one go-multierror list."""
    known = CONFIG_ENTRY_FIELDS.get(kind)
    if known is None:
        return
    errors = []
    for key in sorted(body):
        if camel(key).lower() in known or key in ("kind", "Kind"):
            continue
        reason = f'invalid config key "{key}"'
        if key.lower().endswith("namespace"):
            reason += ", namespaces are a consul enterprise feature"
        elif "jwt" in key.lower():
            reason += ", api-gateway jwt validation is a consul enterprise feature"
        errors.append(reason)
    if errors:
        raise HTTPError(400, DECODING_FAILED + multierror(errors))


def validate(entry: dict) -> None:
    """What Apply's Validate refuses (an RPC error: 500)."""
    kind, name = entry["Kind"], entry["Name"]
    fixed = FIXED_NAMES.get(kind)
    if fixed and name != fixed:
        raise HTTPError(500, f'invalid name ("{name}"), only "{fixed}" is supported')
    if not name:
        raise HTTPError(500, "Name is required")
    if kind == "service-defaults" and name == "*":
        raise HTTPError(
            500,
            "service-defaults name must be the name of a service, and not a wildcard",
        )
