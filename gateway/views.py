"""Aggregation views: one gateway request, several upstream calls at once on the loop.

`GET /api/views/users/<id>` -> the user (user-service `/users/<id>`) and their orders
(order-service `/orders/user/<id>`, its first page of up to 500), with that page's
`orders_total` and `orders_next` (the link to the rest, under /api, null when there is
none): a user's orders are never fetched whole, and never cut short without saying so.
The user decides the status (404 when unknown; a 503, like a proxied one, carries
Retry-After); orders are best effort: when they cannot be had the answer is still 200,
with `"orders": null` and an `errors` entry naming the service. Services are found by the
prefixes they claim, through the same forwarding (retries, ejection) as proxied requests.
"""

import asyncio
import json
import re
from typing import NamedTuple

from chassis.spans import name_route
from gateway.headers import upstream_request_headers
from gateway.messages import Request, Response, json_error, method_not_allowed
from gateway.paths import API_PREFIX
from gateway.proxy import Result

__all__ = ["VIEWS_PREFIX", "Fetched", "fetch_json", "user_with_orders"]

VIEWS_PREFIX = API_PREFIX + "/views/"
ORDERS_LIMIT = 500  # order-service's largest page

_USER_VIEW = re.compile(r"/api/views/users/([0-9]+)")
_USER_VIEW_ROUTE = "/api/views/users/{id}"


class Fetched(NamedTuple):
    service: str
    status: int
    body: object  # the JSON, None when there is none
    problem: dict | None
    # The answer's headers: every 503's has Retry-After (gateway.proxy).
    headers: list | tuple = ()


async def fetch_json(gateway, path: str, headers) -> Fetched:
    """What GET `path` on the service claiming it answered."""
    view = gateway.directory.view()
    route = view.table.match(path.partition("?")[0])
    if route is None:
        prefix = "/" + path.split("/")[1]
        problem = _problem("no_route", f"no service claims {prefix}")
        return Fetched(
            prefix, 503, None, problem, gateway.forwarder.with_retry_after([])
        )
    result: Result = await gateway.forwarder.forward(
        view.services[route.service], "GET", path, headers, b""
    )
    if result.error_code is not None:
        problem = _problem(result.error_code, result.message)
        return Fetched(route.service, result.status, None, problem, result.headers)
    if result.stream is None:
        raw = result.body
    else:
        raw = b"".join([chunk async for chunk in result.stream])
    try:
        body = json.loads(raw)
    except ValueError:
        return Fetched(
            route.service, 502, None, _problem("bad_upstream_body", "not JSON")
        )
    return Fetched(route.service, result.status, body, None, result.headers)


def _problem(code: str, message: str) -> dict:
    return {"code": code, "message": message}


async def user_with_orders(
    gateway, request: Request, path: str, rid: str, trace: str | None
) -> Response:
    """The view at `path`; `rid` and `trace` are the request's X-Request-ID and the
    traceparent to send on (None: each attempt's span sends its own, gateway.proxy)."""
    match = _USER_VIEW.fullmatch(path)
    if match is None:
        gateway.metrics.refused(404, "not_found")
        return json_error(404, "not_found", f"nothing at {path}")
    if trace is None:  # traced: the span is named by its route, not its path
        name_route(_USER_VIEW_ROUTE)
    if request.method not in ("GET", "HEAD"):
        gateway.metrics.refused(405, "method_not_allowed")
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
    user, orders = await asyncio.gather(
        fetch_json(gateway, f"/users/{user_id}", headers),
        fetch_json(gateway, f"/orders/user/{user_id}?limit={ORDERS_LIMIT}", headers),
    )
    if user.status == 404:
        return json_error(404, "user_not_found", f"user {user_id} does not exist")
    if user.problem is not None or user.status != 200:
        return _user_failure(user)
    page, problem = _orders_page(orders)
    errors = [] if problem is None else [{"service": orders.service, **problem}]
    body = {
        "user": user.body,
        "orders": page.get("items"),
        "orders_total": page.get("total"),
        "orders_next": page.get("next"),
        "errors": errors,
    }
    return Response(
        200, [("Content-Type", "application/json")], json.dumps(body).encode()
    )


def _user_failure(user: Fetched) -> Response:
    """The view's answer when the user cannot be had: the 502 / 503 / 504 a proxied request
    would get, a 503 with the Retry-After its answer carries (Forwarder.with_retry_after)."""
    problem = user.problem or _problem(
        "bad_gateway", f"{user.service} answered {user.status}"
    )
    status = user.status if user.status in (502, 503, 504) else 502
    headers = []
    if status == 503:
        headers = [(k, v) for k, v in user.headers if k.lower() == "retry-after"]
    return json_error(
        status,
        problem["code"],
        problem["message"],
        {"service": user.service},
        headers,
    )


def _orders_page(orders: Fetched) -> tuple[dict, dict | None]:
    """The first page of orders (`items`, `total`, `next`; {} when there is none) and the
    problem that left the view without it."""
    if orders.problem is not None:
        return {}, orders.problem
    if orders.status != 200:
        return {}, _problem("bad_gateway", f"answered {orders.status}")
    page = orders.body
    if not (
        isinstance(page, dict)
        and isinstance(page.get("items"), list)
        and isinstance(page.get("total"), int)
        and isinstance(page.get("next"), str | None)
    ):
        return {}, _problem("bad_upstream_body", "expected a page of orders")
    return page, None
