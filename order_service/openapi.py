"""order-service's OpenAPI 3 document, served at /openapi.json."""

from chassis.openapi import (
    ID,
    PAGE_PARAMETERS,
    TIMESTAMPS,
    error_responses,
    json_request,
    location_header,
    object_schema,
    ok_response,
    openapi_document,
    page_schema,
    path_id,
    schema_ref,
)
from order_service.lifecycle import STATUSES
from order_service.money import AMOUNT_STRING_PATTERN
from order_service.validation import IDEMPOTENCY_KEY_PATTERN

STATUS = {"type": "string", "enum": list(STATUSES)}
ORDER = object_schema(
    {
        "id": ID,
        "user_id": ID,
        "total_amount": {
            "type": "string",
            "pattern": AMOUNT_STRING_PATTERN,
            "example": "12.50",
        },
        "status": STATUS,
        **TIMESTAMPS,
    }
)
AMOUNT = {
    "description": "Exact amount > 0 and <= 1000000000 with at most 2 decimals, as a JSON number or a string",
    "anyOf": [
        {
            "type": "number",
            "minimum": 0,
            "exclusiveMinimum": True,
            "maximum": 1000000000,
            "multipleOf": 0.01,
        },
        {"type": "string", "pattern": AMOUNT_STRING_PATTERN},
    ],
}
NEW_ORDER = object_schema({"user_id": ID, "total_amount": AMOUNT})
STATUS_CHANGE = object_schema({"status": STATUS})
ORDER_REF = schema_ref("Order")
LOCATION = location_header("/orders/<id>")
REPLAYED = {
    "Idempotent-Replayed": {
        "description": "Present on a replay of an earlier request with the same Idempotency-Key",
        "schema": {"type": "string", "enum": ["true"]},
    }
}
IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key",
    "in": "header",
    "description": "Retry-safe creation: the same key and body return the original order (200); "
    "the same key with another body is 409. A key is kept for IDEMPOTENCY_KEY_TTL seconds "
    "from its order's creation (24 h by default); after that it makes a new order. Sent "
    "once: two Idempotency-Key headers (joined by a comma, which a key cannot contain) are 400",
    "schema": {"type": "string", "pattern": IDEMPOTENCY_KEY_PATTERN},
}

PATHS = {
    "/orders": {
        "get": {
            "summary": "List orders by id, paginated, optionally filtered by user and status",
            "operationId": "listOrders",
            "parameters": [
                {"name": "user_id", "in": "query", "schema": ID},
                {"name": "status", "in": "query", "schema": STATUS},
                *PAGE_PARAMETERS,
            ],
            "responses": {
                "200": ok_response("A page of orders", page_schema("Order")),
                **error_responses(400),
            },
        },
        "post": {
            "summary": "Create an order (status pending) for an existing user, checked with user-service",
            "operationId": "createOrder",
            "parameters": [IDEMPOTENCY_KEY],
            "requestBody": json_request("NewOrder"),
            "responses": {
                "201": ok_response("Created", ORDER_REF, LOCATION),
                "200": ok_response(
                    "Replay: the order created earlier with this Idempotency-Key",
                    ORDER_REF,
                    {**LOCATION, **REPLAYED},
                ),
                **error_responses(400, 409, 413, 415, 422),
            },
        },
    },
    "/orders/user/{user_id}": {
        "get": {
            "summary": "List one user's orders, paginated",
            "operationId": "listUserOrders",
            "parameters": [path_id("user_id"), *PAGE_PARAMETERS],
            "responses": {
                "200": ok_response("A page of orders", page_schema("Order")),
                **error_responses(400, 404),
            },
        }
    },
    "/orders/{order_id}": {
        "parameters": [path_id("order_id")],
        "get": {
            "summary": "Get an order",
            "operationId": "getOrder",
            "responses": {
                "200": ok_response("The order", ORDER_REF),
                **error_responses(404),
            },
        },
        "patch": {
            "summary": "Move an order: pending -> paid -> shipped -> delivered; pending|paid -> cancelled",
            "operationId": "changeOrderStatus",
            "requestBody": json_request("StatusChange"),
            "responses": {
                "200": ok_response("Moved", ORDER_REF),
                **error_responses(400, 404, 409, 413, 415),
            },
        },
    },
}

DOCUMENT = openapi_document(
    "order-service",
    'Orders of Switchyard. Amounts are exact decimal strings such as "12.50".',
    PATHS,
    {"Order": ORDER, "NewOrder": NEW_ORDER, "StatusChange": STATUS_CHANGE},
)
