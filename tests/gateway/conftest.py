"""One gateway under gunicorn shared by the abuse and fuzzing tests (its limits made small).

Upstreams: echo instances claiming /echo, /users and /orders, so every documented route of
the gateway has something real behind it.
"""

import pytest

from tests.gateway.stack import quick_stop, start_gateway, start_upstream, wait_routable

LIMITS = {
    "GATEWAY_MAX_BODY_BYTES": "1000",
    "GATEWAY_MAX_HEADER_BYTES": "1024",
    "GATEWAY_CLIENT_TIMEOUT": "1",
    "GUNICORN_THREADS": "4",
}


class Served:
    def __init__(self, process, url):
        self.process = process
        self.url = url
        self.port = int(url.rsplit(":", 1)[1])


@pytest.fixture(scope="session")
def served_gateway(shared_devconsul):
    addr = shared_devconsul.addr
    services = {"fuzz-echo": "/echo", "fuzz-users": "/users", "fuzz-orders": "/orders"}
    # Started together and waited for through the gateway: they boot in parallel.
    upstreams = [start_upstream(addr, s, p, wait=False)[0] for s, p in services.items()]
    process, url = start_gateway(addr, **LIMITS)
    for service in services:
        wait_routable(url, service, 1, timeout=30)
    yield Served(process, url)
    for p in [process, *upstreams]:
        quick_stop(p)
