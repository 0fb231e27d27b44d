import os
import subprocess
import sys

import pytest

from chassis.env import ConfigError
from gateway.app import METHODS
from gateway.settings import GatewaySettings


def test_defaults():
    assert GatewaySettings.from_env({}) == GatewaySettings()


def test_values_are_read():
    s = GatewaySettings.from_env(
        {
            "GATEWAY_LB_STRATEGY": "random",
            "GATEWAY_MAX_BODY_BYTES": "100",
            "GATEWAY_DEADLINE": "2.5",
            "GATEWAY_TRUST_FORWARDED": "true",
            "GATEWAY_HEADER_TIMEOUT": "3",
            "GATEWAY_MAX_CONNECTIONS": "50",
        }
    )
    assert (s.strategy, s.max_body_bytes, s.deadline, s.trust_forwarded) == (
        "random",
        100,
        2.5,
        True,
    )
    assert (s.header_timeout, s.max_connections) == (3.0, 50)


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        (
            "GATEWAY_LB_STRATEGY",
            "fastest",
            "least_connections, random, round_robin, weighted",
        ),
        ("GATEWAY_MAX_BODY_BYTES", "lots", "GATEWAY_MAX_BODY_BYTES"),
        ("GATEWAY_MAX_ATTEMPTS", "0", "GATEWAY_MAX_ATTEMPTS"),
        ("GATEWAY_CONNECT_TIMEOUT", "-1", "GATEWAY_CONNECT_TIMEOUT"),
        ("GATEWAY_TRUST_FORWARDED", "maybe", "GATEWAY_TRUST_FORWARDED"),
        ("GATEWAY_HEADER_TIMEOUT", "0", "GATEWAY_HEADER_TIMEOUT"),
        ("GATEWAY_KEEPALIVE_TIMEOUT", "soon", "GATEWAY_KEEPALIVE_TIMEOUT"),
        ("GATEWAY_MAX_CONNECTIONS", "0", "GATEWAY_MAX_CONNECTIONS"),
        # Above what the services take once the gateway has added its part
        # (test_app: a request at these limits is served by a real service).
        ("GATEWAY_MAX_REQUEST_LINE", "8178", "must be <= 8177"),
        ("GATEWAY_MAX_HEADERS", "101", "must be <= 100"),
        ("GATEWAY_MAX_HEADER_BYTES", "8191", "must be <= 8190"),
    ],
)
def test_bad_values_fail_naming_the_variable(name, value, says):
    with pytest.raises(ConfigError, match=says):
        GatewaySettings.from_env({name: value})


@pytest.mark.parametrize("env, workers", [({}, 1), ({"WEB_CONCURRENCY": "3"}, 3)])
def test_the_gateway_runs_one_worker_process_unless_told(env, workers):
    # One process keeps metrics, ejections and retry budgets whole (gateway.gunicorn_conf).
    environ = {k: v for k, v in os.environ.items() if k != "WEB_CONCURRENCY"}
    out = subprocess.run(
        [sys.executable, "-c", "import gateway.gunicorn_conf as c; print(c.workers)"],
        env={**environ, **env},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert int(out) == workers


def test_the_request_line_ceiling_allows_for_the_longest_method_proxied():
    # gateway.settings.MAX_REQUEST_LINE leaves room for "OPTIONS " on the forwarded line.
    assert max(map(len, METHODS)) == len("OPTIONS")
