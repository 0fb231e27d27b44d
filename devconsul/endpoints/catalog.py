"""/v1/catalog/*: the cluster view (here: this node plus anything catalog-registered)."""

import uuid
from collections.abc import Callable
from dataclasses import replace

from devconsul import render, schemas
from devconsul.decode import Fields, enterprise_field
from devconsul.definitions import parse_check, service_fields
from devconsul.errors import HTTPError
from devconsul.filter import (
    NODE_SELECTORS,
    NODE_SERVICE_SELECTORS,
    SERVICE_NODE_SELECTORS,
)
from devconsul.filtering import apply_filter, filtered_read, request_filter
from devconsul.messages import Request, Response, json_response
from devconsul.queries import blocking_read, names_peer, require_local
from devconsul.routing import GET, PUT, Route, path_arg
from devconsul.store import CHECKS, NODES, SERVICES, Check, Node, Service, named


def node_meta_matches(req: Request, node: Node) -> bool:
    """?node-meta=key:value (repeatable): every pair must match."""
    for pair in req.params("node-meta"):
        key, _, value = pair.partition(":")
        if node.meta.get(key) != value:
            return False
    return True


def has_tags(service: Service, wanted: set[str]) -> bool:
    """Every ?tag (`wanted`, lowercased), compared lowercased as Consul's
    serviceTagFilter does."""
    return wanted <= {tag.lower() for tag in service.tag_list}


def serves_connect(service: Service, is_name: Callable[[str], bool]) -> bool:
    """Whether `service` takes Connect (mTLS) traffic for the name `is_name`
    tests for: a connect-proxy whose Proxy.DestinationServiceName is that
    name, or the service itself when Connect-native
    (agent/consul/state/catalog.go, connectServiceNodes: the connect index
    holds exactly these two)."""
    if service.kind == "connect-proxy":
        proxy = Fields(service.proxy, "ConnectProxyConfig")
        destination = proxy.raw("DestinationServiceName")
        return isinstance(destination, str) and is_name(destination)
    native = Fields(service.connect, "ServiceConnect").raw("Native")
    return is_name(service.name) and native is True


def instances(
    app, req: Request, name: str, connect: bool = False
) -> list[tuple[Node, Service]]:
    """Instances of `name` (or, with `connect`, its Connect-capable instances)
    matching ?tag, ?node-meta and ?peer, ordered like Consul."""
    if names_peer(req):
        return []
    store = app.store
    is_name = named(name)
    # The ?tag values are lowercased once, not again for every instance.
    tags = {tag.lower() for tag in req.params("tag")}
    rows = []
    for (node_name, _), svc in sorted(store.services.items()):
        node = store.node_named(node_name)
        wanted = serves_connect(svc, is_name) if connect else is_name(svc.name)
        if not wanted or node is None:
            continue
        if has_tags(svc, tags) and node_meta_matches(req, node):
            rows.append((node, svc))
    return rows


def datacenters(app, req: Request) -> Response:
    return json_response(req, [app.config.datacenter])


def services(app, req: Request) -> Response:
    predicate = request_filter(req, SERVICE_NODE_SELECTORS)
    store = app.store

    def build():
        if names_peer(req):
            return {}
        nodes = [
            render.service_node(node, s)
            for (n, _), s in sorted(store.services.items())
            if (node := store.node_named(n)) and node_meta_matches(req, node)
        ]
        result: dict[str, list[str]] = {}
        for row in apply_filter(predicate, nodes):
            tags = result.setdefault(row["ServiceName"], [])
            tags.extend(t for t in row["ServiceTags"] if t not in tags)
        return dict(sorted(result.items()))

    return blocking_read(app, req, lambda: store.table_index[SERVICES], build)


