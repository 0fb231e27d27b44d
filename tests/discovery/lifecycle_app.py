"""A minimal WSGI app for lifecycle tests: /health, and /whoami naming the instance's port.

Served by gunicorn with tests.discovery.lifecycle_conf (discovery.service_hooks), so the
registration lifecycle is tested without any service's database or models. /watched/<name>
shows what this worker's watcher of a service it depends on knows, without waiting;
/slow/<seconds> answers after that long.
"""

import os
import time

from flask import Flask

from discovery.watcher import watch


def create_app() -> Flask:
    app = Flask(__name__)
    port = os.environ.get("PORT", "")

    @app.get("/health")
    def health():
        return {"status": "ok"}

    @app.get("/whoami")
    def whoami():
        return {"port": port}

    @app.get("/slow/<float:seconds>")
    def slow(seconds: float):
        time.sleep(seconds)
        return {"slept": seconds}

    @app.get("/watched/<name>")
    def watched(name: str):
        snapshot = watch(name).snapshot()
        ids = [i.id for i in snapshot.instances]
        return {"pid": os.getpid(), "loaded": snapshot.loaded, "ids": ids}

    return app


app = create_app()
