"""Gateways for the tests: one under gunicorn shared by the abuse and fuzzing tests (its
limits made small), with echo instances claiming /echo, /users and /orders so every
documented route has something real behind it; and in-process ones (`world`) whose Consul
is a fake and whose upstreams are echo servers in threads (`upstream`).
"""

import pytest

from gateway.app import create_app
from gateway.settings import GatewaySettings
from tests.gateway.fakes import FakeCatalog, FakeWatchers
from tests.gateway.serving import Client, serve
from tests.gateway.stack import quick_stop, start_gateway, start_upstream, wait_routable
from tests.gateway.upstream import ThreadedUpstream
from tests.support.processes import wait_until

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


@pytest.fixture
def upstream():
    started = []

    def start(name, **kwargs):
        server = ThreadedUpstream(name, **kwargs)
        started.append(server)
        return server.port

    yield start
    for server in started:
        server.stop()


class World:
    def __init__(self, **settings):
        self.catalog = FakeCatalog()
        self.watchers = FakeWatchers()
        self.gateway = create_app(
            GatewaySettings(
                **{"connect_timeout": 0.5, "read_timeout": 2.0, **settings}
            ),
            instance_id="gateway-test",
            catalog=self.catalog,
            watcher_factory=self.watchers,
        )
        self.served = serve(self.gateway)
        self.client = Client(self.served.port)

    def stop(self):
        self.client.close()
        self.served.stop()
        self.gateway.stop()

    def publish(self, service, *instances, stale=False):
        self.gateway.directory.start()
        self.watchers.set(service, *instances, stale=stale)
        names = self.catalog.names | {service}
        if names != self.catalog.names:
            self.catalog.set(*names)
        wait_until(
            lambda: service in self.gateway.directory.view().services, 5, what=service
        )


@pytest.fixture
def world():
    worlds = []

    def make(**settings):
        w = World(**settings)
        worlds.append(w)
        return w

    yield make
    for w in worlds:
        w.stop()
