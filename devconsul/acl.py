"""ACL tokens. Off by default (any token accepted and ignored, /v1/acl/* answers
401 like a Consul without ACLs). With ``-acl-token TOKEN`` one management token
guards every API request, with Consul's 403 texts.

Exempt in ACL mode: the web UI's static files and /v1/status/* -- Consul does
not check ACLs on the status endpoints either, and process supervisors (our
test fixtures among them) probe /v1/status/leader without a token. The UI's own
API calls are not exempt: like Consul's UI it asks for a token on a 403, keeps it
in localStorage and sends it as X-Consul-Token (devconsul/ui/app.js).
"""

from devconsul.errors import HTTPError
from devconsul.messages import Request

_EXEMPT_PREFIXES = ("/v1/status/",)


def request_token(req: Request) -> str:
    """First non-empty of ?token=, X-Consul-Token, Authorization: Bearer."""
    token = req.param("token") or req.headers.get("X-Consul-Token") or ""
    if not token:
        scheme, _, value = (req.headers.get("Authorization") or "").partition(" ")
        if scheme.lower() == "bearer":
            token = value.strip()
    return token


def enforce(req: Request, required: str | None) -> None:
    if required is None or not req.path.startswith("/v1/"):
        return
    if req.path.startswith(_EXEMPT_PREFIXES):
        return
    token = request_token(req)
    if not token or token == "anonymous":
        raise HTTPError(403, "Permission denied")
    if token != required:
        raise HTTPError(403, "ACL not found")
