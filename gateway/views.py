"""Aggregation views: one gateway request, several upstream calls at once on the loop.

`GET /api/views/users/<id>` -> the user (user-service `/users/<id>`) and their orders
(order-service `/orders/user/<id>`, its first 500). The user decides the status (404 when
unknown); orders are best effort: when they cannot be had the answer is still 200, with
`"orders": null` and an `errors` entry naming the service. Services are found by the
prefixes they claim, through the same forwarding (retries, ejection) as proxied requests.
"""

import asyncio
import json
import re

from gateway.headers import upstream_request_headers
from gateway.messages import Request, Response, json_error, method_not_allowed
from gateway.paths import API_PREFIX
from gateway.proxy import Result

__all__ = ["VIEWS_PREFIX", "fetch_json", "user_with_orders"]

VIEWS_PREFIX = API_PREFIX + "/views/"
ORDERS_LIMIT = 500  # order-service's largest page

_USER_VIEW = re.compile(r"/api/views/users/([0-9]+)")


async def fetch_json(
    gateway, path: str, headers
) -> tuple[str, int, object, dict | None]:
    """(service, status, JSON body, error) of GET `path` on the service claiming it."""
    view = gateway.directory.view()
    route = view.table.match(path.partition("?")[0])
    if route is None:
        prefix = "/" + path.split("/")[1]
        return prefix, 503, None, _problem("no_route", f"no service claims {prefix}")
    result: Result = await gateway.forwarder.forward(
        view.services[route.service], "GET", path, headers, b""
    )
    if result.error_code is not None:
        return (
            route.service,
            result.status,
            None,
            _problem(result.error_code, result.message),
        )
    if result.stream is None:
        raw = result.body
    else:
        raw = b"".join([chunk async for chunk in result.stream])
    try:
        body = json.loads(raw)
    except ValueError:
        return route.service, 502, None, _problem("bad_upstream_body", "not JSON")
    return route.service, result.status, body, None


def _problem(code: str, message: str) -> dict:
    return {"code": code, "message": message}


async def user_with_orders(
    gateway, request: Request, path: str, rid: str, trace: str | None
) -> Response:
    """The view at `path`; `rid` and `trace` are the request's X-Request-ID and the
    traceparent to send on (None: each attempt's span sends its own, gateway.proxy)."""
    match = _USER_VIEW.fullmatch(path)
    if match is None:
        return json_error(404, "not_found", f"nothing at {path}")
    if request.method not in ("GET", "HEAD"):
        return method_not_allowed(request.method, ("GET", "HEAD"))
    user_id = int(match.group(1))
    headers = upstream_request_headers(
        request.headers,  # its Content-Length is dropped there, like the proxy's
        client_addr=request.client_addr,
        scheme="http",
        request_id=rid,
        traceparent=trace,
        trust_forwarded=gateway.settings.trust_forwarded,
    )
    # Two tasks, each started with a copy of this context (asyncio's rule): traced, the
    # request's server span (chassis.spans) is current in both, so their attempts are its
    # two children.
    (service, status, user, problem), orders_call = await asyncio.gather(
        fetch_json(gateway, f"/users/{user_id}", headers),
        fetch_json(gateway, f"/orders/user/{user_id}?limit={ORDERS_LIMIT}", headers),
    )
    orders_service, orders_status, orders, orders_problem = orders_call
    if status == 404:
        return json_error(404, "user_not_found", f"user {user_id} does not exist")
    if problem is not None or status != 200:
        problem = problem or _problem("bad_gateway", f"{service} answered {status}")
        code = status if status in (502, 503, 504) else 502
        return json_error(
            code, problem["code"], problem["message"], {"service": service}
        )
    items = orders.get("items") if isinstance(orders, dict) else None
    if orders_problem is None and orders_status != 200:
        orders_problem = _problem("bad_gateway", f"answered {orders_status}")
    elif orders_problem is None and not isinstance(items, list):
        orders_problem = _problem("bad_upstream_body", "expected a page of orders")
    errors = []
    if orders_problem is not None:
        errors.append({"service": orders_service, **orders_problem})
        items = None
    body = {"user": user, "orders": items, "errors": errors}
    return Response(
        200, [("Content-Type", "application/json")], json.dumps(body).encode()
    )
