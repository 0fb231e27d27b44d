"""user-service's OpenAPI 3 document, served at /openapi.json."""

from chassis.openapi import (
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
from user_service.validation import EMAIL_MAX, EMAIL_PATTERN, NAME_MAX, NAME_PATTERN

NAME = {
    "type": "string",
    "minLength": 1,
    "maxLength": NAME_MAX,
    "pattern": NAME_PATTERN,
}
EMAIL = {
    "type": "string",
    "maxLength": EMAIL_MAX,
    "pattern": EMAIL_PATTERN,
    "description": "Stored stripped and lower-cased; unique case-insensitively",
}
USER = object_schema(
    {
        "id": {"type": "integer", "minimum": 1},
        "name": {"type": "string"},
        "email": {"type": "string"},
        **TIMESTAMPS,
    }
)
USER_INPUT = object_schema({"name": NAME, "email": EMAIL})
USER_PATCH = object_schema({"name": NAME, "email": EMAIL}, partial=True)
USER_REF = schema_ref("User")

PATHS = {
    "/users": {
        "get": {
            "summary": "List users by id, paginated",
            "operationId": "listUsers",
            "parameters": PAGE_PARAMETERS,
            "responses": {
                "200": ok_response("A page of users", page_schema("User")),
                **error_responses(400),
            },
        },
        "post": {
            "summary": "Create a user",
            "operationId": "createUser",
            "requestBody": json_request("UserInput"),
            "responses": {
                "201": ok_response("Created", USER_REF, location_header("/users/<id>")),
                **error_responses(400, 409, 413, 415),
            },
        },
    },
    "/users/{user_id}": {
        "parameters": [path_id("user_id")],
        "get": {
            "summary": "Get a user",
            "operationId": "getUser",
            "responses": {
                "200": ok_response("The user", USER_REF),
                **error_responses(404),
            },
        },
        "put": {
            "summary": "Replace a user (every field required)",
            "operationId": "replaceUser",
            "requestBody": json_request("UserInput"),
            "responses": {
                "200": ok_response("Replaced", USER_REF),
                **error_responses(400, 404, 409, 413, 415),
            },
        },
        "patch": {
            "summary": "Change some fields of a user",
            "operationId": "patchUser",
            "requestBody": json_request("UserPatch"),
            "responses": {
                "200": ok_response("Changed", USER_REF),
                **error_responses(400, 404, 409, 413, 415),
            },
        },
        "delete": {
            "summary": "Delete a user. Their orders stay in order-service (see README); new orders are refused",
            "operationId": "deleteUser",
            "responses": {"204": ok_response("Deleted"), **error_responses(404)},
        },
    },
}

DOCUMENT = openapi_document(
    "user-service",
    "Users of Switchyard.",
    PATHS,
    {"User": USER, "UserInput": USER_INPUT, "UserPatch": USER_PATCH},
)
