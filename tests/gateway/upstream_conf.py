"""gunicorn config for `tests.gateway.upstream:app` registered through discovery's hooks.

Env: UPSTREAM_SERVICE (Consul name), UPSTREAM_PREFIX (gateway_prefix), plus the usual
PORT, SERVICE_ADDRESS, CONSUL_HTTP_ADDR, CHECK_INTERVAL, DRAIN_SECONDS.
"""

import os

from discovery.gunicorn_hooks import service_hooks

globals().update(
    service_hooks(
        name=os.environ["UPSTREAM_SERVICE"], prefix=os.environ["UPSTREAM_PREFIX"]
    )
)
