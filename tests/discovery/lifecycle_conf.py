"""gunicorn config for the lifecycle test app, wired exactly like a real service's."""

from discovery.gunicorn_hooks import service_hooks

globals().update(service_hooks(name="lifecycle-test", prefix="/lifecycle"))
