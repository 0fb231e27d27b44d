"""Building blocks of the services' hand-written OpenAPI 3 documents.

Everything a document says the same way in every service lives here -- the error shape and the
error responses by status, X-Served-By, ids, timestamps, pages, /health and /openapi.json -- so
a service's own document states only its resources.
"""

import json
from collections.abc import Mapping

from flask import Flask, Response

from chassis.arrival import RECEIVE_SECONDS
from chassis.health import CHECK_RESULTS
from chassis.inputs import DEFAULT_LIMIT, MAX_LIMIT, MAX_OFFSET
from chassis.storage import MAX_ID

__all__ = [
    "ID",
    "PAGE_PARAMETERS",
    "TIMESTAMPS",
    "error_responses",
    "install_openapi",
    "json_request",
    "location_header",
    "object_schema",
    "ok_response",
    "openapi_document",
    "page_schema",
    "path_id",
    "schema_ref",
]

ERROR_DESCRIPTIONS = {
    400: "Malformed JSON, a wrong field, or a bad query parameter; details name each bad field",
    404: "No such resource",
    408: f"The request took over {RECEIVE_SECONDS:g} s to arrive (refused by the HTTP server)",
    409: "Conflicts with the current state",
    413: "Request body over MAX_BODY_BYTES (code request_entity_too_large, as at the gateway)",
    414: "Request line too long (refused by the HTTP server before the app)",
    415: "Content-Type is not application/json",
    422: "A referenced resource does not exist",
    431: "A request header too large (refused by the HTTP server before the app)",
    500: "Unexpected server error (details are logged, never returned)",
    503: "A dependency (database or another service) is unavailable; retry later",
}
ERROR_SHAPE_NOTE = 'Errors are always {"error": {"code", "message", "details"}}.'
# Ids are database INTEGERs: larger ones cannot exist.
ID = {"type": "integer", "minimum": 1, "maximum": MAX_ID}
TIMESTAMP = {"type": "string", "format": "date-time"}
# The properties of a row with chassis.storage.Timestamps.
TIMESTAMPS = {"created_at": TIMESTAMP, "updated_at": TIMESTAMP}
PAGE_PARAMETERS = [
    {
        "name": "limit",
        "in": "query",
        "schema": {
            "type": "integer",
            "minimum": 1,
            "maximum": MAX_LIMIT,
            "default": DEFAULT_LIMIT,
        },
    },
    {
        "name": "offset",
        "in": "query",
        "description": "Rows to skip (after `after`, if given); costs O(offset)",
        "schema": {
            "type": "integer",
            "minimum": 0,
            "maximum": MAX_OFFSET,
            "default": 0,
        },
    },
    {
        "name": "after",
        "in": "query",
        "description": (
            "Keyset pagination: the page after the row with this id (the last one seen), "
            "O(page) wherever it is; a page's `next` link carries it"
        ),
        "schema": {"type": "integer", "minimum": 0, "maximum": MAX_ID},
    },
]
SERVED_BY = {"X-Served-By": {"$ref": "#/components/headers/X-Served-By"}}


def openapi_document(title: str, description: str, paths: dict, schemas: dict) -> dict:
    """A complete OpenAPI 3.0 document around `paths`: the shared components, the error-shape
    note and the /health and /openapi.json operations every service serves are added."""
    return {
        "openapi": "3.0.3",
        "info": {
            "title": title,
            "version": "1.0.0",
            "description": f"{description} {ERROR_SHAPE_NOTE}",
        },
        "paths": {
            **paths,
            "/health": health_operation(title),
            "/openapi.json": openapi_operation(),
        },
        "components": {
            "schemas": {"Error": error_schema(), **schemas},
            "responses": {
                f"Error{status}": error_response(text)
                for status, text in ERROR_DESCRIPTIONS.items()
            },
            "headers": {
                "X-Served-By": {
                    "description": "Instance id `<service>-<host>-<port>`",
                    "required": True,
                    "schema": {"type": "string"},
                }
            },
        },
    }


