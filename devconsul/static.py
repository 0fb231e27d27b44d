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
    if req.method not in ("GET", "HEAD"):
        return text_response(405, f"method {req.method} not allowed")
    name = req.path[len(MOUNT) :] or "index.html"
    target = (ui_dir / name).resolve()
    # Refuse anything that escapes the UI directory (../, symlinks).
    if not target.is_relative_to(ui_dir.resolve()) or not target.is_file():
        return not_found()
    content_type = CONTENT_TYPES.get(target.suffix, "application/octet-stream")
    headers = {"Cache-Control": "no-cache"}
    return Response(200, target.read_bytes(), content_type, headers)
