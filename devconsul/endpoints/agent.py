"""/v1/agent/*: the local agent's services, checks, maintenance and self info."""

import hashlib
import json
from collections import defaultdict

from devconsul import render, schemas, selfinfo
from devconsul.decode import Fields, parse_bool
from devconsul.definitions import (
    STATUSES,
    parse_check,
    parse_service,
    reject_unsupported,
    validate_service,
)
from devconsul.errors import HTTPError
from devconsul.filter import AGENT_SERVICE_SELECTORS, HEALTH_CHECK_SELECTORS
from devconsul.filtering import apply_filter, request_filter
from devconsul.messages import (
    Request,
    Response,
    empty_response,
    json_response,
)
from devconsul.queries import parse_blocking
from devconsul.routing import GET, PUT, Route, path_arg

# -- services -------------------------------------------------------------------


def services(app, req: Request) -> Response:
    predicate = request_filter(req, AGENT_SERVICE_SELECTORS)
    with app.store.lock:
        rows = [
            render.agent_service(s, app.config.datacenter)
            for s in app.agent.local_services()
        ]
    return json_response(req, render.keyed(apply_filter(predicate, rows), "ID"))


def _content_hash(data: dict) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


def service(app, req: Request) -> Response:
    """GET /v1/agent/service/:id with hash-based blocking (?hash=&wait=)."""

    def current():
        found = app.agent.local_service(req.arg)
        return render.agent_service(found, app.config.datacenter) if found else None

    seen = req.param("hash")
    if seen:
        _, timeout = parse_blocking(req)
        app.store.wait_until(lambda: _hash_or_none(current()) != seen, timeout)
    with app.store.lock:
        data = current()
    if data is None:
        raise HTTPError(404, f"unknown service ID: {req.arg}")
    digest = _content_hash(data)
    data["ContentHash"] = digest
    return json_response(req, data, headers={"X-Consul-ContentHash": digest})


def _hash_or_none(data: dict | None) -> str | None:
    return _content_hash(data) if data else None


def register_service(app, req: Request) -> Response:
    definition = parse_service(req.json())
    validate_service(definition, app.config.enable_script_checks)
    # Consul enables it only for an empty value or exactly "true".
    replace = req.has("replace-existing-checks") and req.param(
        "replace-existing-checks"
    ) in ("", "true")
    app.agent.register_service(definition, replace)
    return empty_response()


def deregister_service(app, req: Request) -> Response:
    if app.agent.local_service(req.arg) is None:
        raise HTTPError(
            404,
            f'Unknown service ID "{req.arg}". Ensure that the service ID is passed, '
            "not the service name.",
        )
    app.agent.deregister_service(req.arg)
    return empty_response()


def _enable_flag(req: Request) -> bool:
    if not req.has("enable"):
        raise HTTPError(400, "Missing value for enable")
    raw = req.param("enable")
    try:
        return parse_bool(raw)
    except ValueError:
        raise HTTPError(400, f'Invalid value for enable: "{raw}"') from None


def service_maintenance(app, req: Request) -> Response:
    path_arg(req, "Missing service ID")
    enable = _enable_flag(req)
    app.agent.set_service_maintenance(req.arg, enable, req.param("reason", ""))
    return empty_response()


def node_maintenance(app, req: Request) -> Response:
    app.agent.set_node_maintenance(_enable_flag(req), req.param("reason", ""))
    return empty_response()


# -- checks ---------------------------------------------------------------------


def checks(app, req: Request) -> Response:
    predicate = request_filter(req, HEALTH_CHECK_SELECTORS)
    store = app.store
    with store.lock:
        rows = [
            render.health_check(c, store, indexes=False)
            for c in app.agent.local_checks()
        ]
    return json_response(req, render.keyed(apply_filter(predicate, rows), "CheckID"))


def register_check(app, req: Request) -> Response:
    definition = parse_check(req.json())
    if not definition.name:
        raise HTTPError(400, "Missing check name")
    if definition.status and definition.status not in STATUSES:
        raise HTTPError(400, "Bad check status")
    reason = definition.validation_error()
    if reason:
        raise HTTPError(400, f"Invalid check: {reason}")
    reject_unsupported(definition, app.config.enable_script_checks)
    app.agent.register_check(definition)
    return empty_response()


def _unknown_check(check_id: str) -> HTTPError:
    return HTTPError(
        404,
        f'Unknown check ID "{check_id}". Ensure that the check ID is passed, not '
        "the check name.",
    )


def deregister_check(app, req: Request) -> Response:
    if app.agent.local_check(req.arg) is None:
        raise _unknown_check(req.arg)
    app.agent.remove_check(req.arg)
    return empty_response()


def _ttl_setter(status: str):
    def handler(app, req: Request) -> Response:
        app.agent.update_ttl(req.arg, status, req.param("note", ""))
        return empty_response()

    return handler


def update_check(app, req: Request) -> Response:
    body = Fields(req.json(), "checkUpdate", schemas.CHECK_UPDATE)
    status = body.str("Status")
    if status not in STATUSES:
        raise HTTPError(400, f"Invalid check status: '{status}'")
    app.agent.update_ttl(req.arg, status, body.str("Output"))
    return empty_response()


