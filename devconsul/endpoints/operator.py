"""/v1/operator/*: raft, autopilot, keyring and usage as a lone dev server
answers them (agent/operator_endpoint.go and the RPCs behind it).

The agent is the only raft voter and leader: removing it or handing leadership
away fails with raft's own errors; there is no gossip encryption, so every
keyring operation reports each pool's failure as serf does.
"""

import time
from datetime import UTC, datetime

from devconsul import VERSION, schemas, selfinfo
from devconsul.decode import (
    Fields,
    go_base64,
    go_parse_uint,
    load_json,
    parse_bool,
    worded,
)
from devconsul.durations import format_duration
from devconsul.errors import HTTPError, multierror
from devconsul.messages import Request, Response, json_response
from devconsul.queries import (
    blocking_read,
    check_datacenter,
    consistency_level,
    query_meta,
)
from devconsul.routing import GET, Route
from devconsul.store import AUTOPILOT, SERVICES

# When this process's raft became stable (autopilot's StableSince).
_STARTED = time.time()

AUTOPILOT_DEFAULTS = {
    "CleanupDeadServers": True,
    "LastContactThreshold": "200ms",
    "MaxTrailingLogs": 250,
    "MinQuorum": 0,
    "ServerStabilizationTime": "10s",
    "RedundancyZoneTag": "",
    "DisableUpgradeMigration": False,
    "UpgradeVersionTag": "",
}
_DURATIONS = ("LastContactThreshold", "ServerStabilizationTime")
_KINDS = (
    "api-gateway",
    "connect-native",
    "connect-proxy",
    "ingress-gateway",
    "mesh-gateway",
    "terminating-gateway",
)


# -- raft -------------------------------------------------------------------------


def raft_configuration(app, req: Request) -> Response:
    check_datacenter(req, app.config.datacenter)
    server = {
        "ID": app.agent.node_id,
        "Node": app.agent.node,
        "Address": selfinfo.server_address(app.config),
        "Leader": True,
        "ProtocolVersion": "3",
        "Voter": True,
    }
    return json_response(req, {"Servers": [server], "Index": 1})


def raft_peer(app, req: Request) -> Response:
    """DELETE ?id= or ?address=: the only peer there is cannot go, since raft
    refuses a configuration without voters."""
    check_datacenter(req, app.config.datacenter)
    has_id, has_address = req.has("id"), req.has("address")
    if not has_id and not has_address:
        raise HTTPError(
            400,
            "Must specify either ?id with the server's ID or ?address with IP:port "
            "of peer to remove",
        )
    if has_id and has_address:
        raise HTTPError(400, "Must specify only one of ?id or ?address")
    if has_id and req.param("id") != app.agent.node_id:
        raise HTTPError(
            500, f'id "{req.param("id")}" was not found in the Raft configuration'
        )
    if has_address and req.param("address") != selfinfo.server_address(app.config):
        raise HTTPError(
            500,
            f'address "{req.param("address")}" was not found in the Raft configuration',
        )
    raise HTTPError(500, "need at least one voter in configuration: {[]}")


def transfer_leader(app, req: Request) -> Response:
    """POST ?id=: there is no other server to lead (raft's ErrCannotFindPeer,
    or no address known for an ID), reported through the operator gRPC call."""
    target = req.param("id", "")
    if target and target != app.agent.node_id:
        reason = f"Could not find address for server id {target}"
    elif target:
        reason = "cannot transfer leadership to itself"
    else:
        reason = "cannot find peer"
    raise HTTPError(500, f"rpc error: code = Unknown desc = {reason}")


# -- autopilot ----------------------------------------------------------------------


def _autopilot_config(app) -> dict:
    stored = app.store.settings.get(AUTOPILOT)
    return stored or {**AUTOPILOT_DEFAULTS, "CreateIndex": 0, "ModifyIndex": 0}


def autopilot_configuration(app, req: Request) -> Response:
    check_datacenter(req, app.config.datacenter)
    if req.method == "GET":
        return json_response(req, _autopilot_config(app))
    config = _parse_autopilot(req.body)
    cas = None
    if req.has("cas"):
        try:
            cas = go_parse_uint(req.param("cas"))
        except ValueError as exc:
            raise HTTPError(400, f"Error parsing cas value: {exc}") from None
    done = app.store.put_autopilot(config, cas)
    # Only a CAS write reports whether it happened.
    return json_response(req, done if cas is not None else True)


def _parse_autopilot(raw: bytes) -> dict:
    """api.AutopilotConfiguration over api.NewAutopilotConfiguration's defaults."""
    with worded("Error parsing autopilot config: "):
        fields = Fields(
            load_json(raw),
            "api.AutopilotConfiguration",
            schemas.AUTOPILOT_CONFIGURATION,
        )
        config = dict(AUTOPILOT_DEFAULTS)
        for name, default in AUTOPILOT_DEFAULTS.items():
            if name in _DURATIONS:
                if fields.present(name):
                    config[name] = format_duration(fields.duration(name))
            elif isinstance(default, bool):
                config[name] = fields.bool(name, default)
            elif isinstance(default, int):
                config[name] = fields.int(name, default)
            else:
                config[name] = fields.str(name, default)
        return config