def _service_nodes(app, req: Request, index_fn, connect: bool) -> Response:
    """/v1/catalog/service/:name or its Connect variant, as service-node rows."""
    name = path_arg(req, "Missing service name")
    return filtered_read(
        app,
        req,
        SERVICE_NODE_SELECTORS,
        index_fn,
        lambda: [
            render.service_node(n, s)
            for n, s in instances(app, req, name, connect=connect)
        ],
    )


def service(app, req: Request) -> Response:
    store = app.store
    return _service_nodes(app, req, lambda: store.service_index(req.arg), connect=False)


def connect_index(store) -> int:
    """Index of a Connect query: proxies carry names of their own, so any
    service or check write may change the answer (a coarse index only wakes
    a watcher for nothing now and then)."""
    return max(store.table_index[SERVICES], store.table_index[CHECKS])


def connect(app, req: Request) -> Response:
    """GET /v1/catalog/connect/:service (``merge-central-config`` is accepted;
    config entries are not merged in, see the package's differences)."""
    return _service_nodes(app, req, lambda: connect_index(app.store), connect=True)


def nodes(app, req: Request) -> Response:
    store = app.store
    return filtered_read(
        app,
        req,
        NODE_SELECTORS,
        lambda: store.table_index[NODES],
        lambda: [
            render.node(n)
            for _, n in sorted(store.nodes.items())
            if node_meta_matches(req, n) and not names_peer(req)
        ],
    )


def _node_read(app, req: Request, shape) -> Response:
    """A node and its services, ?filter applying to the services
    (structs.NodeService selectors); `shape(node, services)` makes the
    answer, both None for an unknown node."""
    name = path_arg(req, "Missing node name")
    predicate = request_filter(req, NODE_SERVICE_SELECTORS)
    store = app.store

    def build():
        found = store.node_named(name)
        if found is None or names_peer(req):
            return shape(None, None)
        rows = [render.node_service(s) for s in store.node_services(found.name)]
        return shape(render.node(found), apply_filter(predicate, rows))

    return blocking_read(
        app,
        req,
        lambda: max(store.table_index[NODES], store.table_index[SERVICES]),
        build,
    )


def node(app, req: Request) -> Response:
    """/v1/catalog/node/:node: services keyed by ID; an unknown node is null."""

    def shape(found, rows):
        if found is None:
            return None
        return {"Node": found, "Services": render.keyed(rows, "ID")}

    return _node_read(app, req, shape)


def node_services(app, req: Request) -> Response:
    """/v1/catalog/node-services/:node: the services as a list. For an unknown
    node Catalog.NodeServiceList leaves its reply empty, so both fields are
    null (agent/consul/catalog_endpoint.go); ``merge-central-config`` is
    accepted, without merging."""
    return _node_read(app, req, lambda found, rows: {"Node": found, "Services": rows})


# -- writes ---------------------------------------------------------------------


def _decode(req: Request, struct: str, known: frozenset[str]) -> Fields:
    """The body as `struct`, with the Enterprise rewording catalog writes use."""
    try:
        return Fields(req.json(), struct, known)
    except HTTPError as exc:
        raise enterprise_field(exc) from None


def register(app, req: Request) -> Response:
    """Stores entries verbatim (no check execution), like Consul's catalog.
    The whole body is decoded before anything is written, as in Consul."""
    body = _decode(req, "RegisterRequest", schemas.REGISTER_REQUEST)
    service = _catalog_service(body.raw("Service"))
    listed = [body.raw("Check")] if body.has("Check") else []
    listed += body.raw("Checks") or []
    checks = [_decode_check(raw) for raw in listed]
    _body_datacenter(app, body)
    node_name, address = body.str("Node"), body.str("Address")
    if not node_name:
        raise HTTPError(400, "Must provide node")
    if not address:
        raise HTTPError(400, "Must provide address")
    store = app.store
    with store.write():
        existing = store.node_named(node_name)
        node_name = store.node_spelling(node_name)
        if not (existing and body.bool("SkipNodeUpdate")):
            store.put_node(
                Node(
                    id=body.str("ID")
                    or (existing.id if existing else str(uuid.uuid4())),
                    name=node_name,
                    address=address,
                    datacenter=app.config.datacenter,
                    tagged_addresses=body.str_map("TaggedAddresses"),
                    meta=body.str_map("NodeMeta"),
                )
            )
        if service:
            store.put_service(replace(service, node=node_name))
        for check in checks:
            store.put_check(_owned_check(node_name, check, store))
    return json_response(req, True)


