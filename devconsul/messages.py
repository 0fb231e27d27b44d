"""Request and response objects passed between the HTTP server and endpoints."""

import json
from collections.abc import Generator
from dataclasses import dataclass, field
from urllib.parse import parse_qs, quote, unquote, urlsplit

from devconsul.decode import load_json


class Request:
    def __init__(self, method: str, target: str, headers, body: bytes):
        if target.startswith("/"):
            # Split by hand: urlsplit reads "//v1/kv" as host "v1", and Go's
            # ParseRequestURI takes it as a path (then redirected).
            path, _, self.raw_query = target.partition("?")
        else:  # absolute-form, http://host/path
            path, self.raw_query = urlsplit(target)[2:4]
        self.method = method
        self.path = unquote(path)
        self.query = parse_qs(self.raw_query, keep_blank_values=True)
        self.headers = headers
        self.body = body
        # The URL-decoded remainder after the matched route's prefix.
        self.arg = ""

    def has(self, name: str) -> bool:
        """Consul's presence-based flags: ?recurse, ?recurse=, ?recurse=1 all mean true."""
        return name in self.query

    def param(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[0] if values else default

    def params(self, name: str) -> list[str]:
        return self.query.get(name, [])

    def json(self):
        return load_json(self.body)


@dataclass
class Response:
    status: int = 200
    body: bytes = b""
    content_type: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    # A streamed body (/v1/agent/monitor): chunks sent as they come, None
    # meaning "nothing yet" so the server can notice a client that left.
    stream: Generator[bytes | None, None, None] | None = None


def encode_json(data, pretty: bool) -> bytes:
    # Compact unless ?pretty: the C encoder only runs without indent, and big
    # health answers would cost tens of milliseconds in the pure-Python one.
    # Like Go, escape <, > and & inside strings and write UTF-8 as is.
    if pretty:
        text = json.dumps(data, indent=4, ensure_ascii=False) + "\n"
    else:
        text = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    text = text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    return text.encode()


def json_response(req: Request, data, status: int = 200, headers=None) -> Response:
    return Response(
        status,
        encode_json(data, req.has("pretty")),
        "application/json",
        dict(headers or {}),
    )


def text_response(status: int, message: str, headers=None) -> Response:
    body = message.encode()
    return Response(status, body, "text/plain; charset=utf-8", dict(headers or {}))


# Go's url.URL.EscapedPath keeps these as they are in a path.
_PATH_SAFE = "/$&+,:;=@"
# Go's net/http htmlEscape (not Python's html.escape, which writes &quot;).
_HTML_ESCAPES = str.maketrans(
    {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&#34;", "'": "&#39;"}
)


def redirect_response(req: Request, path: str, keep_query: bool = True) -> Response:
    """A 301 to `path` (decoded) as Go's http.Redirect writes it: an HTML
    link body for GET, the Content-Type also for HEAD, neither for other
    methods. ServeMux's redirects keep the query."""
    location = quote(path, safe=_PATH_SAFE)
    if keep_query and req.raw_query:
        location += "?" + req.raw_query
    resp = Response(301, headers={"Location": location})
    if req.method in ("GET", "HEAD"):
        resp.content_type = "text/html; charset=utf-8"
    if req.method == "GET":
        link = location.translate(_HTML_ESCAPES)
        resp.body = f'<a href="{link}">Moved Permanently</a>.\n\n'.encode()
    return resp


def empty_response() -> Response:
    """Successful agent writes: 200 with an empty body."""
    return Response(200)
