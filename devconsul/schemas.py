"""The JSON field names of the Go structs Consul decodes request bodies into.

Consul decodes with ``DisallowUnknownFields`` (lib.DecodeJSON, and the
lib.UnmarshalJSON its custom decoders call), so a key that names no field is a
``400 Request decode failed: json: unknown field "Key"``. Go matches keys
case-insensitively; the snake_case spellings are the aliases each struct's
UnmarshalJSON declares. Sources (Consul 1.17, CE: acl.EnterpriseMeta has no
fields, so ``Namespace``/``Partition`` are unknown): agent/structs/
service_definition.go, check_definition.go, check_type.go, structs.go
(RegisterRequest, DeregisterRequest, NodeService, HealthCheck,
HealthCheckDefinition, Session, ServiceCheck, Weights, ServiceAddress,
Locality), connect_proxy_config.go, agent/agent_endpoint.go (checkUpdate).

Nested Proxy and Connect objects are checked at their top level only, as are
config entries (decoded by mapstructure, not encoding/json: see the end).
"""


def _names(text: str) -> frozenset[str]:
    return frozenset(name.lower() for name in text.split())


# structs.WriteRequest, embedded in every write request: only Token shows.
_WRITE = "Token"
_DURATION_SNAKE = "deregister_critical_service_after"

# Fields CheckType and CheckDefinition share (the "copied fields").
_CHECK_COMMON = (
    "Name Status Notes ScriptArgs HTTP H2PING H2PingUseTLS Header Method Body "
    "DisableRedirects TCP TCPUseTLS UDP Interval AliasNode AliasService "
    "DockerContainerID Shell GRPC GRPCUseTLS OSService TLSServerName "
    "TLSSkipVerify Timeout TTL SuccessBeforePassing FailuresBeforeWarning "
    "FailuresBeforeCritical DeregisterCriticalServiceAfter OutputMaxSize "
    f"args script_args {_DURATION_SNAKE} docker_container_id tls_server_name "
    "tls_skip_verify grpc_use_tls h2ping_use_tls ServiceID service_id"
)

# A check embedded in a service registration (Check, Checks[]).
CHECK_TYPE = _names(f"CheckID {_CHECK_COMMON} ProxyHTTP ProxyGRPC")
# PUT /v1/agent/check/register.
CHECK_DEFINITION = _names(f"ID {_CHECK_COMMON} {_WRITE} disable_redirects")

# PUT /v1/agent/service/register.
SERVICE_DEFINITION = _names(
    "Kind ID Name Tags Address TaggedAddresses Meta Port SocketPath Check Checks "
    "Weights Token EnableTagOverride Locality Proxy Connect "
    "enable_tag_override tagged_addresses"
)

WEIGHTS = _names("Passing Warning")
SERVICE_ADDRESS = _names("Address Port")
LOCALITY = _names("Region Zone")

# structs.ConnectProxyConfig, with its UnmarshalJSON's snake_case aliases.
CONNECT_PROXY_CONFIG = _names(
    "EnvoyExtensions DestinationServiceName DestinationServiceID "
    "LocalServiceAddress LocalServicePort LocalServiceSocketPath Mode "
    "TransparentProxy Config Upstreams MeshGateway Expose AccessLogs "
    "destination_service_name destination_service_id local_service_address "
    "local_service_port local_service_socket_path transparent_proxy "
    "mesh_gateway access_logs envoy_extensions"
)
# structs.ServiceConnect.
SERVICE_CONNECT = _names("Native SidecarService PeerMeta sidecar_service")

