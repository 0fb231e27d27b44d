import json
import ssl
import subprocess
import urllib.parse

import pytest
import requests

from chassis.env import ConfigError
from discovery.consul_client import ConsulSettings, make_consul
from tests.discovery.stubs import StubServer


@pytest.mark.parametrize(
    "environ, expected",
    [
        ({}, {"host": "127.0.0.1", "port": 8500, "scheme": "http", "token": None}),
        (
            {"CONSUL_HTTP_ADDR": "consul:8500"},
            {"host": "consul", "port": 8500, "scheme": "http"},
        ),
        ({"CONSUL_HTTP_ADDR": "10.0.0.5"}, {"host": "10.0.0.5", "port": 8500}),
        ({"CONSUL_HTTP_ADDR": "http://c.example:9"}, {"host": "c.example", "port": 9}),
        (
            {"CONSUL_HTTP_ADDR": "https://c.example:8501"},
            {"scheme": "https", "port": 8501},
        ),
        ({"CONSUL_HTTP_ADDR": "https://c.example"}, {"scheme": "https", "port": 443}),
        ({"CONSUL_HTTP_ADDR": "https://c.example/"}, {"scheme": "https", "port": 443}),
        ({"CONSUL_HTTP_ADDR": "[::1]:8500"}, {"host": "::1", "port": 8500}),
        (
            {"CONSUL_HTTP_ADDR": "c:8501", "CONSUL_HTTP_SSL": "true"},
            {"scheme": "https"},
        ),
        ({"CONSUL_HTTP_TOKEN": " s3cret "}, {"token": "s3cret"}),
        ({"CONSUL_HTTP_TOKEN": ""}, {"token": None}),
        ({"CONSUL_TIMEOUT": "2.5"}, {"timeout": 2.5}),
        ({"CONSUL_HTTP_SSL_VERIFY": "false"}, {"verify": False}),
        ({"CONSUL_CACERT": "/etc/ca.pem"}, {"verify": "/etc/ca.pem"}),
        ({}, {"cert": None}),
        ({"CONSUL_CLIENT_CERT": "/etc/both.pem"}, {"cert": "/etc/both.pem"}),
        (
            {"CONSUL_CLIENT_CERT": "/etc/c.pem", "CONSUL_CLIENT_KEY": "/etc/c.key"},
            {"cert": ("/etc/c.pem", "/etc/c.key")},
        ),
    ],
)
def test_settings_from_env(environ, expected):
    settings = ConsulSettings.from_env(environ)
    for field, value in expected.items():
        assert getattr(settings, field) == value


@pytest.mark.parametrize(
    "environ, variable",
    [
        ({"CONSUL_HTTP_ADDR": "ftp://c:1"}, "CONSUL_HTTP_ADDR"),
        ({"CONSUL_HTTP_ADDR": "c:notaport"}, "CONSUL_HTTP_ADDR"),
        ({"CONSUL_HTTP_ADDR": "c:99999"}, "CONSUL_HTTP_ADDR"),
        ({"CONSUL_HTTP_ADDR": "http://:8500"}, "CONSUL_HTTP_ADDR"),
        ({"CONSUL_HTTP_ADDR": "http://c:8500/v1"}, "CONSUL_HTTP_ADDR"),
        ({"CONSUL_HTTP_SSL": "maybe"}, "CONSUL_HTTP_SSL"),
        ({"CONSUL_HTTP_SSL_VERIFY": "2"}, "CONSUL_HTTP_SSL_VERIFY"),
        ({"CONSUL_TIMEOUT": "soon"}, "CONSUL_TIMEOUT"),
        ({"CONSUL_TIMEOUT": "0"}, "CONSUL_TIMEOUT"),
        ({"CONSUL_CLIENT_KEY": "/etc/c.key"}, "CONSUL_CLIENT_KEY"),
    ],
)
def test_bad_values_name_the_variable(environ, variable):
    with pytest.raises(ConfigError) as err:
        ConsulSettings.from_env(environ)
    assert str(err.value).startswith(f"{variable}:")


