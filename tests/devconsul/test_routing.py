import pytest

from devconsul.errors import HTTPError
from devconsul.routing import Route, Router, check_method


def handler(app, req):
    return None


def test_exact_beats_prefix_and_longest_prefix_wins():
    router = Router(
        [
            Route("/v1/agent/service/", ("GET",), handler, prefix=True),
            Route("/v1/agent/service/register", ("PUT",), handler),
            Route("/v1/agent/service/deregister/", ("PUT",), handler, prefix=True),
        ]
    )
    route, arg = router.match("/v1/agent/service/register")
    assert (route.path, arg) == ("/v1/agent/service/register", "")
    route, arg = router.match("/v1/agent/service/deregister/a/b")
    assert (route.path, arg) == ("/v1/agent/service/deregister/", "a/b")
    route, arg = router.match("/v1/agent/service/web-1")
    assert (route.path, arg) == ("/v1/agent/service/", "web-1")
    assert router.match("/v1/nope") is None


def test_wrong_method_is_405_with_allow():
    with pytest.raises(HTTPError) as err:
        check_method(Route("/x", ("PUT",), handler), "GET")
    assert err.value.status == 405
    assert err.value.message == "method GET not allowed"
    assert err.value.headers == {"Allow": "OPTIONS,PUT"}


@pytest.mark.parametrize(
    ("path", "canonical"),
    [
        ("/v1/kv/foo//bar", "/v1/kv/foo/bar"),
        ("/v1/kv//lead", "/v1/kv/lead"),
        ("//v1/kv/x", "/v1/kv/x"),
        ("/v1/kv/a/./b", "/v1/kv/a/b"),
        ("/v1/kv/a/../b", "/v1/kv/b"),
        ("/v1/kv/a/b/..", "/v1/kv/a"),
        ("/../v1/kv/a", "/v1/kv/a"),
        ("/v1/kv/dir//", "/v1/kv/dir/"),
        ("/v1/kv/dir/./", "/v1/kv/dir/"),
        ("/v1/kv/dir/", "/v1/kv/dir/"),
        # Go's redirectToPathSlash: only the prefix pattern exists.
        ("/v1/kv", "/v1/kv/"),
        ("/v1//kv", "/v1/kv/"),
        ("/v1/agent/services", "/v1/agent/services"),
    ],
)
def test_canonical_path_is_go_servemux_cleanpath(path, canonical):
    router = Router(
        [
            Route("/v1/kv/", ("GET",), handler, prefix=True),
            Route("/v1/agent/services", ("GET",), handler),
        ]
    )
    assert router.canonical(path) == canonical


def test_a_mount_redirects_like_a_prefix_route():
    """The UI is served outside the route table, but Go's ServeMux redirects
    "/ui" to its "/ui/" pattern as it does for any prefix pattern."""
    router = Router([Route("/v1/kv/", ("GET",), handler, prefix=True)], ["/ui/"])
    assert router.canonical("/ui") == "/ui/"
    assert router.canonical("/ui//app.js") == "/ui/app.js"
    assert router.match("/ui/") is None
