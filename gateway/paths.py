"""Request-target hygiene before routing: what is forwarded is what was routed.

The gateway routes on the raw request URI (not the decoded PATH_INFO) and forwards the same
bytes, so percent-encoding reaches the upstream exactly as the client sent it. Anything that
could make the upstream see a different path than the one routed -- dot segments (plain or
encoded), encoded slashes or backslashes, backslashes, control characters, NUL, malformed
escapes -- is rejected with 400; runs of slashes are merged (so `//host` is only a path).
"""

import re
from urllib.parse import unquote

__all__ = ["API_PREFIX", "BadPath", "clean_target", "origin_form"]

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
# scheme://authority[/path][?query]; no userinfo (RFC 9110 section 4.2.4 forbids it in http
# URIs sent in requests) and no fragment.
_ABSOLUTE_FORM = re.compile(r"(?i:https?)://([^/?#@]+)((?:[/?][^#]*)?)", re.DOTALL)


class BadPath(ValueError):
    """The request target cannot be routed safely; answered with 400."""


def origin_form(target: str) -> tuple[str, str]:
    """(origin-form target, authority) of an absolute-form one (`http://host:8000/api/x?q`),
    what clients send when told the gateway is their proxy. RFC 9112 section 3.2.2: a server
    MUST accept it, and its authority replaces the Host header."""
    match = _ABSOLUTE_FORM.fullmatch(target)
    if match is None:
        raise BadPath("request target must be an absolute path or an http(s) URI")
    authority, rest = match.groups()
    return ("/" + rest if rest[:1] != "/" else rest), authority


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
