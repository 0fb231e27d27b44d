"""JSON shapes of Consul's API objects, with Consul's field names and order."""

import base64

from devconsul.durations import format_duration
from devconsul.store import Check, KVEntry, Node, Service, Session, Store


def _sorted(mapping: dict) -> dict:
    return dict(sorted(mapping.items()))


def keyed(rows: list[dict], key: str) -> dict[str, dict]:
    """Rows by their ID, in the order Go's encoding/json writes a map's keys
    (sorted bytewise: "Web" before "api"); the store orders IDs lowercased."""
    return {r[key]: r for r in sorted(rows, key=lambda r: r[key])}


def _service_head(service: Service) -> dict:
    """Kind (only when set), ID, Service, Tags: how both service shapes start."""
    head = {"Kind": service.kind} if service.kind else {}
    head.update(ID=service.id, Service=service.name, Tags=service.tag_list)
    return head


def _tagged(service: Service, key: str = "TaggedAddresses") -> dict:
    """The service's tagged addresses under `key`; nothing when it has none."""
    if not service.tagged_addresses:
        return {}
    return {key: _sorted(service.tagged_addresses)}


def _proxy(service: Service) -> dict:
    return service.proxy or {"MeshGateway": {}, "Expose": {}}


def agent_service(service: Service, datacenter: str) -> dict:
    """api.AgentService, in its field order."""
    data = _service_head(service)
    data.update(
        Meta=_sorted(service.meta),
        Port=service.port,
        Address=service.address,
        **_tagged(service),
        Weights=dict(service.weights),
        EnableTagOverride=service.enable_tag_override,
    )
    if service.proxy:
        data["Proxy"] = service.proxy
    if service.connect:
        data["Connect"] = service.connect
    data["Datacenter"] = datacenter
    return data


def node_service(service: Service) -> dict:
    """structs.NodeService, in its field order."""
    data = _service_head(service)
    data.update(
        Address=service.address,
        **_tagged(service),
        Meta=_sorted(service.meta),
        Port=service.port,
        Weights=dict(service.weights),
        EnableTagOverride=service.enable_tag_override,
        Proxy=_proxy(service),
        Connect=service.connect or {},
        CreateIndex=service.create_index,
        ModifyIndex=service.modify_index,
    )
    return data


def node_head(n: Node) -> dict:
    """The fields every node shape starts with (Node, ServiceNode, NodeInfo)."""
    return {
        "ID": n.id,
        "Node": n.name,
        "Address": n.address,
        "Datacenter": n.datacenter,
        "TaggedAddresses": _sorted(n.tagged_addresses),
    }


def node(n: Node) -> dict:
    return {
        **node_head(n),
        "Meta": _sorted(n.meta),
        "CreateIndex": n.create_index,
        "ModifyIndex": n.modify_index,
    }


def service_node(n: Node, service: Service) -> dict:
    return {
        **node_head(n),
        "NodeMeta": _sorted(n.meta),
        "ServiceKind": service.kind,
        "ServiceID": service.id,
        "ServiceName": service.name,
        "ServiceTags": service.tag_list,
        "ServiceAddress": service.address,
        **_tagged(service, "ServiceTaggedAddresses"),
        "ServiceWeights": dict(service.weights),
        "ServiceMeta": _sorted(service.meta),
        "ServicePort": service.port,
        "ServiceEnableTagOverride": service.enable_tag_override,
        "ServiceProxy": _proxy(service),
        "ServiceConnect": service.connect or {},
        "CreateIndex": service.create_index,
        "ModifyIndex": service.modify_index,
    }


def _check_head(check: Check) -> dict:
    """The fields both check shapes start with, up to ServiceName."""
    return {
        "Node": check.node,
        "CheckID": check.id,
        "Name": check.name,
        "Status": check.status,
        "Notes": check.notes,
        "Output": check.output,
        "ServiceID": check.service_id,
        "ServiceName": check.service_name,
    }


