"""/v1/discovery-chain/:service (agent/discovery_chain_endpoint.go): the
compiled chain of a service with no routers or splitters -- one resolver
node and its target.

Protocol comes from the service's service-defaults, else the global
proxy-defaults, else "tcp"; a service-resolver's ConnectTimeout applies.
Routers, splitters, redirects, failover and subsets are not compiled.
"""

import hashlib
import json
import uuid

from devconsul.config_entries import DECODING_FAILED
from devconsul.decode import Fields, decode_failed, json_object, load_json, worded
from devconsul.durations import SECOND, format_duration, parse_duration
from devconsul.errors import HTTPError
from devconsul.messages import Request, Response
from devconsul.queries import blocking_read
from devconsul.routing import GET, POST, Route, path_arg
from devconsul.store import CONFIG

DEFAULT_CONNECT_TIMEOUT = 5 * SECOND
MESH_GATEWAY_MODES = ("", "none", "local", "remote")


def trust_domain(app) -> str:
    """The CA's trust domain, ``<cluster id>.consul``, stable for this agent."""
    return f"{uuid.uuid5(uuid.NAMESPACE_OID, app.agent.node_id)}.consul"


def _overrides(req: Request) -> dict:
    """discoveryChainReadRequest: the POST body's overrides (snake_case too)."""
    if req.method != "POST":
        return {}

    body = json_object(load_json(req.body))
    fields = Fields(
        {k.replace("_", ""): v for k, v in body.items()}, "discoveryChainReadRequest"
    )
    out = {}
    protocol = fields.raw("OverrideProtocol")
    if protocol is not None:
        if isinstance(protocol, (dict, list)):
            raise decode_failed(
                f"OverrideProtocol: invalid type {type(protocol).__name__}"
            )
        out["protocol"] = (
            str(protocol).lower() if isinstance(protocol, bool) else str(protocol)
        )
    timeout = fields.raw("OverrideConnectTimeout")
    if timeout is not None:
        try:
            out["timeout"] = (
                parse_duration(timeout) if isinstance(timeout, str) else int(timeout)
            )
        except (TypeError, ValueError) as exc:
            raise decode_failed(str(exc)) from None
    gateway = fields.obj("OverrideMeshGateway") or {}
    mode = str(Fields(gateway, "MeshGatewayConfig").raw("Mode") or "")
    if mode.lower() not in MESH_GATEWAY_MODES:
        raise HTTPError(400, "Invalid OverrideMeshGateway.Mode parameter")
    if mode:
        out["mesh_gateway"] = mode.lower()
    return out


def _protocol(entries: dict, service: str) -> str:
    defaults = entries.get(("service-defaults", service)) or {}
    if defaults.get("Protocol"):
        return defaults["Protocol"]
    proxy = (entries.get(("proxy-defaults", "global")) or {}).get("Config") or {}
    return proxy.get("protocol") or "tcp"


def compile_chain(app, service: str, datacenter: str, overrides: dict) -> dict:
    entries = app.store.config_entries
    resolver = entries.get(("service-resolver", service))
    timeout = DEFAULT_CONNECT_TIMEOUT
    if resolver and resolver.get("ConnectTimeout"):
        timeout = parse_duration(str(resolver["ConnectTimeout"]))
    timeout = overrides.get("timeout", timeout)
    target_id = f"{service}.default.default.{datacenter}"
    sni = f"{service}.default.{datacenter}.internal.{trust_domain(app)}"
    mesh_gateway = (
        {"Mode": overrides["mesh_gateway"]} if "mesh_gateway" in overrides else {}
    )
    node = {"ConnectTimeout": format_duration(timeout), "Target": target_id}
    if resolver is None:
        node = {"Default": True, **node}
    chain = {
        "ServiceName": service,
        "Namespace": "default",
        "Partition": "default",
        "Datacenter": datacenter,
    }
    if overrides:
        digest = json.dumps(overrides, sort_keys=True).encode()
        chain["CustomizationHash"] = hashlib.sha256(digest).hexdigest()[:8]
    if resolver is None and not overrides:
        chain["Default"] = True
    chain.update(
        Protocol=overrides.get("protocol", _protocol(entries, service)),
        StartNode=f"resolver:{target_id}",
        Nodes={
            f"resolver:{target_id}": {
                "Type": "resolver",
                "Name": target_id,
                "Resolver": node,
            }
        },
        Targets={
            target_id: {
                "ID": target_id,
                "Service": service,
                "Namespace": "default",
                "Partition": "default",
                "Datacenter": datacenter,
                "MeshGateway": mesh_gateway,
                "Subset": {},
                "ConnectTimeout": format_duration(timeout),
                "SNI": sni,
                "Name": sni,
            }
        },
    )
    return {"Chain": chain}


def read(app, req: Request) -> Response:
    path_arg(req, "Missing chain name")
    with worded(DECODING_FAILED):
        overrides = _overrides(req)
    datacenter = req.param("compile-dc") or app.config.datacenter
    return blocking_read(
        app,
        req,
        lambda: app.store.table_index[CONFIG],
        lambda: compile_chain(app, req.arg, datacenter, overrides),
    )


ROUTES = [Route("/v1/discovery-chain/", (*GET, *POST), read, prefix=True)]
