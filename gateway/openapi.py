"""The gateway's OpenAPI 3.0 document: its own endpoints and the generic proxy route."""

from gateway import views

__all__ = ["openapi_document"]

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
                            {
                                "type": "object",
                                "required": ["consul", "conflicts", "services"],
                                "properties": {
                                    "consul": {"type": "object"},
                                    "conflicts": {"type": "object"},
                                    "services": {"type": "object"},
                                },
                            },
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
        "components": {"schemas": {"Error": _ERROR, "Health": _HEALTH}},
    }
