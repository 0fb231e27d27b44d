"""gunicorn config for the lifecycle test app, wired exactly like a real service's; it
depends on the services named in LIFECYCLE_DEPENDS_ON (comma-separated)."""

import os

from discovery.gunicorn_hooks import service_hooks

DEPENDS_ON = tuple(filter(None, os.environ.get("LIFECYCLE_DEPENDS_ON", "").split(",")))

globals().update(
    service_hooks(name="lifecycle-test", prefix="/lifecycle", depends_on=DEPENDS_ON)
)
