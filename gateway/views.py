"""Aggregation views: one gateway request, several upstream calls in parallel.

`GET /api/views/users/<id>` -> the user (user-service `/users/<id>`) and their orders
(order-service `/orders/user/<id>`, its first 500). The user decides the status (404 when unknown); orders
are best effort: when they cannot be had the answer is still 200, with `"orders": null`
and an `errors` entry naming the service. Services are found by the prefixes they claim,
through the same forwarding (retries, ejection) as proxied requests.
"""

import json
from concurrent.futures import ThreadPoolExecutor

from flask import Blueprint, current_app, jsonify, request

from chassis.errors import APIError
from gateway.headers import request_id, traceparent, upstream_request_headers
from gateway.proxy import Result

__all__ = ["fetch_json", "views"]

views = Blueprint("views", __name__)

ORDERS_LIMIT = 500  # order-service's largest page

_executor: ThreadPoolExecutor | None = None


def executor() -> ThreadPoolExecutor:
    # Created on first use, so each gunicorn worker has its own threads.
    global _executor
    if _executor is None:
        _executor = ThreadPoolExecutor(
            max_workers=8, thread_name_prefix="gateway-views"
        )
    return _executor


def fetch_json(gateway, path: str, headers) -> tuple[str, int, object, dict | None]:
    """(service, status, JSON body, error) of GET `path` on the service claiming it."""
    view = gateway.directory.view()
    route = view.table.match(path.partition("?")[0])
    if route is None:
        prefix = "/" + path.split("/")[1]
        return prefix, 503, None, _problem("no_route", f"no service claims {prefix}")
    result: Result = gateway.forwarder.forward(
        view.services[route.service], "GET", path, headers, b""
    )
    if result.error_code is not None:
        return (
            route.service,
            result.status,
            None,
            _problem(result.error_code, result.message),
        )
    raw = result.body if result.stream is None else b"".join(result.stream())
    try:
        body = json.loads(raw)
    except ValueError:
        return route.service, 502, None, _problem("bad_upstream_body", "not JSON")
    return route.service, result.status, body, None


def _problem(code: str, message: str) -> dict:
    return {"code": code, "message": message}


@views.get("/api/views/users/<int:user_id>")
def user_with_orders(user_id: int):
    gateway = current_app.extensions["gateway"]
    headers = upstream_request_headers(
        [(k, v) for k, v in request.headers.items() if k.lower() != "content-length"],
        client_addr=request.remote_addr or "",
        scheme=request.scheme,
        request_id=request_id(request.headers.get("X-Request-ID")),
        traceparent=traceparent(request.headers.get("traceparent")),
        trust_forwarded=gateway.settings.trust_forwarded,
    )
    orders_call = executor().submit(
        fetch_json, gateway, f"/orders/user/{user_id}?limit={ORDERS_LIMIT}", headers
    )
    service, status, user, problem = fetch_json(gateway, f"/users/{user_id}", headers)
    orders_service, orders_status, orders, orders_problem = orders_call.result()
    if status == 404:
        raise APIError(404, "user_not_found", f"user {user_id} does not exist")
    if problem is not None or status != 200:
        problem = problem or _problem("bad_gateway", f"{service} answered {status}")
        code = status if status in (502, 503, 504) else 502
        raise APIError(code, problem["code"], problem["message"], {"service": service})
    items = orders.get("items") if isinstance(orders, dict) else None
    if orders_problem is None and orders_status != 200:
        orders_problem = _problem("bad_gateway", f"answered {orders_status}")
    elif orders_problem is None and not isinstance(items, list):
        orders_problem = _problem("bad_upstream_body", "expected a page of orders")
    errors = []
    if orders_problem is not None:
        errors.append({"service": orders_service, **orders_problem})
        items = None
    return jsonify({"user": user, "orders": items, "errors": errors})
