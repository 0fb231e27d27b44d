"""The agent's own running: /v1/agent/metrics, /v1/agent/reload and the
/v1/agent/monitor log stream (agent/agent_endpoint.go)."""

import logging

from devconsul import logstream, telemetry
from devconsul.errors import HTTPError
from devconsul.messages import Request, Response, empty_response, json_response
from devconsul.routing import GET, PUT, Route

log = logging.getLogger("devconsul.agent")

# A dev agent sets no telemetry.prometheus_retention_time (DevSource in
# agent/config/default.go), so Prometheus output is refused unless -hcl sets it.
_NO_PROMETHEUS = "Prometheus is not enabled since its retention time is not positive"


def _wants_prometheus(req: Request) -> bool:
    """enablePrometheusOutput: ?format=prometheus or an OpenMetrics Accept."""
    if req.param("format") == "prometheus":
        return True
    for mime in (req.headers.get("Accept") or "").split(","):
        parts = [p.strip() for p in mime.split(";")]
        if parts[0].lower() == "application/openmetrics-text":
            return True
        if parts[0].lower() == "text/plain" and parts[1:2] == ["version=0.4.0"]:
            return True
    return False


def metrics(app, req: Request) -> Response:
    if _wants_prometheus(req):
        if app.config.prometheus_retention_ns <= 0:
            return Response(415, _NO_PROMETHEUS.encode(), "text/plain")
        text = telemetry.prometheus_text(app.store)
        return Response(200, text.encode(), telemetry.PROMETHEUS_CONTENT_TYPE)
    return json_response(req, telemetry.snapshot(app.store))


def reload(app, req: Request) -> Response:
    # A dev agent started without config files has nothing to re-read.
    log.info("Reloading configuration...")
    return empty_response()


def monitor(app, req: Request) -> Response:
    name = req.param("loglevel") or "INFO"
    level = logstream.parse_level(name)
    if level is None:
        raise HTTPError(400, f"Unknown log level: {name}")
    hub = logstream.hub()
    sub = hub.subscribe(level, as_json=req.has("logjson"))
    return Response(
        200, content_type="text/plain; charset=utf-8", stream=hub.stream(sub)
    )


ROUTES = [
    Route("/v1/agent/metrics", GET, metrics),
    Route("/v1/agent/reload", PUT, reload),
    Route("/v1/agent/monitor", GET, monitor),
]
