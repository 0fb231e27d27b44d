"""The gateway app: its own endpoints, the aggregation view, and `/api/...` proxied.

    GET /health            own status, Consul reachability, per service passing/total
                           (Consul state only: byte-stable whichever worker answers)
    GET /metrics           Prometheus text
    GET /admin/instances   every instance and why it is (not) routable
    GET /openapi.json      this API, proxy routes included
    GET /api/views/users/<id>   user + orders, fetched concurrently
    *   /api/<prefix>/...  proxied to the service claiming <prefix>
    OPTIONS *              the methods the gateway serves, in Allow

`handle(request) -> Response` is all the server (gateway.server) calls. Nothing starts at
import or in `create_app`: the worker calls `start()` at boot, in each process, and serves
once the route table and every service's instances are known (`wait_ready`), so the first
request and the first health check find them.
"""

import dataclasses
import json
import logging
import time
from datetime import UTC, datetime

from chassis.identity import instance_id_from_env
from chassis.spans import name_route
from discovery.consul_client import ConsulSettings
from gateway.accesslog import AccessLog
from gateway.directory import Directory, admits
from gateway.headers import (
    downstream_response_headers,
    request_id,
    traceparent,
    upstream_request_headers,
)
from gateway.messages import (
    BodyError,
    Request,
    Response,
    json_error,
    method_not_allowed,
)
from gateway.metrics import CONTENT_TYPE, GatewayMetrics
from gateway.openapi import openapi_document
from gateway.paths import API_PREFIX, BadPath, clean_target, origin_form
from gateway.proxy import PRELOAD_LIMIT, Forwarder, Result
from gateway.resilience import Ejector
from gateway.server import Server
from gateway.settings import DEFAULT_PORT, GatewaySettings
from gateway.views import VIEWS_PREFIX, user_with_orders

__all__ = ["METHODS", "Gateway", "create_app"]

log = logging.getLogger("gateway")
access_log = AccessLog(logging.getLogger("gateway.access"))

SERVICE_NAME = "gateway"
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
READ_METHODS = ("GET", "HEAD")
_PROXIED = frozenset(METHODS)
_ALLOW = ", ".join(METHODS)
_API_PATHS = API_PREFIX + "/"


