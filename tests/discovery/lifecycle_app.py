"""A minimal WSGI app for lifecycle tests: /health, and /whoami naming the instance's port.

Served by gunicorn with tests.discovery.lifecycle_conf (discovery.service_hooks), so the
registration lifecycle is tested without any service's database or models.
"""

import os

from flask import Flask


def create_app() -> Flask:
    app = Flask(__name__)
    port = os.environ.get("PORT", "")

    @app.get("/health")
    def health():
        return {"status": "ok"}

    @app.get("/whoami")
    def whoami():
        return {"port": port}

    return app


app = create_app()
