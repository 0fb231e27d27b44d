"""gunicorn settings for the gateway: `gunicorn -c python:gateway.gunicorn_conf gateway.wsgi:app`.

Registration in Consul as `gateway` (from the master), SIGTERM drain and the bind come from
discovery's shared hooks; the gateway runs its own worker class (gateway.worker: an asyncio
event loop per process) and checks its GATEWAY_* settings here, so a bad one stops the boot.
"""

import os
import shutil
import tempfile

from chassis.env import env_int
from chassis.tracing import check_settings, tracing_enabled
from discovery.gunicorn_hooks import service_hooks
from gateway.settings import DEFAULT_PORT, GatewaySettings

# The gateway claims no prefix: it is the router, not a route.
globals().update(service_hooks(name="gateway", prefix="", default_port=DEFAULT_PORT))

GatewaySettings.from_env()  # a bad GATEWAY_* variable stops the boot here
if tracing_enabled():
    check_settings()  # and a bad OTEL_TRACES_SAMPLER or OTEL_BSP_*, not each worker's start
# One process by default: ejections and retry budgets are per process, and one process
# makes them the gateway's. Its event loop carries the concurrency; with more workers
# (WEB_CONCURRENCY) metrics are summed over them (below), the rest stays per process.
workers = env_int("WEB_CONCURRENCY", 1, minimum=1)
worker_class = "gateway.worker.GatewayWorker"

_registration_exit = on_exit  # noqa: F821 - from service_hooks above
_metrics_dir: list[str] = []


def on_starting(server) -> None:
    """With several workers, prometheus_client's multiprocess mode: each worker writes its
    counters under one directory of this master's, and a scrape sums them."""
    if server.cfg.workers > 1:
        prefix = f"gateway-metrics-{os.getpid()}-"  # whose it is, for whoever looks
        _metrics_dir.append(tempfile.mkdtemp(prefix=prefix))
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = _metrics_dir[0]
    else:
        os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)


def child_exit(server, worker) -> None:
    """A worker gone: its gauges (open connections) leave the sum; its counters stay in it,
    or the gateway's totals would fall back."""
    if _metrics_dir:
        # Imported only now: prometheus_client picks its kind of values at import, from
        # PROMETHEUS_MULTIPROC_DIR, and the workers this master forks inherit the pick.
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid, _metrics_dir[0])


def on_exit(server) -> None:
    _registration_exit(server)
    for path in _metrics_dir:
        shutil.rmtree(path, ignore_errors=True)