def _body_datacenter(app, body: Fields) -> None:
    """Catalog writes go where the body's Datacenter says; Consul reads no ?dc
    here (agent/catalog_endpoint.go: CatalogRegister/CatalogDeregister)."""
    require_local(body.str("Datacenter"), app.config.datacenter)


def _catalog_service(raw) -> Service | None:
    if raw is None:
        return None
    f = Fields(raw, "NodeService", schemas.NODE_SERVICE)
    name = f.str("Service")
    if not name:
        raise HTTPError(400, "Must provide service name")
    return Service(
        node="",
        id=f.str("ID") or name,
        name=name,
        local=False,
        **service_fields(f),
    )


def _decode_check(raw) -> Check:
    f = Fields(raw, "HealthCheck", schemas.HEALTH_CHECK)
    check_id = f.str("CheckID") or f.str("Name")
    if not check_id:
        raise HTTPError(400, "Missing check ID")
    definition = None
    if f.has("Definition"):
        definition = parse_check(f.raw("Definition"), "HealthCheckDefinition")
    return Check(
        node="",
        id=check_id,
        name=f.str("Name") or check_id,
        status=f.str("Status") or "critical",
        notes=f.str("Notes"),
        output=f.str("Output"),
        service_id=f.str("ServiceID"),
        definition=definition,
        local=False,
    )


def _owned_check(node_name: str, check: Check, store) -> Check:
    """The check on its node, named after the service it belongs to."""
    owner = store.service(node_name, check.service_id)
    if check.service_id and owner is None:
        raise HTTPError(500, f"Unknown service '{check.service_id}' for check")
    return replace(check, node=node_name, service_name=owner.name if owner else "")


def deregister(app, req: Request) -> Response:
    body = _decode(req, "DeregisterRequest", schemas.DEREGISTER_REQUEST)
    _body_datacenter(app, body)
    node_name = body.str("Node")
    if not node_name:
        raise HTTPError(400, "Must provide node")
    agent, store = app.agent, app.store
    node_name = store.node_spelling(node_name)
    service_id, check_id = body.str("ServiceID"), body.str("CheckID")
    local = node_name == agent.node
    # IDs in any case, as Consul's lowercased services and checks indexes.
    if service_id:
        service = store.service(node_name, service_id)
        if local and service and service.local:
            agent.deregister_service(service.id)
        else:
            store.delete_service(node_name, service_id)
    elif check_id:
        check = store.check(node_name, check_id)
        if local and check and check.local:
            agent.remove_check(check.id)
        else:
            store.delete_check(node_name, check_id)
    elif local:
        # The agent's own node stays (Consul's anti-entropy would re-create it
        # within a minute); what it registered goes.
        with store.write():
            for svc in agent.local_services():
                agent.deregister_service(svc.id)
            for check in agent.local_checks():
                agent.remove_check(check.id)
    else:
        store.delete_node(node_name)
    return json_response(req, True)


ROUTES = [
    Route("/v1/catalog/datacenters", GET, datacenters),
    Route("/v1/catalog/services", GET, services),
    Route("/v1/catalog/service/", GET, service, prefix=True),
    Route("/v1/catalog/connect/", GET, connect, prefix=True),
    Route("/v1/catalog/nodes", GET, nodes),
    Route("/v1/catalog/node/", GET, node, prefix=True),
    Route("/v1/catalog/node-services/", GET, node_services, prefix=True),
    Route("/v1/catalog/register", PUT, register),
    Route("/v1/catalog/deregister", PUT, deregister),
]
