import pytest

from devconsul.messages import Request
from devconsul.static import serve


def _request(path: str, ui_dir, method: str = "GET"):
    return serve(Request(method, path, {}, b""), ui_dir)


@pytest.fixture
def ui(tmp_path):
    ui = tmp_path / "ui"
    ui.mkdir()
    (ui / "index.html").write_text("<h1>hi</h1>")
    (ui / "app.js").write_text("x=1")
    (ui / "style.css").write_text("a{}")
    return ui


def test_files_with_content_types(ui):
    index = _request("/ui/", ui)
    assert (index.status, index.body) == (200, b"<h1>hi</h1>")
    assert index.content_type == "text/html; charset=utf-8"
    assert _request("/ui/app.js", ui).content_type == "text/javascript; charset=utf-8"
    assert _request("/ui/style.css", ui).content_type == "text/css; charset=utf-8"


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "OPTIONS", "PATCH"])
def test_any_method_gets_the_file(ui, method):
    """Go's http.FileServer, Consul's UI handler, does not look at the method."""
    r = _request("/ui/app.js", ui, method)
    assert (r.status, r.body) == (200, b"x=1")


def test_a_path_naming_no_file_gets_index_html(ui):
    """uiserver's redirectFS opens index.html for whatever is not found, so
    the browser app routes deep links such as /ui/dc1/services."""
    (ui.parent / "secret.txt").write_text("no")
    for path in ("/ui/dc1/services", "/ui/nope.js", "/ui/../secret.txt"):
        r = _request(path, ui)
        assert (r.status, r.body, r.content_type) == (
            200,
            b"<h1>hi</h1>",
            "text/html; charset=utf-8",
        ), path


def test_without_index_html_a_missing_file_is_404(tmp_path):
    assert _request("/ui/", tmp_path).status == 404
    assert _request("/ui/nope.js", tmp_path).status == 404


@pytest.mark.parametrize(
    ("path", "location"),
    [
        ("/ui/index.html", "./"),
        ("/ui/dc1/index.html?x=1", "./?x=1"),
        ("/ui/app.js/", "../app.js"),
        ("/ui/dc1/services/", "../services"),
    ],
)
def test_file_server_redirects(ui, path, location):
    """http.FileServer's canonical paths: an index.html goes to its
    directory, a file asked for with a trailing slash loses it; a bare 301
    to a relative location, the query kept."""
    r = _request(path, ui, "PUT")
    assert (r.status, r.headers, r.body) == (301, {"Location": location}, b"")