# PUT /v1/catalog/register and the objects inside it.
REGISTER_REQUEST = _names(
    "Datacenter ID Node Address TaggedAddresses NodeMeta Service Check Checks "
    f"SkipNodeUpdate PeerName Locality {_WRITE}"
)
NODE_SERVICE = _names(
    "Kind ID Service Tags Address TaggedAddresses Meta Port SocketPath Weights "
    "EnableTagOverride Locality Proxy Connect PeerName CreateIndex ModifyIndex"
)
HEALTH_CHECK = _names(
    "Node CheckID Name Status Notes Output ServiceID ServiceName ServiceTags "
    "Type Interval Timeout ExposedPort Definition PeerName CreateIndex "
    "ModifyIndex"
)
HEALTH_CHECK_DEFINITION = _names(
    "HTTP TLSServerName TLSSkipVerify Header Method Body DisableRedirects TCP "
    "TCPUseTLS UDP H2PING OSService H2PingUseTLS Interval OutputMaxSize Timeout "
    "DeregisterCriticalServiceAfter ScriptArgs DockerContainerID Shell GRPC "
    "GRPCUseTLS AliasNode AliasService TTL"
)
# PUT /v1/catalog/deregister.
DEREGISTER_REQUEST = _names(f"Datacenter Node ServiceID CheckID PeerName {_WRITE}")

# PUT /v1/session/create.
SESSION = _names(
    "ID Name Node LockDelay Behavior TTL NodeChecks ServiceChecks Checks "
    "CreateIndex ModifyIndex"
)
SERVICE_CHECK = _names("ID Namespace")

# PUT /v1/agent/check/update/:id.
CHECK_UPDATE = _names("Status Output")

# PUT /v1/txn (agent/txn_endpoint.go decodes api.TxnOps with decodeBody, so
# DisallowUnknownFields; api/txn.go). api.KVTxnOp's Namespace and Partition
# are plain fields there, accepted and ignored in CE.
TXN_OP = _names("KV Node Service Check")
KV_TXN_OP = _names("Verb Key Value Flags Index Session Namespace Partition")

# PUT /v1/coordinate/update (agent/coordinate_endpoint.go, decodeBody):
# structs.CoordinateUpdateRequest and serf's coordinate.Coordinate.
COORDINATE_UPDATE = _names(f"Datacenter Node Segment Coord {_WRITE}")
COORDINATE = _names("Vec Error Adjustment Height")

# PUT /v1/operator/autopilot/configuration (agent/operator_endpoint.go,
# decodeBody into api.AutopilotConfiguration).
AUTOPILOT_CONFIGURATION = _names(
    "CleanupDeadServers LastContactThreshold MaxTrailingLogs MinQuorum "
    "ServerStabilizationTime RedundancyZoneTag DisableUpgradeMigration "
    "UpgradeVersionTag CreateIndex ModifyIndex"
)
# POST/PUT/DELETE /v1/operator/keyring (agent/operator_endpoint.go keyringArgs).
KEYRING_ARGS = _names("Key Token RelayFactor LocalOnly")

# Config entries are not decoded with encoding/json: structs.DecodeConfigEntry
# (agent/structs/config_entry.go) runs mapstructure and refuses the keys it
# left unused (validateUnusedKeys, config_entry_ce.go). Top-level fields of the
# kinds checked (config_entry.go, config_entry_discoverychain.go,
# config_entry_gateways.go, config_entry_exports.go); CreateIndex and
# ModifyIndex are left unused there too and then let through, as is Kind
# (which exported-services does not even have). Hash is read leniently.
_ENTRY = "Kind Name Meta Hash CreateIndex ModifyIndex"
_PROXY_COMMON = "Mode TransparentProxy MutualTLSMode MeshGateway Expose EnvoyExtensions"
CONFIG_ENTRY_FIELDS = {
    "service-defaults": _names(
        f"{_ENTRY} {_PROXY_COMMON} Protocol ExternalSNI UpstreamConfig Destination "
        "MaxInboundConnections LocalConnectTimeoutMs LocalRequestTimeoutMs "
        "BalanceInboundConnections RateLimits"
    ),
    "proxy-defaults": _names(
        f"{_ENTRY} {_PROXY_COMMON} Config Protocol AccessLogs FailoverPolicy "
        "PrioritizeByLocality"
    ),
    "service-resolver": _names(
        f"{_ENTRY} DefaultSubset Subsets Redirect Failover ConnectTimeout "
        "RequestTimeout PrioritizeByLocality LoadBalancer"
    ),
    "service-router": _names(f"{_ENTRY} Routes"),
    "service-splitter": _names(f"{_ENTRY} Splits"),
    "terminating-gateway": _names(f"{_ENTRY} Services"),
    "exported-services": _names(f"{_ENTRY} Services"),
}
