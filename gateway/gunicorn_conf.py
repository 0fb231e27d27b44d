"""gunicorn settings for the gateway: `gunicorn -c python:gateway.gunicorn_conf gateway.wsgi:app`.

Registration in Consul as `gateway` (from the master), SIGTERM drain and the bind come from
discovery's shared hooks, as does the worker's JSON for gunicorn's own error pages; the
gateway sets its own worker and thread counts, its request limits, and a worker that serves
a kept-alive connection's next request on the thread that answered the last one
(gateway.worker).
"""

from chassis.env import env_int
from discovery.gunicorn_hooks import service_hooks
from gateway.settings import DEFAULT_PORT, GatewaySettings

# The gateway claims no prefix: it is the router, not a route.
globals().update(service_hooks(name="gateway", prefix="", default_port=DEFAULT_PORT))

_settings = GatewaySettings.from_env()  # a bad GATEWAY_* variable stops the boot here
# One process by default: metrics, ejections and retry budgets are per process, and one
# process makes them the gateway's -- a scrape of /metrics sees every request, and an
# instance is ejected after GATEWAY_EJECT_AFTER failures, not that many per worker. Its
# threads carry the concurrency; scale out with more gateway instances.
workers = env_int("WEB_CONCURRENCY", 1, minimum=1)
worker_class = "gateway.worker.LingeringWorker"
threads = env_int("GUNICORN_THREADS", 16, minimum=1)
limit_request_line = _settings.max_request_line
limit_request_fields = _settings.max_headers
limit_request_field_size = _settings.max_header_bytes
keepalive = 5