def health_check(check: Check, store: Store, indexes: bool = True) -> dict:
    """structs.HealthCheck, as the catalog, health and agent/checks answer it."""
    service = store.service(check.node, check.service_id)
    definition = check.definition
    return {
        **_check_head(check),
        "ServiceTags": service.tag_list if service and check.service_id else [],
        "Type": check.type,
        "Interval": _duration_or_empty(definition.interval if definition else 0),
        "Timeout": _duration_or_empty(definition.timeout if definition else 0),
        "ExposedPort": 0,
        "Definition": check_definition(check),
        "CreateIndex": check.create_index if indexes else 0,
        "ModifyIndex": check.modify_index if indexes else 0,
    }


# A zero api.HealthCheckDefinition as Consul 1.17's MarshalJSON writes it:
# the durations first, as "0s", then the other fields empty.
_ZERO_API_DEFINITION = {
    "Interval": "0s",
    "Timeout": "0s",
    "DeregisterCriticalServiceAfter": "0s",
    "HTTP": "",
    "Header": None,
    "Method": "",
    "Body": "",
    "TLSServerName": "",
    "TLSSkipVerify": False,
    "TCP": "",
    "TCPUseTLS": False,
    "UDP": "",
    "GRPC": "",
    "OSService": "",
    "GRPCUseTLS": False,
}


def agent_health_check(check: Check, service: Service) -> dict:
    """api.HealthCheck as agentHealthService (agent/agent_endpoint.go) builds
    it from the agent's local state for /v1/agent/health/service/*: names,
    status, texts and the service's tags as registered: null for a node check
    or a service registered without Tags, which every other answer turns into
    []. Type, ExposedPort, Definition and the raft indexes stay zero."""
    tags = service.tags if check.service_id else None
    return {
        **_check_head(check),
        "ServiceTags": None if tags is None else list(tags),
        "Type": "",
        "ExposedPort": 0,
        "Definition": dict(_ZERO_API_DEFINITION),
        "CreateIndex": 0,
        "ModifyIndex": 0,
    }


def _duration_or_empty(ns: int) -> str:
    return format_duration(ns) if ns else ""


def check_definition(check: Check) -> dict:
    d = check.definition
    if d is None or d.kind not in ("http", "tcp", "ttl", "script"):
        return {}
    data = {
        "HTTP": d.http,
        "Method": d.method,
        "Body": d.body,
        "TLSServerName": d.tls_server_name,
        "TLSSkipVerify": d.tls_skip_verify,
        "TCP": d.tcp,
        "Interval": format_duration(d.interval),
        "Timeout": format_duration(d.timeout),
        "DeregisterCriticalServiceAfter": format_duration(d.deregister_after),
    }
    if d.header:
        data = {"HTTP": d.http, "Header": _sorted(d.header), **data}
    if d.args:
        data["ScriptArgs"] = list(d.args)
    return data


def kv_entry(entry: KVEntry) -> dict:
    data = {
        "LockIndex": entry.lock_index,
        "Key": entry.key,
        "Flags": entry.flags,
        "Value": base64.b64encode(entry.value).decode() if entry.value else None,
    }
    if entry.session:
        data["Session"] = entry.session
    data.update(CreateIndex=entry.create_index, ModifyIndex=entry.modify_index)
    return data


def session(s: Session) -> dict:
    """structs.Session: LockDelay in nanoseconds, TTL as sent, the deprecated
    Checks only when non-empty (``omitempty``)."""
    data = {
        "ID": s.id,
        "Name": s.name,
        "Node": s.node,
        "LockDelay": s.lock_delay,
        "Behavior": s.behavior,
        "TTL": s.ttl,
        "NodeChecks": list(s.node_checks) if s.node_checks is not None else None,
        "ServiceChecks": (
            [dict(c) for c in s.service_checks]
            if s.service_checks is not None
            else None
        ),
    }
    if s.checks:
        data["Checks"] = list(s.checks)
    data.update(CreateIndex=s.create_index, ModifyIndex=s.modify_index)
    return data


def aggregate_status(checks: list[dict]) -> str:
    """Agent/UI aggregation: maintenance > critical > warning > passing."""
    statuses = {c["Status"] for c in checks}
    if any(is_maintenance(c["CheckID"]) for c in checks):
        return "maintenance"
    for status in ("critical", "warning"):
        if status in statuses:
            return status
    return "passing"


def is_maintenance(check_id: str) -> bool:
    return check_id == "_node_maintenance" or check_id.startswith(
        "_service_maintenance:"
    )
