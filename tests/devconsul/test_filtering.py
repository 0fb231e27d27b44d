import pytest

from devconsul.errors import HTTPError
from devconsul.filtering import apply_filter, request_filter
from devconsul.messages import Request


def _req(query: str) -> Request:
    return Request("GET", f"/v1/agent/services?{query}", {}, b"")


def test_no_filter_keeps_everything():
    assert request_filter(_req("")) is None
    assert apply_filter(None, [{"a": 1}]) == [{"a": 1}]


def test_filter_selects():
    predicate = request_filter(_req("filter=Port%20%3D%3D%2080"))
    assert apply_filter(predicate, [{"Port": 80}, {"Port": 81}]) == [{"Port": 80}]


def test_bad_expression_is_500_with_consul_prefix():
    with pytest.raises(HTTPError) as err:
        request_filter(_req("filter=Port%20%3D%3D%3D"))
    assert err.value.status == 500
    assert err.value.message.startswith(
        "Failed to create boolean expression evaluator: "
    )
