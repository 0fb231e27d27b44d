"""gunicorn settings for user-service: `gunicorn -c python:user_service.gunicorn_conf user_service.wsgi:app`.

bind/workers/threads come from the environment (BIND_HOST, PORT, WEB_CONCURRENCY,
GUNICORN_THREADS); the master registers the instance in Consul, drains on SIGTERM and
deregisters on exit (discovery.gunicorn_hooks).
"""

from discovery.gunicorn_hooks import service_hooks
from user_service.settings import Settings

# The app's settings are read in each worker; checked here as well, a bad value stops the
# master before it registers the instance, not each worker after it did.
Settings.from_env()
globals().update(service_hooks(Settings.service_name, "/users", Settings.default_port))
