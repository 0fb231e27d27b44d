"""The web UI's static files, served from the package's ui/ directory."""

from pathlib import Path

from devconsul.messages import Request, Response, text_response

# Consul's UI handler pattern; a request for "/ui" is redirected here like any
# other prefix pattern's (see routing.Router.canonical).
MOUNT = "/ui/"
UI_DIR = Path(__file__).resolve().parent / "ui"
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".txt": "text/plain; charset=utf-8",
}


def not_found() -> Response:
    return text_response(404, "404 page not found\n")


def serve(req: Request, ui_dir: Path = UI_DIR) -> Response:
    """A UI file as Consul's UI handler (agent/uiserver) answers it: Go's
    http.FileServer, which serves any method alike (HEAD without the body),
    over a redirectFS, which gives index.html for any path naming no file,
    so that the browser app can route it."""
    url = "/" + req.path[len(MOUNT) :]
    # FileServer's canonical paths: ".../index.html" is its directory, and
    # a file asked for as a directory loses the slash.
    if url.endswith("/index.html"):
        return _local_redirect(req, "./")
    target = _file(ui_dir, url) or _file(ui_dir, "/index.html")
    if target is None:
        return not_found()
    if url.endswith("/") and url != "/":
        return _local_redirect(req, "../" + url.rstrip("/").rsplit("/", 1)[-1])
    content_type = CONTENT_TYPES.get(target.suffix, "application/octet-stream")
    headers = {"Cache-Control": "no-cache"}
    return Response(200, target.read_bytes(), content_type, headers)


def _file(ui_dir: Path, url: str) -> Path | None:
    """The file `url` names under `ui_dir`; None for anything else, also for
    what escapes the directory (../, symlinks)."""
    root = ui_dir.resolve()
    target = (root / url.lstrip("/")).resolve()
    return target if target.is_relative_to(root) and target.is_file() else None


def _local_redirect(req: Request, location: str) -> Response:
    """Go's http localRedirect: a bare 301 to a relative path, query kept."""
    if req.raw_query:
        location += "?" + req.raw_query
    return Response(301, headers={"Location": location})
