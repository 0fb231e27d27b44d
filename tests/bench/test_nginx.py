"""bench.nginx: the generated config, checked by nginx itself, and a real nginx proxying."""

import json
import re
import shutil
import subprocess
from http.server import BaseHTTPRequestHandler

import pytest
import requests

from bench import nginx
from switchyard.plan import free_port
from tests.support.loopback import loopback_server, serve_in_background, shut

needs_nginx = pytest.mark.skipif(
    not shutil.which("nginx"), reason="nginx not on PATH (apt-get install nginx-light)"
)


def test_config_keeps_everything_under_the_prefix(tmp_path):
    conf = nginx.config(tmp_path, 18080, [18081, 18082])
    assert "daemon off;" in conf
    assert "worker_processes 1;" in conf
    assert f"pid {tmp_path}/nginx.pid;" in conf
    assert f"error_log {tmp_path}/error.log" in conf
    assert f"access_log {tmp_path}/access.log" in conf
    for (
        kind
    ) in nginx.TEMP_KINDS:  # the compiled-in defaults are root-owned /var/lib paths
        assert f"{kind}_temp_path {tmp_path}/temp/{kind};" in conf
    assert "listen 127.0.0.1:18080;" in conf


def test_config_pools_connections_to_every_upstream(tmp_path):
    conf = nginx.config(tmp_path, 18080, [18081, 18082])
    assert "server 127.0.0.1:18081;" in conf
    assert "server 127.0.0.1:18082;" in conf
    assert f"keepalive {nginx.KEEPALIVE};" in conf
    # Upstream keep-alive needs HTTP/1.1 and no "Connection: close" passed on.
    assert "proxy_http_version 1.1;" in conf
    assert 'proxy_set_header Connection "";' in conf


@needs_nginx
def test_nginx_accepts_the_config(tmp_path):
    for kind in nginx.TEMP_KINDS:
        (tmp_path / "temp" / kind).mkdir(parents=True)
    (tmp_path / "nginx.conf").write_text(nginx.config(tmp_path, free_port(), [1, 2]))
    checked = subprocess.run(
        ["nginx", "-t", "-p", f"{tmp_path}/", "-c", str(tmp_path / "nginx.conf"),
         "-e", str(tmp_path / "error.log")],
        check=False, capture_output=True, text=True, timeout=20,
    )  # fmt: skip
    assert checked.returncode == 0, checked.stderr


class EchoPath(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        body = json.dumps(
            {
                "path": self.path,
                "headers": {k.lower(): v for k, v in self.headers.items()},
            }
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@needs_nginx
def test_nginx_rewrites_api_prefix_like_the_gateway_and_stops_cleanly(tmp_path):
    upstream = loopback_server(EchoPath)
    serve_in_background(upstream)
    port = free_port()
    url = f"http://127.0.0.1:{port}/api/bench/item?x=1"
    try:
        process = nginx.start(tmp_path, port, [upstream.server_address[1]], url)
        try:
            answer = requests.get(url, timeout=5).json()
        finally:
            process.stop()
    finally:
        shut(upstream)
    assert answer["path"] == "/bench/item?x=1"
    # The headers the gateway adds, so the upstreams parse as much behind either proxy.
    headers = answer["headers"]
    assert re.fullmatch(r"[0-9a-f]{32}", headers["x-request-id"])
    assert re.fullmatch(r"00-[0-9a-f]{32}-[0-9a-f]{16}-01", headers["traceparent"])
    assert headers["x-forwarded-host"] == f"127.0.0.1:{port}"
    assert headers["x-forwarded-prefix"] == "/api"
    assert headers["x-forwarded-for"] == "127.0.0.1"
    assert headers["x-forwarded-proto"] == "http"
    assert process.proc.returncode is not None
    assert not (tmp_path / "nginx.pid").exists()  # nginx removed it: a clean shutdown
