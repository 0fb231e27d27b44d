import pytest

from gateway.paths import BadPath, clean_target, raw_target


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
    ("environ", "expected"),
    [
        ({"RAW_URI": "/a%2Fb?x=1", "PATH_INFO": "/a/b"}, "/a%2Fb?x=1"),
        ({"REQUEST_URI": "/a%20b", "PATH_INFO": "/a b"}, "/a%20b"),
        ({"PATH_INFO": "/a b", "QUERY_STRING": "x=1"}, "/a%20b?x=1"),
        ({"PATH_INFO": "/a"}, "/a"),
    ],
)
def test_raw_target_prefers_the_uri_as_sent(environ, expected):
    assert raw_target(environ) == expected
