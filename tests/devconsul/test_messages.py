import json

from devconsul.messages import Request, encode_json


def test_json_is_compact_and_escapes_like_go():
    body = encode_json({"a": "<&>", "b": "\u00e9"}, pretty=False)
    assert body == b'{"a":"\\u003c\\u0026\\u003e","b":"\xc3\xa9"}'
    assert json.loads(body) == {"a": "<&>", "b": "\u00e9"}


def test_pretty_uses_four_spaces_and_a_newline():
    assert encode_json([1], pretty=True) == b"[\n    1\n]\n"


def test_flags_are_presence_based_and_path_is_decoded():
    req = Request("GET", "/v1/kv/a%2Fb?recurse&keys=&x=1&tag=a&tag=b", {}, b"")
    assert req.path == "/v1/kv/a/b"
    assert req.has("recurse") and req.has("keys") and not req.has("raw")
    assert req.params("tag") == ["a", "b"]
