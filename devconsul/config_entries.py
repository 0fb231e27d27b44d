"""Config entries (``/v1/config``): which kinds exist, how a body becomes an
entry, and the checks Consul's ConfigEntry.Apply makes before storing one.

An entry is kept as sent, with top-level keys in Consul's CamelCase; Consul
also fills in each kind's defaults and refuses fields a kind does not have.
"""

from devconsul.errors import HTTPError

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

    if not isinstance(body, dict):
        raise failed(
            "json: cannot unmarshal into Go value of type map[string]interface {}"
        )
    kind = body.get("Kind", body.get("kind"))
    if kind is None:
        raise failed("Payload does not contain a kind/Kind key at the top level")
    if not isinstance(kind, str):
        raise failed("Kind value in payload is not a string")
    try:
        check_kind(kind)
    except ValueError as exc:
        raise failed(str(exc)) from None
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
