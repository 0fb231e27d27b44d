import pytest

from gateway.paths import BadPath, clean_target, origin_form


@pytest.mark.parametrize(
    ("target", "path", "query"),
    [
        ("/api/users/42", "/api/users/42", ""),
        ("/api/orders?user_id=1&x=%2F", "/api/orders", "user_id=1&x=%2F"),
        ("/api/users/a%20b", "/api/users/a%20b", ""),
        ("/api/users/caf%C3%A9", "/api/users/caf%C3%A9", ""),
        ("//api//users///1", "/api/users/1", ""),
        ("/api/users/a@b.example", "/api/users/a@b.example", ""),
        ("/api/users/.well-known", "/api/users/.well-known", ""),
        ("/api/users/...", "/api/users/...", ""),
        ("/api/users/?", "/api/users/", ""),
    ],
)
def test_accepted_targets(target, path, query):
    assert clean_target(target) == (path, query)


@pytest.mark.parametrize(
    "target",
    [
        "http://evil.example/api/users",
        "*",
        "/api/users/../orders",
        "/api/users/./1",
        "/api/users/%2e%2e/orders",
        "/api/users/%2E/1",
        "/api/users/.%2e",
        "/api/users%2F..%2Forders",
        "/api/users%2forders",
        "/api/users%5c1",
        "/api/users\\..\\orders",
        "/api/users/%00",
        "/api/users/%0d%0aX-Injected:%201",
        "/api/users/\r\nX: 1",
        "/api/users/\x00",
        "/api/users/%zz",
        "/api/users/%4",
        "/api/users/caf\u00e9",
        "/api/users?q=a b",
    ],
)
def test_rejected_targets(target):
    with pytest.raises(BadPath):
        clean_target(target)


@pytest.mark.parametrize(
    ("target", "origin", "authority"),
    [
        ("http://gw.example/api/users?x=1", "/api/users?x=1", "gw.example"),
        ("HTTPS://gw.example:8443/api/users", "/api/users", "gw.example:8443"),
        ("http://[::1]:8000/api//users", "/api//users", "[::1]:8000"),
        ("http://gw.example", "/", "gw.example"),
        ("http://gw.example?x=1", "/?x=1", "gw.example"),
    ],
)
def test_an_absolute_form_target_has_an_origin_form_and_an_authority(
    target, origin, authority
):
    assert origin_form(target) == (origin, authority)


@pytest.mark.parametrize(
    "target",
    [
        "*",  # OPTIONS *
        "gw.example:443",  # CONNECT
        "ftp://gw.example/api/users",
        "http:///api/users",  # no authority
        "http://user:secret@gw.example/api/users",
        "http://gw.example/api/users#fragment",
    ],
)
def test_other_request_target_forms_are_refused(target):
    with pytest.raises(BadPath):
        origin_form(target)
