"""/v1/internal/*: the summaries Consul's web UI reads (section 11 of the reference)."""

from devconsul import render
from devconsul.endpoints.health import checks_by_owner, instance_checks
from devconsul.messages import Request, Response, json_response
from devconsul.queries import blocking_read
from devconsul.routing import GET, POST, Route
from devconsul.store import CHECKS, NODES, SERVICES

_COUNTS = {
    "passing": "ChecksPassing",
    "warning": "ChecksWarning",
    "critical": "ChecksCritical",
}


def _catalog_index(store) -> int:
    return max(store.table_index[t] for t in (NODES, SERVICES, CHECKS))


def _summary(name: str, datacenter: str) -> dict:
    return {
        "Name": name,
        "Datacenter": datacenter,
        "Tags": [],
        "Nodes": [],
        "InstanceCount": 0,
        "ChecksPassing": 0,
        "ChecksWarning": 0,
        "ChecksCritical": 0,
        "ExternalSources": [],
        "GatewayConfig": {},
        "TransparentProxy": False,
        "ConnectNative": False,
        "ConnectedWithProxy": False,
        "ConnectedWithGateway": False,
    }


def ui_services(app, req: Request) -> Response:
    store = app.store

    def build():
        summaries: dict[str, dict] = {}
        owners = checks_by_owner(store)
        for (node_name, _), svc in sorted(store.services.items()):
            summary = summaries.setdefault(
                svc.name, _summary(svc.name, app.config.datacenter)
            )
            summary["InstanceCount"] += 1
            summary["Tags"].extend(t for t in svc.tag_list if t not in summary["Tags"])
            if node_name not in summary["Nodes"]:
                summary["Nodes"].append(node_name)
            # Like Consul, node checks count once per instance.
            for check in instance_checks(store, owners, node_name, svc.id):
                counter = _COUNTS.get(check["Status"])
                if counter:
                    summary[counter] += 1
        return [summaries[name] for name in sorted(summaries)]

    return blocking_read(app, req, lambda: _catalog_index(store), build)


def _node_info(store, node) -> dict:
    return {
        **render.node_head(node),
        "Meta": dict(sorted(node.meta.items())),
        "Services": [render.node_service(s) for s in store.node_services(node.name)],
        "Checks": [render.health_check(c, store) for c in store.node_checks(node.name)],
    }


def ui_nodes(app, req: Request) -> Response:
    store = app.store

    def build():
        return [_node_info(store, n) for _, n in sorted(store.nodes.items())]

    return blocking_read(app, req, lambda: _catalog_index(store), build)


def ui_node(app, req: Request) -> Response:
    store = app.store

    def build():
        found = store.node_named(req.arg)
        return _node_info(store, found) if found else None

    return blocking_read(app, req, lambda: _catalog_index(store), build)


def acl_authorize(app, req: Request) -> Response:
    """Everything is allowed (ACLs off, or the caller passed the one token)."""
    requests = req.json()
    if not isinstance(requests, list):
        requests = []
    return json_response(
        req, [{**r, "Allow": True} for r in requests if isinstance(r, dict)]
    )


ROUTES = [
    Route("/v1/internal/ui/services", GET, ui_services),
    Route("/v1/internal/ui/nodes", GET, ui_nodes),
    Route("/v1/internal/ui/node/", GET, ui_node, prefix=True),
    Route("/v1/internal/acl/authorize", POST, acl_authorize),
]
