"""Request-target hygiene before routing: what is forwarded is what was routed.

The gateway routes on the raw request URI (not the decoded PATH_INFO) and forwards the same
bytes, so percent-encoding reaches the upstream exactly as the client sent it. Anything that
could make the upstream see a different path than the one routed -- dot segments (plain or
encoded), encoded slashes or backslashes, backslashes, control characters, NUL, malformed
escapes -- is rejected with 400; runs of slashes are merged (so `//host` is only a path).
"""

import re
from urllib.parse import quote, unquote

__all__ = ["API_PREFIX", "BadPath", "clean_target", "raw_target"]

API_PREFIX = "/api"

_BAD_CHARS = re.compile(r"[\x00-\x20\x7f\\]|[^\x00-\x7f]")
_BAD_QUERY_CHARS = re.compile(r"[\x00-\x20\x7f]|[^\x00-\x7f]")
_ESCAPE = re.compile(r"%(..)?", re.DOTALL)
# Escapes that decode to a separator or a control character change what the path means.
_FORBIDDEN_ESCAPES = {"2f", "5c", "7f"} | {f"{n:02x}" for n in range(0x20)}
_SLASHES = re.compile(r"/{2,}")
# Most paths: no escape, no dot, no backslash, no run of slashes -- nothing to check but
# the query.
_PLAIN_PATH = re.compile(r"(?:/[A-Za-z0-9_~-]+)+/?|/")


class BadPath(ValueError):
    """The request target cannot be routed safely; answered with 400."""


def raw_target(environ) -> str:
    """The request target as the client sent it (gunicorn RAW_URI, else REQUEST_URI)."""
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if raw:
        return raw
    path = quote(environ.get("PATH_INFO", "/"), safe="/:@!$&'()*+,;=-._~")
    query = environ.get("QUERY_STRING", "")
    return f"{path}?{query}" if query else path


def clean_target(target: str) -> tuple[str, str]:
    """(path, query) of an origin-form target with the path made safe, or BadPath."""
    path, _, query = target.partition("?")
    if _PLAIN_PATH.fullmatch(path):
        if _BAD_QUERY_CHARS.search(query):
            raise BadPath("query contains a forbidden character")
        return path, query
    if not path.startswith("/"):
        raise BadPath("request target must be an absolute path")
    if _BAD_CHARS.search(path):
        raise BadPath("path contains a forbidden character")
    if _BAD_QUERY_CHARS.search(query):
        raise BadPath("query contains a forbidden character")
    for match in _ESCAPE.finditer(path):
        code = (match.group(1) or "").lower()
        if not re.fullmatch(r"[0-9a-f]{2}", code):
            raise BadPath("path contains a malformed percent-escape")
        if code in _FORBIDDEN_ESCAPES:
            raise BadPath("path contains an encoded separator or control character")
    path = _SLASHES.sub("/", path)
    if any(unquote(segment) in (".", "..") for segment in path.split("/")):
        raise BadPath("path contains a dot segment")
    return path, query
