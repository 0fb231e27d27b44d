"""gunicorn settings for order-service: `gunicorn -c python:order_service.gunicorn_conf order_service.wsgi:app`.

bind/workers/threads come from the environment (BIND_HOST, PORT, WEB_CONCURRENCY,
GUNICORN_THREADS); the master registers the instance in Consul, drains on SIGTERM and
deregisters on exit, and every worker knows user-service's instances before it serves
(discovery.gunicorn_hooks; not with USER_SERVICE_URL, a fixed list).
"""

from discovery.gunicorn_hooks import service_hooks
from order_service.settings import Settings
from order_service.users import discovered_services

# The app's settings are read in each worker; checked here as well, a bad value stops the
# master before it registers the instance, not each worker after it did.
Settings.from_env()
globals().update(
    service_hooks(
        Settings.service_name,
        "/orders",
        Settings.default_port,
        depends_on=discovered_services(),
    )
)