def autopilot_health(app, req: Request) -> Response:
    check_datacenter(req, app.config.datacenter)
    stable = datetime.fromtimestamp(round(_STARTED), UTC)
    server = {
        "ID": app.agent.node_id,
        "Name": app.agent.node,
        "Address": selfinfo.server_address(app.config),
        "SerfStatus": "alive",
        "Version": VERSION,
        "Leader": True,
        "LastContact": "0s",
        "LastTerm": 2,
        "LastIndex": app.store.index,
        "Healthy": True,
        "Voter": True,
        "StableSince": stable.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    return json_response(
        req, {"Healthy": True, "FailureTolerance": 0, "Servers": [server]}
    )


# -- keyring ------------------------------------------------------------------------


def keyring(app, req: Request) -> Response:
    """No gossip encryption in a dev agent: serf answers every keyring query
    with a failure, for the WAN pool and then the LAN pool (a key that is not
    base64 fails before asking anyone)."""
    key = None
    if req.method != "GET":
        key = Fields(req.json(), "agent.keyringArgs", schemas.KEYRING_ARGS).str("Key")
    _relay_factor(req)
    pools = [("WAN", f"{app.agent.node}.{app.config.datacenter}")]
    if _local_only(req):
        pools = []
    pools.append((f"{app.config.datacenter} (LAN)", app.agent.node))
    errors = []
    for pool, member in pools:
        errors += _pool_errors(pool, member, key)
    raise HTTPError(500, multierror(errors))


def _pool_errors(pool: str, member: str, key: str | None) -> list[str]:
    if key is None:
        return [
            f"{pool} error: 1/1 nodes reported failure",
            f"{member}: Keyring is empty (encryption not enabled)",
        ]
    try:
        go_base64(key)
    except ValueError as exc:
        return [f"{pool} error: {exc}"]
    return [
        f"{pool} error: 1/1 nodes reported failure",
        f"{member}: No keyring to modify (encryption not enabled)",
    ]


def _relay_factor(req: Request) -> None:
    raw = req.param("relay-factor")
    if not raw:
        return
    try:
        n = int(raw)
    except ValueError:
        raise HTTPError(
            400,
            f'Error parsing relay factor: strconv.Atoi: parsing "{raw}": invalid syntax',
        ) from None
    if not 0 <= n <= 5:
        raise HTTPError(
            400, "Invalid relay-factor: Relay factor must be in range: [0, 5]"
        )


def _local_only(req: Request) -> bool:
    raw = req.param("local-only")
    if not raw:
        return False
    try:
        local = parse_bool(raw)
    except ValueError:
        raise HTTPError(
            400,
            f'Error parsing local-only: strconv.ParseBool: parsing "{raw}": invalid '
            "syntax",
        ) from None
    if local and req.method != "GET":
        raise HTTPError(
            400,
            "Invalid use of local-only: local-only can only be set for list requests",
        )
    return local


# -- usage ----------------------------------------------------------------------------


def usage(app, req: Request) -> Response:
    store = app.store

    def build():
        services = list(store.services.values())
        kinds = dict.fromkeys(_KINDS, 0)
        for s in services:
            if s.kind in kinds:
                kinds[s.kind] += 1
            elif (s.connect or {}).get("Native"):
                kinds["connect-native"] += 1
        billable = [s for s in services if s.kind in ("", "typical")]
        return {
            "Usage": {
                app.config.datacenter: {
                    "Services": len({s.name for s in services}),
                    "ServiceInstances": len(services),
                    "ConnectServiceInstances": kinds,
                    "BillableServiceInstances": sum(
                        1 for s in billable if s.name != "consul"
                    ),
                }
            }
        }

    def respond(data, headers):
        meta = query_meta(int(headers["X-Consul-Index"]), consistency_level(req))
        return json_response(req, {**data, **meta}, headers=headers)

    return blocking_read(app, req, lambda: store.table_index[SERVICES], build, respond)


ROUTES = [
    Route("/v1/operator/raft/configuration", GET, raft_configuration),
    Route("/v1/operator/raft/peer", ("DELETE",), raft_peer),
    Route("/v1/operator/raft/transfer-leader", ("POST",), transfer_leader),
    Route(
        "/v1/operator/autopilot/configuration", ("GET", "PUT"), autopilot_configuration
    ),
    Route("/v1/operator/autopilot/health", GET, autopilot_health),
    Route("/v1/operator/keyring", ("GET", "POST", "PUT", "DELETE"), keyring),
    Route("/v1/operator/usage", GET, usage),
]