def error_schema() -> dict:
    return {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message", "details"],
                "properties": {
                    "code": {"type": "string"},
                    "message": {"type": "string"},
                    "details": {
                        "description": "null, or an object naming each bad field"
                    },
                },
            }
        },
    }


def error_response(description: str) -> dict:
    return {
        "description": description,
        "headers": dict(SERVED_BY),
        "content": {"application/json": {"schema": schema_ref("Error")}},
    }


def ok_response(
    description: str, schema: dict | None = None, headers: dict | None = None
) -> dict:
    response = {"description": description, "headers": {**SERVED_BY, **(headers or {})}}
    if schema is not None:
        response["content"] = {"application/json": {"schema": schema}}
    return response


def error_responses(*statuses: int) -> dict:
    """References to the shared error responses. Any operation can meet the HTTP server's
    limits (408, 414, 431: gunicorn answers them, as JSON, before the app) and 500 or 503."""
    return {
        str(status): {"$ref": f"#/components/responses/Error{status}"}
        for status in (*statuses, 408, 414, 431, 500, 503)
    }


def schema_ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def json_request(schema_name: str) -> dict:
    """A required JSON body of the named component schema."""
    return {
        "required": True,
        "content": {"application/json": {"schema": schema_ref(schema_name)}},
    }


def path_id(name: str) -> dict:
    return {"name": name, "in": "path", "required": True, "schema": ID}


def location_header(description: str) -> dict:
    """The Location header of a 201: where the created resource now lives."""
    return {
        "Location": {
            "description": description,
            "required": True,
            "schema": {"type": "string"},
        }
    }


def object_schema(properties: dict, *, partial: bool = False) -> dict:
    """A JSON object of exactly these fields, every one required unless `partial` (a PATCH
    body). No other field is allowed: the services refuse unknown fields and send none."""
    schema = {"type": "object", "additionalProperties": False, "properties": properties}
    if not partial:
        schema["required"] = list(properties)
    return schema


def page_schema(item_schema_name: str) -> dict:
    """The body of a paginated list, as chassis.pages.read_page answers it."""
    return object_schema(
        {
            "items": {"type": "array", "items": schema_ref(item_schema_name)},
            "total": {
                "type": "integer",
                "minimum": 0,
                "nullable": True,
                "description": "All matching rows; null on pages asked for with `after` "
                "(an exact count reads every matching index entry)",
            },
            "limit": {"type": "integer"},
            "offset": {"type": "integer"},
            "after": {"type": "integer", "nullable": True},
            "next": {
                "type": "string",
                "nullable": True,
                "description": "Path and query of the next page (by `after`); null on "
                "the last page",
            },
        }
    )


def health_operation(service: str) -> dict:
    """GET /health, as chassis.health.install_health serves it."""
    health = {
        "type": "object",
        "required": ["status", "checks"],
        "properties": {
            "service": {"type": "string", "enum": [service]},
            "status": {"type": "string", "enum": ["ok", "degraded", "unavailable"]},
            "checks": {
                "type": "object",
                "additionalProperties": {"type": "string", "enum": list(CHECK_RESULTS)},
            },
        },
    }
    return {
        "get": {
            "summary": "Health: 200 unless a check is unavailable (degraded when one is "
            "stale), else 503; byte-stable body",
            "operationId": "health",
            "responses": {
                "200": ok_response("Healthy", health),
                "503": ok_response("A check failed", health),
                "500": {"$ref": "#/components/responses/Error500"},
            },
        }
    }


def openapi_operation() -> dict:
    return {
        "get": {
            "summary": "This OpenAPI document",
            "operationId": "openapi",
            "responses": {"200": ok_response("The document", {"type": "object"})},
        }
    }


def install_openapi(app: Flask, document: Mapping) -> None:
    """GET /openapi.json serving the service's hand-written OpenAPI document."""
    body = json.dumps(document, sort_keys=True)
    app.add_url_rule(
        "/openapi.json",
        "openapi",
        lambda: Response(body, mimetype="application/json"),
        methods=["GET"],
    )
