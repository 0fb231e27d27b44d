"""/v1/health/*: instances with their checks, checks by service, state and node."""

from collections import defaultdict

from devconsul import render
from devconsul.decode import parse_bool
from devconsul.endpoints.catalog import instances
from devconsul.errors import HTTPError
from devconsul.filter import HEALTH_CHECK_SELECTORS, SERVICE_ENTRY_SELECTORS
from devconsul.filtering import apply_filter, request_filter
from devconsul.messages import Request, Response
from devconsul.queries import blocking_read
from devconsul.routing import GET, Route
from devconsul.store import CHECKS

STATES = ("passing", "warning", "critical")


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
    """Checks grouped by (node, service ID), node checks under (node, ""), by ID."""
    owners = defaultdict(list)
    for (node, _), check in sorted(store.checks.items()):
        owners[(node, check.service_id)].append(check)
    return owners


def instance_checks(store, owners, node: str, service_id: str) -> list[dict]:
    """Node-level checks first, then the instance's own."""
    checks = owners.get((node, ""), []) + owners.get((node, service_id), [])
    return [render.health_check(c, store) for c in checks]


def service_entries(app, req: Request, name: str) -> list[dict]:
    store = app.store
    owners = checks_by_owner(store)
    return [
        {
            "Node": render.node(node),
            "Service": render.node_service(svc),
            "Checks": instance_checks(store, owners, node.name, svc.id),
        }
        for node, svc in instances(app, req, name)
    ]


def service(app, req: Request) -> Response:
    passing = _passing_only(req)
    predicate = request_filter(req, SERVICE_ENTRY_SELECTORS)
    name = req.arg

    def build():
        rows = service_entries(app, req, name)
        if passing:
            # Every check, node checks included, must pass: warning is not passing.
            rows = [
                r for r in rows if all(c["Status"] == "passing" for c in r["Checks"])
            ]
        return apply_filter(predicate, rows)

    return blocking_read(
        app, req, lambda: app.store.service_name_index.get(name, 0), build
    )


def service_checks(app, req: Request) -> Response:
    predicate = request_filter(req, HEALTH_CHECK_SELECTORS)
    store = app.store

    def build():
        rows = [
            render.health_check(c, store)
            for _, c in sorted(store.checks.items())
            if c.service_id and c.service_name == req.arg
        ]
        return apply_filter(predicate, rows)

    return blocking_read(
        app, req, lambda: store.service_name_index.get(req.arg, 0), build
    )


def state(app, req: Request) -> Response:
    predicate = request_filter(req, HEALTH_CHECK_SELECTORS)
    store = app.store
    wanted = STATES if req.arg == "any" else (req.arg,)

    def build():
        rows = [
            render.health_check(c, store)
            for _, c in sorted(store.checks.items())
            if c.status in wanted
        ]
        return apply_filter(predicate, rows)

    return blocking_read(app, req, lambda: store.table_index[CHECKS], build)


def node(app, req: Request) -> Response:
    predicate = request_filter(req, HEALTH_CHECK_SELECTORS)
    store = app.store

    def build():
        rows = [
            render.health_check(c, store)
            for (n, _), c in sorted(store.checks.items())
            if n == req.arg
        ]
        return apply_filter(predicate, rows)

    return blocking_read(app, req, lambda: store.table_index[CHECKS], build)


ROUTES = [
    Route("/v1/health/service/", GET, service, prefix=True),
    Route("/v1/health/checks/", GET, service_checks, prefix=True),
    Route("/v1/health/state/", GET, state, prefix=True),
    Route("/v1/health/node/", GET, node, prefix=True),
]
