import pytest

from devconsul.acl import enforce, request_token
from devconsul.errors import HTTPError
from devconsul.messages import Request


def _req(path="/v1/agent/services", query="", headers=None):
    return Request("GET", f"{path}?{query}", headers or {}, b"")


def test_token_sources_in_consul_order():
    both = {"X-Consul-Token": "header", "Authorization": "Bearer bearer"}
    assert request_token(_req(query="token=query", headers=both)) == "query"
    assert request_token(_req(headers=both)) == "header"
    assert request_token(_req(headers={"Authorization": "Bearer bearer"})) == "bearer"
    assert request_token(_req(headers={"Authorization": "Basic xyz"})) == ""


def test_disabled_allows_anything():
    enforce(_req(query="token=whatever"), None)


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("", "Permission denied"),
        ("token=anonymous", "Permission denied"),
        ("token=x", "ACL not found"),
    ],
)
def test_denials(query, message):
    with pytest.raises(HTTPError) as err:
        enforce(_req(query=query), "secret")
    assert (err.value.status, err.value.message) == (403, message)


def test_exemptions():
    enforce(_req("/v1/status/leader"), "secret")
    enforce(_req("/ui/app.js"), "secret")
    enforce(_req(query="token=secret"), "secret")
