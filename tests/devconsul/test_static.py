from devconsul.messages import Request
from devconsul.static import serve


def _get(path: str, ui_dir):
    return serve(Request("GET", path, {}, b""), ui_dir)


def test_files_with_content_types(tmp_path):
    (tmp_path / "index.html").write_text("<h1>hi</h1>")
    (tmp_path / "app.js").write_text("x=1")
    (tmp_path / "style.css").write_text("a{}")
    index = _get("/ui/", tmp_path)
    assert (index.status, index.body) == (200, b"<h1>hi</h1>")
    assert index.content_type == "text/html; charset=utf-8"
    assert _get("/ui/app.js", tmp_path).content_type == "text/javascript; charset=utf-8"
    assert _get("/ui/style.css", tmp_path).content_type == "text/css; charset=utf-8"


def test_missing_and_traversal_are_404(tmp_path):
    ui = tmp_path / "ui"
    ui.mkdir()
    (tmp_path / "secret.txt").write_text("no")
    assert _get("/ui/nope.js", ui).status == 404
    assert _get("/ui/../secret.txt", ui).status == 404
    assert _get("/ui/%2e%2e/secret.txt", ui).status == 404
