"""A tiny upstream for gateway tests, as WSGI: served in a thread or by gunicorn.

GET  <any>/status/<n>      answers status n
GET  <any>/slow/<seconds>  sleeps, then 200
     /health               200 (503 while the file named by UPSTREAM_HEALTH_FILE says "down")
     <any>?...limit=...    200, a page as chassis.pages answers it (`items`, `total`, `next`):
                           the echo, then {"id": 2}... up to `rows` rows, `limit` at a time
     anything else         200 JSON echo of method, raw target, headers, body
Every answer carries `X-Served-By: <name>`.
"""

import json
import os
import threading
import time
from urllib.parse import parse_qs

from werkzeug.serving import make_server

from tests.support.loopback import serve_in_background, shut

__all__ = ["ThreadedUpstream", "app", "echo_app"]


def echo_app(
    name: str,
    health_file: str = "",
    status: int | None = None,
    delay: float = 0.0,
    rows: int = 1,
    meet: threading.Barrier | None = None,
):
    forced_status = status

    def application(environ, start_response):
        target = (
            environ.get("RAW_URI") or environ.get("REQUEST_URI") or environ["PATH_INFO"]
        )
        path = environ["PATH_INFO"]
        parts = path.strip("/").split("/")
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        status, payload = 200, None
        if path == "/health":
            down = (
                health_file
                and os.path.exists(health_file)
                and _read(health_file) == "down"
            )
            status, payload = (
                (503, b'{"status":"down"}') if down else (200, b'{"status":"ok"}')
            )
        elif len(parts) >= 2 and parts[-2] == "status":
            status = int(parts[-1])
        elif len(parts) >= 2 and parts[-2] == "slow":
            time.sleep(float(parts[-1]))
        elif forced_status is not None:
            status = forced_status
        if delay and path != "/health":
            time.sleep(delay)
        if meet is not None and path != "/health":
            meet.wait()  # answers only once every party's request is in (else it breaks)
        if payload is None:
            headers = {
                k[5:].replace("_", "-").lower(): v
                for k, v in environ.items()
                if k.startswith("HTTP_")
            }
            payload = json.dumps(
                {
                    "served_by": name,
                    "method": environ["REQUEST_METHOD"],
                    "target": target,
                    "headers": headers,
                    "content_type": environ.get("CONTENT_TYPE", ""),
                    "body": body.decode("latin-1"),
                }
            )
            if "limit=" in environ.get("QUERY_STRING", ""):
                payload = _first_page(payload, rows, environ)
            payload = payload.encode()
        start_response(
            f"{status} X",
            [
                ("Content-Type", "application/json"),
                ("Content-Length", str(len(payload))),
                ("X-Served-By", name),
            ],
        )
        return [] if environ["REQUEST_METHOD"] == "HEAD" else [payload]

    return application


app = echo_app(
    os.environ.get("UPSTREAM_NAME", "upstream"),
    os.environ.get("UPSTREAM_HEALTH_FILE", ""),
)


def _first_page(echo: str, rows: int, environ) -> str:
    """The first page of `rows` rows; a `next` link, under the X-Forwarded-Prefix the
    gateway sent, to the rest (as chassis.pages builds it)."""
    limit = int(parse_qs(environ["QUERY_STRING"])["limit"][0])
    items = [json.loads(echo), *({"id": i} for i in range(2, min(rows, limit) + 1))]
    more = rows > limit
    prefix = environ.get("HTTP_X_FORWARDED_PREFIX", "")
    link = f"{prefix}{environ['PATH_INFO']}?limit={limit}&after={limit}"
    page = {"items": items, "total": rows, "limit": limit, "offset": 0, "after": None}
    return json.dumps({**page, "next": link if more else None})


def _read(path: str) -> str:
    with open(path) as f:
        return f.read()


class ThreadedUpstream:
    """`echo_app` on a free loopback port, in a daemon thread of the test process."""

    def __init__(
        self,
        name: str,
        status: int | None = None,
        delay: float = 0.0,
        rows: int = 1,
        meet: threading.Barrier | None = None,
    ):
        self.name = name
        self.server = make_server(
            "127.0.0.1",
            0,
            echo_app(name, "", status, delay, rows, meet),
            threaded=True,
        )
        self.port = self.server.server_port
        serve_in_background(self.server)

    def stop(self) -> None:
        shut(self.server)
