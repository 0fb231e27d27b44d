"""/v1/acl/* and /v1/agent/token/*.

Without -acl-token these answer 401 ``ACL support disabled`` like a Consul with
ACLs off (py-consul maps it to ACLDisabled). With it, only ``token/self`` is
implemented: enough for clients that check their token on start-up.
"""

from devconsul.acl import request_token
from devconsul.errors import HTTPError
from devconsul.messages import Request, Response, json_response
from devconsul.routing import Route

_ANY = ("GET", "PUT", "POST", "DELETE")


def _require_acls(app) -> None:
    if app.config.acl_token is None:
        raise HTTPError(401, "ACL support disabled")


def acl_endpoint(app, req: Request) -> Response:
    _require_acls(app)
    if req.arg == "token/self" and req.method == "GET":
        token = request_token(req)
        return json_response(
            req,
            {
                "AccessorID": "00000000-0000-0000-0000-000000000001",
                "SecretID": token,
                "Description": "devconsul management token",
                "Policies": [
                    {
                        "ID": "00000000-0000-0000-0000-000000000001",
                        "Name": "global-management",
                    }
                ],
                "Local": False,
                "CreateTime": "2026-01-01T00:00:00Z",
                "Hash": "",
                "CreateIndex": 1,
                "ModifyIndex": 1,
            },
        )
    raise HTTPError(404, "devconsul implements only GET /v1/acl/token/self")


def agent_token(app, req: Request) -> Response:
    _require_acls(app)
    raise HTTPError(404, "devconsul does not support setting agent tokens")


ROUTES = [
    Route("/v1/acl/", _ANY, acl_endpoint, prefix=True),
    Route("/v1/agent/token/", ("PUT",), agent_token, prefix=True),
]