def consul_stub(request):
    """Just enough of Consul for the calls discovery makes."""
    if request.path.startswith("/v1/health/service/"):
        return 200, {"X-Consul-Index": "7", "Content-Type": "application/json"}, b"[]"
    if request.path.startswith("/v1/catalog/services"):
        return 200, {"X-Consul-Index": "7", "Content-Type": "application/json"}, b"{}"
    if request.path == "/v1/agent/services":
        return 200, {"Content-Type": "application/json"}, json.dumps({}).encode()
    return 200, {}, b""


def test_client_sends_the_token_on_every_call(monkeypatch):
    # py-consul would prefer os.environ's token over the argument; the settings must win.
    monkeypatch.setenv("CONSUL_HTTP_TOKEN", "from-os-environ")
    with StubServer(consul_stub) as stub:
        settings = ConsulSettings(port=stub.port, token="t0ken")
        client = make_consul(settings)
        client.health.service("user-service", passing=True)
        client.health.service("user-service", index=3, wait="10ms")
        client.agent.services()
        client.agent.service.register("user-service", service_id="u-1", port=1)
        client.agent.service.maintenance("u-1", True, reason="drain")
        client.agent.service.deregister("u-1")
    assert len(stub.requests) == 6
    assert [h.get("X-Consul-Token") for _, _, h in stub.requests] == ["t0ken"] * 6


def test_client_without_token_sends_none(monkeypatch):
    monkeypatch.delenv("CONSUL_HTTP_TOKEN", raising=False)
    with StubServer(consul_stub) as stub:
        make_consul(ConsulSettings(port=stub.port)).agent.services()
    assert "X-Consul-Token" not in stub.requests[0][2]


def test_client_uses_settings_address_and_timeout():
    client = make_consul(ConsulSettings(host="10.1.2.3", port=8600, timeout=1.5))
    assert client.http.base_uri == "http://10.1.2.3:8600"
    assert client.http.connections_timeout == 1.5


def query_of(request) -> dict[str, list[str]]:
    return urllib.parse.parse_qs(urllib.parse.urlsplit(request[1]).query, True)


def test_health_and_catalog_reads_are_stale_and_agent_calls_are_left_alone():
    with StubServer(consul_stub) as stub:
        client = make_consul(ConsulSettings(port=stub.port))
        client.health.service("user-service", passing=True)
        client.health.service("user-service", index=3, wait="10ms")
        client.catalog.services(index=3, wait="10ms")
        client.catalog.services(consistency="consistent")  # named: as asked
        client.agent.services()
    queries = [query_of(r) for r in stub.requests]
    assert [q.get("stale") for q in queries[:3]] == [["1"]] * 3
    assert "stale" not in queries[3] and queries[3]["consistent"] == ["1"]
    assert queries[4] == {}


def self_signed(directory, name: str) -> tuple[str, str]:
    """A certificate for 127.0.0.1 that is its own CA, and its key: (cert file, key file)."""
    cert, key = str(directory / f"{name}.pem"), str(directory / f"{name}.key")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"]
        + ["-keyout", key, "-out", cert, "-subj", f"/CN={name}"]
        + ["-addext", "subjectAltName=IP:127.0.0.1"],
        check=True,
        capture_output=True,
    )
    return cert, key


def test_the_client_certificate_is_presented_to_an_agent_that_verifies_clients(
    tmp_path,
):
    """An agent with `verify_incoming` on its HTTPS port refuses a client without one."""
    agent_cert, agent_key = self_signed(tmp_path, "agent")
    client_cert, client_key = self_signed(tmp_path, "client")
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(agent_cert, agent_key)
    tls.verify_mode = ssl.CERT_REQUIRED
    tls.load_verify_locations(client_cert)
    with StubServer(consul_stub) as stub:
        stub.server.socket = tls.wrap_socket(stub.server.socket, server_side=True)
        environ = {
            "CONSUL_HTTP_ADDR": f"https://127.0.0.1:{stub.port}",
            "CONSUL_CACERT": agent_cert,
            "CONSUL_CLIENT_CERT": client_cert,
            "CONSUL_CLIENT_KEY": client_key,
        }
        assert make_consul(ConsulSettings.from_env(environ)).agent.services() == {}
        del environ["CONSUL_CLIENT_CERT"], environ["CONSUL_CLIENT_KEY"]
        with pytest.raises(requests.exceptions.ConnectionError):
            make_consul(ConsulSettings.from_env(environ)).agent.services()