class Gateway:
    """One gateway app: what it knows and owns, and `handle(request)`, which the server calls."""

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
            consul_settings,
            settings.strategy,
            self.ejector,
            watch_tag=settings.watch_tag,
            **directory_options,
        )
        self.metrics = GatewayMetrics(self.directory)
        self.directory.on_forget(self.metrics.forget)
        self.forwarder = Forwarder(settings, self.ejector, self.metrics)
        self.tracing = False  # see trace_requests
        self._own = {
            "/health": self._health,
            "/metrics": self._metrics,
            "/admin/instances": self._instances,
            "/openapi.json": self._openapi,
        }

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> None:
        """Follow Consul from now on (its threads hand snapshots to the loop)."""
        self.directory.start()

    def wait_ready(self, timeout: float) -> bool:
        """Whether the route table and every service's instances arrived within `timeout`
        (blocking: call it off the loop)."""
        return self.directory.wait_ready(timeout)

    def trace_requests(self, recorder) -> None:
        """Give every request under /api a server span and each upstream attempt one of
        its own, made by `recorder` (chassis.tracing.span_recorder), which `tracing` is
        from now on."""
        self.tracing = recorder
        self.forwarder.tracing = True

    def server(self) -> Server:
        """The HTTP server of this app, one per process: the connections it holds and what
        it refuses show in /metrics."""
        server = Server(
            self.settings, self.handle, self.served_by, self.metrics.refused
        )
        self.metrics.connections = server.connections
        return server

    def stop(self) -> None:
        self.directory.stop()
        self.forwarder.upstream.close()

    # -- requests ----------------------------------------------------------------------

    async def handle(self, request: Request) -> Response:
        target = request.target
        path = target.partition("?")[0]
        if path.startswith(_API_PATHS):
            return await self._api(request, path)
        if not target.startswith("/"):
            if target == "*" and request.method == "OPTIONS":
                return self._server_options()
            try:
                return await self.handle(_in_origin_form(request))
            except BadPath as exc:  # `GET *`, `CONNECT host:443`, another scheme
                return self._refusal(400, "bad_path", str(exc))
        if path not in self._own:
            return self._refusal(404, "not_found", f"nothing at {path}")
        if request.method not in READ_METHODS:
            self.metrics.refused(405, "method_not_allowed")
            response = method_not_allowed(request.method, READ_METHODS)
        else:
            response = self._own[path]()
        response.headers.append(("X-Served-By", self.served_by))
        return response

    def _server_options(self) -> Response:
        """`OPTIONS *` asks about the server, not a resource (RFC 9110 section 9.3.7): the
        methods it serves (nginx 1.22 refuses the asterisk-form with a 400 instead). A 200
        without content: the server sends `Content-Length: 0`, which the RFC asks for."""
        return Response(200, [("Allow", _ALLOW), ("X-Served-By", self.served_by)])

    def _health(self) -> Response:
        body, status = self.health()
        return _json_response(body, status)

    def _metrics(self) -> Response:
        return Response(200, [("Content-Type", CONTENT_TYPE)], self.metrics.render())

    def _instances(self) -> Response:
        return _json_response(_stable_json(self.instances_report()))

    def _openapi(self) -> Response:
        return _json_response(_stable_json(openapi_document()))

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
                "routable": len(state.admitted),
                "prefix": view.table.prefix_of(name),
            }
        claimed = [s for s in services.values() if s["prefix"]]
        can_route = self.directory.catalog_loaded and (
            not claimed or any(s["routable"] for s in claimed)
        )
        reachable = self.directory.consul_reachable
        # Degraded, still 200: Consul is away (routing on the last snapshot), or a service
        # that claims a prefix has no instance to route to while others do.
        whole = reachable and all(s["routable"] for s in claimed)
        status = (
            "ok" if can_route and whole else "degraded" if can_route else "unavailable"
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
        """One instance as this worker sees it (ejections, failures and in-flight counts
        are per worker process)."""
        ejection = self.ejector.state(instance.id)
        in_flight = getattr(state.strategy, "in_flight", None)
        ejected = self.ejector.is_ejected(instance.id)
        if ejected:
            until = datetime.now(UTC).timestamp() + (
                ejection.ejected_until - self.ejector.clock()
            )
            stamp = datetime.fromtimestamp(until, UTC).isoformat(timespec="seconds")
            reason = f"ejected until {stamp} (ejection #{ejection.ejections})"
        elif admits(instance, state.strategy_name):
            reason = instance.status
        elif instance.status == "warning" and state.strategy_name == "weighted":
            reason = "warning: its Weights.Warning is 0"
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
            "last_failure": ejection.last_failure,
            # Counted by least_connections alone: the others need no count, and keeping
            # one would cost every request.
            "in_flight": in_flight(instance.id) if in_flight else None,
        }

    # -- proxying ----------------------------------------------------------------------

    async def _api(self, request: Request, path: str) -> Response:
        """One request under /api (proxied, or a view) from start to end: its X-Request-ID
        and traceparent are decided here, its server span is here, its outcome recorded
        here. Untraced, the only cost of tracing is the `if`."""
        started = time.perf_counter()
        names = request.names
        rid = request_id(names.get("x-request-id"))
        if not self.tracing:
            trace = traceparent(names, request.headers)
            service, result, response = await self._answer(
                request, path, names, rid, trace
            )
            ids = trace[3:35], trace[36:52]  # what the upstream sees as its parent
        else:
            with self.tracing.server_span(
                names, request.method, path, rid, request.headers
            ) as span:
                service, result, response = await self._answer(
                    request, path, names, rid, None
                )
                span.finish(response.status)
            ids = span.trace_hex, span.span_hex
        self._record(request, service, result, response, started, rid, ids)
        return response

    async def _answer(self, request, path, names, rid, trace):
        """(service, forwarding result, response) of a request under /api; `trace` is the
        traceparent to send on, None when each attempt's span sets its own."""
        service, result = "-", None
        try:
            if path.startswith(VIEWS_PREFIX):
                service = "views"
                response = await user_with_orders(self, request, path, rid, trace)
                response.headers.append(("X-Served-By", self.served_by))
            else:
                service, result = await self._forward(request, names, rid, trace)
                response = self._response(result)
        except BodyError as exc:
            response = self._refusal(exc.status, exc.code, exc.message)
        except BadPath as exc:
            response = self._refusal(400, "bad_path", str(exc))
        if not response.has("X-Request-ID"):
            response.headers.append(("X-Request-ID", rid))
        if result is not None and names.get("x-gateway-debug") == "1":
            attempts = ", ".join(a.describe() for a in result.attempts) or "none"
            response.headers.append(("X-Gateway-Attempts", attempts))
        return service, result, response

    async def _forward(self, request, names, rid, trace) -> tuple[str, Result]:
        method = request.method
        path, query = clean_target(request.target)
        if method not in _PROXIED:
            self.metrics.refused(405, "method_not_allowed")
            return "-", Result(
                405,
                headers=[("Allow", ", ".join(METHODS))],
                error_code="method_not_allowed",
                message=f"method {method} is not proxied",
            )
        upstream_path = path[len(API_PREFIX) :]
        view = self.directory.view()
        route = view.table.match(upstream_path)
        if route is None:
            self.metrics.refused(404, "no_route")
            return "-", Result(
                404, error_code="no_route", message=f"no service claims {path}"
            )
        if trace is None:  # traced: the span is named by its route, not its path
            name_route(f"{API_PREFIX}{route.prefix}/*")
        body = request.body
        body.check_length()  # before any upstream is contacted
        # Held in memory, a body can be sent again on a retry; a large one streams.
        held = body.length is not None and body.length <= PRELOAD_LIMIT
        payload = (await body.read() if held else body) if body.expected else b""
        headers = upstream_request_headers(
            request.headers,
            client_addr=request.client_addr,
            scheme="http",
            request_id=rid,
            traceparent=trace,
            trust_forwarded=self.settings.trust_forwarded,
        )
        target = f"{upstream_path}?{query}" if query else upstream_path
        result = await self.forwarder.forward(
            view.services[route.service],
            method,
            target,
            headers,
            payload,
            idempotency_key="idempotency-key" in names,
        )
        return route.service, result

    def _response(self, result: Result) -> Response:
        if result.error_code is not None:
            return self._error(
                result.status, result.error_code, result.message, result.headers
            )
        headers = downstream_response_headers(result.headers)
        if result.stream is not None:
            return Response(
                result.status, headers, stream=result.stream, length=result.length
            )
        return Response(result.status, headers, result.body or b"")

    def _error(self, status, code, message, headers=()) -> Response:
        response = json_error(status, code, message, headers=headers)
        response.headers.append(("X-Served-By", self.served_by))
        return response

    def _refusal(self, status, code, message) -> Response:
        """An error of the gateway's own, no service asked (counted in /metrics)."""
        self.metrics.refused(status, code)
        return self._error(status, code, message)

    def _record(self, request, service, result, response, started, rid, ids):
        elapsed = time.perf_counter() - started
        instance = result.instance if result is not None else "-"
        status = response.status
        if service != "-":  # proxied, or a view (whose fetches count as attempts)
            self.metrics.request(service, status, instance, elapsed)
        if not access_log.enabled():
            return
        if result is not None and len(result.attempts) > 1:
            tried = ", ".join(a.describe() for a in result.attempts)
        else:
            tried = instance
        access_log.info(
            f"{request.method} {request.target} -> {service} {tried} {status}"
            f" {elapsed * 1000:.1f}ms request_id={rid} trace_id={ids[0]}"
            f" span_id={ids[1]}"
        )


def _stable_json(body) -> bytes:
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def _json_response(body: bytes, status: int = 200) -> Response:
    return Response(status, [("Content-Type", "application/json")], body)


def create_app(
    settings: GatewaySettings | None = None,
    consul_settings: ConsulSettings | None = None,
    instance_id: str | None = None,
    **directory_options,
) -> Gateway:
    """`directory_options` (`catalog`, `watcher_factory`) replace Consul in tests."""
    settings = settings or GatewaySettings.from_env()
    # The id the master registers (PORT defaulting to the gateway's 8000, not 0).
    served_by = instance_id or instance_id_from_env(
        SERVICE_NAME, default_port=DEFAULT_PORT
    )
    return Gateway(settings, consul_settings, served_by, **directory_options)


def _in_origin_form(request: Request) -> Request:
    """An absolute-form request (see paths.origin_form) as its origin-form twin, its Host
    the target's authority, whatever Host header came with it."""
    target, authority = origin_form(request.target)
    headers = [(n, v) for n, v in request.headers if n.lower() != "host"]
    headers.append(("Host", authority))
    names = {**request.names, "host": authority}
    return dataclasses.replace(request, target=target, headers=headers, names=names)
