"""/v1/event/fire/:name and /v1/event/list (agent/event_endpoint.go)."""

from devconsul.errors import HTTPError
from devconsul.events import InvalidEvent, UserEvent
from devconsul.messages import Request, Response, json_response
from devconsul.queries import check_datacenter, parse_blocking
from devconsul.routing import GET, PUT, Route, path_arg


def _local_services(app) -> dict[str, list[str]]:
    """What a service/tag filter is matched against: this agent's services."""
    with app.store.lock:
        services: dict[str, list[str]] = {}
        for service in app.agent.local_services():
            services.setdefault(service.name, []).extend(service.tag_list)
        return services


def fire(app, req: Request) -> Response:
    check_datacenter(req, app.config.datacenter)
    path_arg(req, "Missing name")
    event = UserEvent(
        id="",
        name=req.arg,
        payload=req.body or None,
        node_filter=req.param("node", ""),
        service_filter=req.param("service", ""),
        tag_filter=req.param("tag", ""),
    )
    try:
        app.events.fire(event, app.agent.node, _local_services(app))
    except InvalidEvent as exc:
        raise HTTPError(500, str(exc)) from None
    return json_response(req, event.to_json())


def event_list(app, req: Request) -> Response:
    index, timeout = parse_blocking(req)
    found, current = app.events.list(req.param("name", ""), index, timeout)
    return json_response(
        req,
        [e.to_json() for e in found],
        headers={"X-Consul-Index": str(current)},
    )


ROUTES = [
    Route("/v1/event/fire/", PUT, fire, prefix=True),
    Route("/v1/event/list", GET, event_list),
]