# -- local health -----------------------------------------------------------------

_STATUS_CODES = {"passing": 200, "warning": 429, "critical": 503, "maintenance": 503}


def _checks_by_service(app) -> dict[str, list]:
    """The agent's own checks by ServiceID ("" for node checks), each list in
    ID order: made once per request, however many instances it answers for.
    serfHealth lives in the catalog only."""
    owners = defaultdict(list)
    for check in sorted(app.agent.local_checks(), key=lambda c: c.id):
        owners[check.service_id].append(check)
    return owners


def _local_health(app, service, owners: dict[str, list]) -> dict:
    """State.ChecksForService(id, true): the node's checks, then the service's."""
    checks = owners.get("", []) + owners.get(service.id, [])
    rows = [render.agent_health_check(c, service) for c in checks]
    return {
        "AggregatedStatus": render.aggregate_status(rows),
        "Service": render.agent_service(service, app.config.datacenter),
        "Checks": rows,
    }


def _health_answer(req: Request, code: int, reason: str, data) -> Response:
    """Consul's CodeWithPayloadError: the status code with the reason in
    X-Consul-Reason, and the body as JSON or, when asked for text, the
    reason alone as "text/plain" (no charset)."""
    headers = {"X-Consul-Reason": reason}
    accept = req.headers.get("Accept") or ""
    if accept.startswith("text/plain") or req.param("format") == "text":
        return Response(code, reason.encode(), "text/plain", headers)
    return json_response(req, data, code, headers)


def health_by_id(app, req: Request) -> Response:
    service_id = path_arg(req, "Missing serviceID")
    with app.store.lock:
        found = app.agent.local_service(service_id)
        data = _local_health(app, found, _checks_by_service(app)) if found else None
    if data is None:
        missing = {"AggregatedStatus": "critical", "Service": None, "Checks": None}
        return _health_answer(req, 404, f"ServiceId {service_id} not found", missing)
    status = data["AggregatedStatus"]
    return _health_answer(req, _STATUS_CODES[status], status, data)


def health_by_name(app, req: Request) -> Response:
    name = path_arg(req, "Missing service Name")
    with app.store.lock:
        owners = _checks_by_service(app)
        rows = [
            _local_health(app, s, owners)
            for s in app.agent.local_services()
            if s.name == name
        ]
    if not rows:
        return _health_answer(req, 404, f"ServiceName {name} Not Found", [])
    # The worst instance decides: passing 200 < warning 429 < critical 503.
    worst = max((r["AggregatedStatus"] for r in rows), key=_STATUS_CODES.get)
    return _health_answer(req, _STATUS_CODES[worst], worst, rows)


# -- self and members -----------------------------------------------------------


def members(app, req: Request) -> Response:
    member = selfinfo.member(app.config, app.agent.node_id)
    # Any non-empty ?wan= asks for the WAN pool, where a server is "<node>.<dc>".
    if req.param("wan"):
        member.update(Name=f"{member['Name']}.{app.config.datacenter}", Port=8302)
    return json_response(req, [member])


def self_info(app, req: Request) -> Response:
    cfg = app.config
    return json_response(
        req,
        {
            "Config": selfinfo.config_section(cfg, app.agent.node_id),
            "DebugConfig": {
                "DevMode": True,
                "ClientAddrs": [cfg.client_addr],
                "EnableLocalScriptChecks": cfg.enable_local_script_checks,
                "EnableRemoteScriptChecks": cfg.enable_script_checks,
            },
            "Coord": selfinfo.coordinate(),
            "Member": selfinfo.member(cfg, app.agent.node_id),
            "Stats": selfinfo.stats(app),
            "Meta": {"consul-network-segment": ""},
        },
    )


ROUTES = [
    Route("/v1/agent/self", GET, self_info),
    Route("/v1/agent/members", GET, members),
    Route("/v1/agent/services", GET, services),
    Route("/v1/agent/service/register", PUT, register_service),
    Route("/v1/agent/service/deregister/", PUT, deregister_service, prefix=True),
    Route("/v1/agent/service/maintenance/", PUT, service_maintenance, prefix=True),
    Route("/v1/agent/service/", GET, service, prefix=True),
    Route("/v1/agent/maintenance", PUT, node_maintenance),
    Route("/v1/agent/checks", GET, checks),
    Route("/v1/agent/check/register", PUT, register_check),
    Route("/v1/agent/check/deregister/", PUT, deregister_check, prefix=True),
    Route("/v1/agent/check/pass/", PUT, _ttl_setter("passing"), prefix=True),
    Route("/v1/agent/check/warn/", PUT, _ttl_setter("warning"), prefix=True),
    Route("/v1/agent/check/fail/", PUT, _ttl_setter("critical"), prefix=True),
    Route("/v1/agent/check/update/", PUT, update_check, prefix=True),
    Route("/v1/agent/health/service/id/", GET, health_by_id, prefix=True),
    Route("/v1/agent/health/service/name/", GET, health_by_name, prefix=True),
]
