"""/v1/health/*: instances with their checks, checks by service, state and node."""

from collections import defaultdict
from collections.abc import Callable

from devconsul import render
from devconsul.decode import parse_bool
from devconsul.endpoints.catalog import connect_index, instances
from devconsul.errors import HTTPError
from devconsul.filter import HEALTH_CHECK_SELECTORS, SERVICE_ENTRY_SELECTORS
from devconsul.filtering import filtered_read
from devconsul.messages import Request, Response
from devconsul.queries import names_peer
from devconsul.routing import GET, Route, path_arg
from devconsul.store import CHECKS, Check, named


def _passing_only(req: Request) -> bool:
    if not req.has("passing"):
        return False
    raw = req.param("passing")
    if raw == "":
        return True
    try:
        return parse_bool(raw)
    except ValueError:
        raise HTTPError(400, "Invalid value for ?passing") from None


def checks_by_owner(store) -> dict[tuple[str, str], list]:
    """Checks grouped by (node, lowercased service ID: a check's ServiceID
    finds its service in any case), node checks under (node, ""), by ID."""
    owners = defaultdict(list)
    for (node, _), check in sorted(store.checks.items()):
        owners[(node, check.service_id.lower())].append(check)
    return owners


def instance_checks(store, owners, node: str, service_id: str) -> list[dict]:
    """Node-level checks first, then the instance's own."""
    checks = owners.get((node, ""), []) + owners.get((node, service_id.lower()), [])
    return [render.health_check(c, store) for c in checks]


def service_entries(app, req: Request, name: str, connect: bool = False) -> list[dict]:
    store = app.store
    owners = checks_by_owner(store)
    return [
        {
            "Node": render.node(node),
            "Service": render.node_service(svc),
            "Checks": instance_checks(store, owners, node.name, svc.id),
        }
        for node, svc in instances(app, req, name, connect)
    ]


def _entries_read(app, req: Request, connect: bool, index_fn) -> Response:
    name = path_arg(req, "Missing service name")
    passing = _passing_only(req)

    def rows():
        entries = service_entries(app, req, name, connect)
        if not passing:
            return entries
        # Every check, node checks included, must pass: warning is not passing.
        return [
            e for e in entries if all(c["Status"] == "passing" for c in e["Checks"])
        ]

    return filtered_read(app, req, SERVICE_ENTRY_SELECTORS, index_fn, rows)


def service(app, req: Request) -> Response:
    return _entries_read(app, req, False, lambda: app.store.service_index(req.arg))


def connect(app, req: Request) -> Response:
    """GET /v1/health/connect/:service: the Connect-capable instances with
    their checks (healthServiceNodes with args.Connect in agent/health_endpoint.go)."""
    return _entries_read(app, req, True, lambda: connect_index(app.store))


def _checks_read(
    app, req: Request, keep: Callable[[Check], bool], index_fn: Callable[[], int]
) -> Response:
    """The checks `keep` selects, as HealthCheck JSON in (node, ID) order."""
    store = app.store

    def rows():
        if names_peer(req):
            return []
        return [
            render.health_check(c, store)
            for _, c in sorted(store.checks.items())
            if keep(c)
        ]

    return filtered_read(app, req, HEALTH_CHECK_SELECTORS, index_fn, rows)


def service_checks(app, req: Request) -> Response:
    name = path_arg(req, "Missing service name")
    is_name = named(name)
    return _checks_read(
        app,
        req,
        lambda c: bool(c.service_id) and is_name(c.service_name),
        lambda: app.store.service_index(name),
    )


def state(app, req: Request) -> Response:
    wanted = path_arg(req, "Missing check state")
    is_state = named(wanted)

    # Only "any" exactly means every check (state.checksInStateTxn); any other
    # state goes through the lowercased status index, so "ANY" finds nothing.
    def keep(check: Check) -> bool:
        return wanted == "any" or is_state(check.status)

    return _checks_read(app, req, keep, lambda: app.store.table_index[CHECKS])


def node(app, req: Request) -> Response:
    on_node = named(path_arg(req, "Missing node name"))
    return _checks_read(
        app,
        req,
        lambda c: on_node(c.node),
        lambda: app.store.table_index[CHECKS],
    )


ROUTES = [
    Route("/v1/health/service/", GET, service, prefix=True),
    Route("/v1/health/connect/", GET, connect, prefix=True),
    Route("/v1/health/checks/", GET, service_checks, prefix=True),
    Route("/v1/health/state/", GET, state, prefix=True),
    Route("/v1/health/node/", GET, node, prefix=True),
]
