import shutil
import socket
import ssl
import subprocess

import pytest

from devconsul.definitions import CheckDefinition
from devconsul.probes import http_probe, http_status, tcp_probe


@pytest.mark.parametrize(
    ("code", "status"),
    [
        (200, "passing"),
        (204, "passing"),
        (429, "warning"),
        (500, "critical"),
        (404, "critical"),
    ],
)
def test_http_status_rule(code, status):
    assert http_status(code) == status


def test_http_output_like_consul(target):
    target.routes["/busy"] = (429, '{"status":"ok"}')
    url = f"{target.url}/busy"
    status, output = http_probe(CheckDefinition(http=url), timeout=2)
    assert status == "warning"
    assert output == f'HTTP GET {url}: 429 Too Many Requests Output: {{"status":"ok"}}'


def test_method_headers_body_and_defaults(target):
    check = CheckDefinition(
        http=f"{target.url}/health",
        method="POST",
        header={"X-Probe": ["1"], "Host": ["svc.local"]},
        body="ping",
    )
    status, output = http_probe(check, timeout=2)
    assert status == "passing", output
    seen = target.requests[-1]
    assert (seen["method"], seen["body"]) == ("POST", b"ping")
    assert seen["headers"]["X-Probe"] == "1"
    assert seen["headers"]["Host"] == "svc.local"
    assert seen["headers"]["User-Agent"] == "Consul Health Check"
    assert seen["headers"]["Accept"] == "text/plain, text/*, */*"


def test_redirects_are_followed_unless_disabled(target):
    target.routes["/old"] = (302, "/health")
    url = f"{target.url}/old"
    assert http_probe(CheckDefinition(http=url), timeout=2)[0] == "passing"
    status, output = http_probe(CheckDefinition(http=url, disable_redirects=True), 2)
    assert (status, output) == ("critical", f"HTTP GET {url}: 302 Found Output: ")


def test_output_body_is_capped(target):
    target.routes["/big"] = (200, "x" * 10000)
    _, output = http_probe(CheckDefinition(http=f"{target.url}/big"), timeout=2)
    assert output.endswith("Output: " + "x" * 4096)


def test_refused_connection_text(closed_port):
    url = f"http://127.0.0.1:{closed_port}/"
    status, output = http_probe(CheckDefinition(http=url), timeout=2)
    assert status == "critical"
    assert output == (
        f'Get "{url}": dial tcp 127.0.0.1:{closed_port}: connect: connection refused'
    )


def test_timeout_is_critical_and_bounded(target):
    target.delay = 1.0
    status, output = http_probe(CheckDefinition(http=f"{target.url}/health"), 0.2)
    assert status == "critical"
    assert "Client.Timeout exceeded" in output


def test_tcp_success_and_refusal(closed_port):
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        address = f"127.0.0.1:{listener.getsockname()[1]}"
        assert tcp_probe(address, 1) == ("passing", f"TCP connect {address}: Success")
    address = f"127.0.0.1:{closed_port}"
    assert tcp_probe(address, 1) == (
        "critical",
        f"dial tcp {address}: connect: connection refused",
    )


@pytest.fixture
def tls_target(target, tmp_path):
    """The target server behind TLS with a fresh self-signed certificate."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a test certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"]
        + ["-subj", "/CN=devconsul-test", "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
        timeout=30,
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    target.server.socket = context.wrap_socket(target.server.socket, server_side=True)
    return f"https://127.0.0.1:{target.port}/health"


def test_https_verification_and_skip_verify(tls_target):
    status, output = http_probe(CheckDefinition(http=tls_target), timeout=5)
    assert status == "critical"
    assert "certificate" in output.lower()
    check = CheckDefinition(
        http=tls_target, tls_skip_verify=True, tls_server_name="devconsul-test"
    )
    assert http_probe(check, timeout=5) == (
        "passing",
        f"HTTP GET {tls_target}: 200 OK Output: ok",
    )
