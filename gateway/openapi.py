"""The gateway's OpenAPI 3.0 document: its own endpoints and the generic proxy route."""

from discovery.instances import STATUS_ORDER
from discovery.strategies import STRATEGIES
from gateway import views
from gateway.proxy import Outcome

__all__ = ["openapi_document"]

# What an attempt on an instance can fail with (gateway.proxy), as last_failure says.
_FAILURES = sorted(
    v for k, v in vars(Outcome).items() if k.isupper() and v != Outcome.OK
)

_ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "details": {},
            },
        }
    },
}


def _error(description: str) -> dict:
    return {
        "description": description,
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}
        },
    }


def _json(description: str, schema: dict) -> dict:
    return {
        "description": description,
        "content": {"application/json": {"schema": schema}},
    }


_HEALTH = {
    "type": "object",
    "required": ["service", "status", "consul", "services"],
    "properties": {
        "service": {"type": "string"},
        "status": {"type": "string", "enum": ["ok", "degraded", "unavailable"]},
        "consul": {
            "type": "object",
            "properties": {
                "reachable": {"type": "boolean"},
                "stale": {"type": "boolean"},
            },
        },
        "services": {
            "type": "object",
            "additionalProperties": {
                "type": "object",
                "properties": {
                    "passing": {"type": "integer"},
                    "total": {"type": "integer"},
                    "routable": {
                        "type": "integer",
                        "description": "instances Consul admits for routing; "
                        "local ejections show on /admin/instances only",
                    },
                    "prefix": {"type": "string", "nullable": True},
                },
            },
        },
    },
}


def _nullable(schema: dict, description: str) -> dict:
    return {**schema, "nullable": True, "description": description}


_INSTANCE = {
    "type": "object",
    "description": "one instance as the worker that answers sees it: ejections, failures "
    "and in-flight counts are per worker process",
    "required": [
        "id",
        "address",
        "port",
        "status",
        "weights",
        "routable",
        "reason",
        "consecutive_failures",
        "last_failure",
        "in_flight",
    ],
    "properties": {
        "id": {"type": "string"},
        "address": {"type": "string"},
        "port": {"type": "integer", "minimum": 0, "maximum": 65535},
        "status": {
            "type": "string",
            "enum": list(STATUS_ORDER),
            "description": "the worst of its checks in Consul",
        },
        "weights": {
            "type": "object",
            "description": "Consul's Weights (the weighted strategy reads them)",
            "required": ["passing", "warning"],
            "properties": {
                "passing": {"type": "integer", "minimum": 0},
                "warning": {"type": "integer", "minimum": 0},
            },
        },
        "routable": {
            "type": "boolean",
            "description": "Consul admits it for the strategy and it is not ejected",
        },
        "reason": {
            "type": "string",
            "description": "its status, `ejected until <UTC time> (ejection #n)`, or why "
            "a warning instance is left out",
        },
        "consecutive_failures": {
            "type": "integer",
            "minimum": 0,
            "description": "failed attempts in a row (a success or an ejection resets it)",
        },
        "last_failure": _nullable(
            # null in the enum too: an enum restricts null as any value (OpenAPI 3.0.3)
            {"type": "string", "enum": [*_FAILURES, None]},
            "what failed last, kept after a success; null when nothing has",
        ),
        "in_flight": _nullable(
            {"type": "integer", "minimum": 0},
            "requests on it now, counted by least_connections only: null under the "
            "other strategies",
        ),
    },
}

_INSTANCES = {
    "type": "object",
    "required": ["consul", "conflicts", "services"],
    "properties": {
        "consul": {
            "type": "object",
            "required": ["reachable", "catalog_error"],
            "properties": {
                "reachable": {"type": "boolean"},
                "catalog_error": _nullable(
                    {"type": "string"}, "why the service catalog cannot be read now"
                ),
            },
        },
        "conflicts": {
            "type": "object",
            "description": "prefixes claimed by more than one service: the claimants, "
            "the alphabetically first of which gets the prefix",
            "additionalProperties": {"type": "array", "items": {"type": "string"}},
        },
        "services": {
            "type": "object",
            "additionalProperties": {
                "type": "object",
                "required": [
                    "prefix",
                    "strategy",
                    "strategy_problem",
                    "snapshot",
                    "instances",
                ],
                "properties": {
                    "prefix": _nullable(
                        {"type": "string"}, "the prefix it is routed by, if any"
                    ),
                    "strategy": {"type": "string", "enum": sorted(STRATEGIES)},
                    "strategy_problem": _nullable(
                        {"type": "string"},
                        "why its Meta lb_strategy was not used",
                    ),
                    "snapshot": {
                        "type": "object",
                        "required": ["stale", "error", "age_seconds"],
                        "properties": {
                            "stale": {"type": "boolean"},
                            "error": _nullable({"type": "string"}, "why it is stale"),
                            "age_seconds": _nullable(
                                {"type": "number", "minimum": 0},
                                "since Consul last answered; null until it has",
                            ),
                        },
                    },
                    "instances": {"type": "array", "items": _INSTANCE},
                },
            },
        },
    },
}


