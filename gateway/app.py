"""The gateway's app factory: own endpoints in Flask, `/api/...` proxied in front of it.

    GET /health            own status, Consul reachability, per service passing/total
                           (Consul state only: byte-stable whichever worker answers)
    GET /metrics           Prometheus text
    GET /admin/instances   every instance and why it is (not) routable
    GET /openapi.json      this API, proxy routes included
    GET /api/views/users/<id>   user + orders, fetched in parallel
    *   /api/<prefix>/...  proxied to the service claiming <prefix>

Nothing starts at import or in `create_app`: Consul is followed from the first request on,
so each gunicorn worker starts its own watchers after the fork.
"""

import json
import logging
from datetime import UTC, datetime

from flask import Blueprint, Flask, Response, current_app
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from chassis.identity import instance_id_from_env
from chassis.responses import init_service_app
from discovery.consul_client import ConsulSettings
from gateway.directory import Directory, admits
from gateway.metrics import GatewayMetrics
from gateway.openapi import openapi_document
from gateway.proxy import Forwarder
from gateway.resilience import Ejector
from gateway.settings import DEFAULT_PORT, GatewaySettings
from gateway.views import views
from gateway.wsgi_proxy import ProxyMiddleware

__all__ = ["Gateway", "create_app"]

log = logging.getLogger("gateway")

SERVICE_NAME = "gateway"


class Gateway:
    """The parts one app owns; reachable from views as `current_app.extensions["gateway"]`."""

    def __init__(
        self,
        settings: GatewaySettings,
        consul_settings: ConsulSettings | None,
        served_by: str,
        **directory_options,
    ):
        self.settings = settings
        self.served_by = served_by
        self.ejector = Ejector(
            settings.eject_after, settings.eject_base, settings.eject_max
        )
        self.directory = Directory(
            consul_settings, settings.strategy, self.ejector, **directory_options
        )
        self.metrics = GatewayMetrics(self.directory)
        self.directory.on_forget(self.metrics.forget)
        self.forwarder = Forwarder(settings, self.ejector, self.metrics)

    def health(self) -> tuple[bytes, int]:
        """Byte-stable: counts and flags only, no ages or timestamps.

        From Consul's state only: Consul's check reaches any worker, and each worker ejects
        on its own, so ejections (on /admin/instances) would make the stored output flip.
        `routable` counts the instances Consul lets the gateway route to (before ejection).
        """
        view = self.directory.view()
        services = {}
        for name, state in view.services.items():
            instances = state.snapshot.instances
            services[name] = {
                "passing": sum(1 for i in instances if i.status == "passing"),
                "total": len(instances),
                "routable": sum(1 for i in instances if admits(i, state.strategy_name)),
                "prefix": view.table.prefix_of(name),
            }
        claimed = [s for s in services.values() if s["prefix"]]
        can_route = self.directory.catalog_loaded and (
            not claimed or any(s["routable"] for s in claimed)
        )
        reachable = self.directory.consul_reachable
        status = (
            "ok"
            if can_route and reachable
            else "degraded"
            if can_route
            else "unavailable"
        )
        body = {
            "service": SERVICE_NAME,
            "status": status,
            "consul": {"reachable": reachable, "stale": not reachable},
            "services": services,
        }
        return _stable_json(body), 200 if can_route else 503

    def instances_report(self) -> dict:
        view = self.directory.view()
        report = {}
        for name, state in sorted(view.services.items()):
            report[name] = {
                "prefix": view.table.prefix_of(name),
                "strategy": state.strategy_name,
                "strategy_problem": state.strategy_problem,
                "snapshot": {
                    "stale": state.snapshot.stale,
                    "error": state.snapshot.error,
                    "age_seconds": round(state.snapshot.age, 3)
                    if state.snapshot.loaded
                    else None,
                },
                "instances": [
                    self._explain(i, state) for i in state.snapshot.instances
                ],
            }
        return {
            "consul": {
                "reachable": self.directory.consul_reachable,
                "catalog_error": self.directory.catalog_error,
            },
            "conflicts": {p: list(s) for p, s in view.table.conflicts.items()},
            "services": report,
        }

    def _explain(self, instance, state) -> dict:
        ejection = self.ejector.state(instance.id)
        ejected = self.ejector.is_ejected(instance.id)
        if ejected:
            until = datetime.now(UTC).timestamp() + (
                ejection.ejected_until - self.ejector.clock()
            )
            stamp = datetime.fromtimestamp(until, UTC).isoformat(timespec="seconds")
            reason = f"ejected until {stamp} (ejection #{ejection.ejections})"
        elif admits(instance, state.strategy_name):
            reason = instance.status
        elif instance.status == "warning":
            reason = "warning: only the weighted strategy routes to warning instances"
        else:
            reason = instance.status
        return {
            "id": instance.id,
            "address": instance.address,
            "port": instance.port,
            "status": instance.status,
            "weights": {"passing": instance.weights[0], "warning": instance.weights[1]},
            "routable": admits(instance, state.strategy_name) and not ejected,
            "reason": reason,
            "consecutive_failures": ejection.consecutive_failures,
        }


def _stable_json(body) -> bytes:
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


own = Blueprint("gateway", __name__)


@own.before_app_request
def follow_consul():
    current_app.extensions["gateway"].directory.start()


@own.get("/health")
def health():
    body, status = current_app.extensions["gateway"].health()
    return Response(body, status=status, mimetype="application/json")


@own.get("/metrics")
def metrics():
    registry = current_app.extensions["gateway"].metrics.registry
    return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)


@own.get("/admin/instances")
def admin_instances():
    report = current_app.extensions["gateway"].instances_report()
    return Response(_stable_json(report), mimetype="application/json")


@own.get("/openapi.json")
def openapi():
    return Response(_stable_json(openapi_document()), mimetype="application/json")


def create_app(
    settings: GatewaySettings | None = None,
    consul_settings: ConsulSettings | None = None,
    instance_id: str | None = None,
    **directory_options,
) -> Flask:
    """`directory_options` (`catalog`, `watcher_factory`) replace Consul in tests."""
    settings = settings or GatewaySettings.from_env()
    app = Flask(__name__)
    # The id the master registers (PORT defaulting to the gateway's 8000, not 0).
    app.config["INSTANCE_ID"] = instance_id or instance_id_from_env(
        SERVICE_NAME, default_port=DEFAULT_PORT
    )
    # `//x` must not be answered with werkzeug's HTML redirect.
    app.url_map.merge_slashes = False
    init_service_app(app, SERVICE_NAME)
    gateway = Gateway(
        settings, consul_settings, app.config["INSTANCE_ID"], **directory_options
    )
    app.extensions["gateway"] = gateway
    app.register_blueprint(own)
    app.register_blueprint(views)
    app.wsgi_app = ProxyMiddleware(
        app.wsgi_app,
        settings,
        gateway.directory,
        gateway.forwarder,
        gateway.metrics,
        gateway.served_by,
    )
    return app