def _user_with_orders(limit: int) -> dict:
    """The view's answer; `limit`: the page of orders it asks order-service for."""
    return {
        "type": "object",
        "required": ["user", "orders", "orders_total", "orders_next", "errors"],
        "properties": {
            "user": {"type": "object"},
            "orders": {
                "type": "array",
                "nullable": True,
                "description": "the first page of the user's orders in id order, "
                f"at most {limit}",
            },
            "orders_total": {
                "type": "integer",
                "minimum": 0,
                "nullable": True,
                "description": "how many orders the user has; more than `orders` holds "
                "when `orders_next` is set",
            },
            "orders_next": {
                "type": "string",
                "nullable": True,
                "description": "path and query of the next page of the user's orders "
                "through the gateway "
                f"(`/api/orders/user/{{user_id}}?limit={limit}&after=...`), "
                "a list page with its own `next`; null when `orders` holds them all",
            },
            "errors": {"type": "array"},
        },
    }


_RETRY_AFTER = {
    "required": True,
    "description": "seconds to wait (GATEWAY_RETRY_AFTER)",
    "schema": {"type": "integer", "minimum": 0},
}

_PROXY_METHODS = ("get", "head", "post", "put", "patch", "delete", "options")


def _proxy_operation(method: str) -> dict:
    operation = {
        "summary": "Forwarded to the service whose Consul Meta gateway_prefix is /{prefix}",
        "operationId": f"proxy_{method}",
        "parameters": [
            {
                "name": "prefix",
                "in": "path",
                "required": True,
                "schema": {"type": "string", "pattern": "^[A-Za-z0-9_~-]+$"},
            },
            {
                "name": "rest",
                "in": "path",
                "required": True,
                "description": (
                    "the rest of the path, passed on byte for byte; it may hold more "
                    "segments (/api/orders/user/1), which an OpenAPI path template "
                    "cannot express, so the pattern shows one"
                ),
                "schema": {"type": "string", "pattern": "^[A-Za-z0-9_~-]+$"},
            },
            {
                "name": "X-Gateway-Debug",
                "in": "header",
                "required": False,
                "schema": {"type": "string", "enum": ["1"]},
            },
        ],
        "responses": {
            "400": _error(
                "path rejected before routing (dot segments, encoded slashes, ...)"
            ),
            "404": _error("no service claims the prefix"),
            "408": _error(
                "request head or body arrived too slowly (GATEWAY_HEADER_TIMEOUT, "
                "GATEWAY_CLIENT_TIMEOUT), code request_timeout"
            ),
            "413": _error(
                "request body over GATEWAY_MAX_BODY_BYTES, code request_entity_too_large "
                "(the service's own 413, for a body over its MAX_BODY_BYTES, has the same)"
            ),
            "414": _error(
                "request target over GATEWAY_MAX_REQUEST_LINE, code uri_too_long"
            ),
            "431": _error(
                "a header line over GATEWAY_MAX_HEADER_BYTES (header_too_large), more "
                "than GATEWAY_MAX_HEADERS lines (too_many_headers), or a head longer "
                "than those allow (head_too_large)"
            ),
            "502": _error("every attempt failed to reach an instance"),
            "503": {
                **_error("no healthy instance, or the service's own 503"),
                "headers": {
                    "Retry-After": {
                        "required": True,
                        "description": "the service's own, else GATEWAY_RETRY_AFTER",
                        "schema": {"type": "string"},
                    }
                },
            },
            "504": _error("the service did not answer in time"),
            "default": {"description": "the upstream's own response, untouched"},
        },
    }
    if method in ("post", "put", "patch"):
        operation["requestBody"] = {
            "required": False,
            "content": {"*/*": {"schema": {}}},
        }
    return operation


def openapi_document() -> dict:
    return {
        "openapi": "3.0.3",
        "info": {"title": "Switchyard gateway", "version": "1.0.0"},
        "paths": {
            "/health": {
                "get": {
                    "operationId": "health",
                    "responses": {
                        "200": _json(
                            "able to route", {"$ref": "#/components/schemas/Health"}
                        ),
                        "503": _json(
                            "cannot route", {"$ref": "#/components/schemas/Health"}
                        ),
                    },
                }
            },
            "/metrics": {
                "get": {
                    "operationId": "metrics",
                    "responses": {
                        "200": {
                            "description": "Prometheus text format",
                            "content": {"text/plain": {"schema": {"type": "string"}}},
                        }
                    },
                }
            },
            "/admin/instances": {
                "get": {
                    "operationId": "admin_instances",
                    "responses": {
                        "200": _json(
                            "every instance of every service and why it is (not) routable",
                            {"$ref": "#/components/schemas/Instances"},
                        )
                    },
                }
            },
            "/api/views/users/{user_id}": {
                "get": {
                    "operationId": "user_with_orders",
                    "parameters": [
                        {
                            "name": "user_id",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "integer", "minimum": 0},
                        }
                    ],
                    "responses": {
                        "200": _json(
                            "the user and the first page of their orders (the orders "
                            "fields null when unavailable, with an `errors` entry)",
                            _user_with_orders(views.ORDERS_LIMIT),
                        ),
                        "404": _error("no such user"),
                        "502": _error("user-service failed"),
                        "503": {
                            **_error("user-service has no healthy instance"),
                            "headers": {"Retry-After": _RETRY_AFTER},
                        },
                        "504": _error("user-service too slow"),
                    },
                }
            },
            "/api/{prefix}/{rest}": {m: _proxy_operation(m) for m in _PROXY_METHODS},
        },
        "components": {
            "schemas": {"Error": _ERROR, "Health": _HEALTH, "Instances": _INSTANCES}
        },
    }
