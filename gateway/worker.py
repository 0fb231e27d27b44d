"""gunicorn worker for the gateway: one asyncio event loop (uvloop) per worker process.

gunicorn stays the process manager -- settings, hooks, registration from the master, drain
on SIGTERM (discovery.gunicorn_hooks), worker restarts -- and this worker serves the
gateway app (gateway.app) through gateway.server on its listening sockets:

- at boot it starts following Consul and serves only once the route table and every
  service's instances are known (bounded by BOOT_WAIT), so neither the first request nor
  the first health check finds the gateway without them;
- it sets up tracing (chassis.tracing, OTEL_*) in itself, after the fork, when it is on;
- it freezes what boot allocated out of the garbage collector's full passes;
- it tells the master it is alive (`notify`) every HEARTBEAT seconds, so gunicorn's
  `timeout` never kills a worker whose loop is busy or idle (and flushes its metrics);
- when told to stop (`alive` turns False: SIGTERM after the drain, or the master gone) it
  stops accepting, closes idle connections, and lets requests in flight finish within
  gunicorn's `graceful_timeout`.
"""

import asyncio
import gc
import importlib
import logging
import os
import resource

import uvloop
from gunicorn.workers.base import Worker

from chassis.identity import service_version_from_env
from chassis.tracing import span_recorder
from gateway.server import Server

__all__ = ["GatewayWorker"]

log = logging.getLogger("gateway.worker")

HEARTBEAT = 0.5  # seconds between notifications to the master (and looks at `alive`)
BOOT_WAIT = 10.0  # seconds to wait for Consul at boot before serving without it


class GatewayWorker(Worker):
    def load_wsgi(self) -> None:
        # gunicorn's loader insists on a WSGI callable; the gateway app is not one.
        module, _, name = self.app.app_uri.partition(":")
        self.wsgi = getattr(importlib.import_module(module), name or "app")

    def run(self) -> None:
        loop = uvloop.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._serve())
        finally:
            loop.close()

    async def _serve(self) -> None:
        app = self.wsgi  # gateway.wsgi:app, the Gateway
        _room_for(app.settings.max_connections)
        # Here, after the fork: the spans' export thread would not survive one.
        recorder = span_recorder("gateway", app.served_by, service_version_from_env())
        if recorder is not None:
            app.trace_requests(recorder)
        app.start()
        await self._wait_for_consul(app)
        # What boot made (imported modules, the app, its first snapshots) lives as long as
        # the process: out of the collector's sight, its full passes, which requests set
        # off now and then, no longer walk all of it (~5% of a proxied GET's instructions).
        gc.freeze()
        loop = asyncio.get_running_loop()
        server = app.server()
        listeners = [
            await loop.create_server(server, sock=s.sock, backlog=self.cfg.backlog)
            for s in self.sockets
        ]
        while self.alive:
            self.notify()
            app.metrics.flush()
            app.metrics.catch_up()
            if self.ppid != os.getppid():
                log.info("master %s gone, stopping", self.ppid)
                break
            await asyncio.sleep(HEARTBEAT)
        await self._stop(listeners, server)
        app.stop()

    async def _wait_for_consul(self, app) -> None:
        waited = 0.0
        while self.alive and not await asyncio.to_thread(app.wait_ready, HEARTBEAT):
            self.notify()
            waited += HEARTBEAT
            if waited >= BOOT_WAIT:
                log.warning("no answer from Consul yet; serving without routes")
                return

    async def _stop(self, listeners, server: Server) -> None:
        for listener in listeners:
            listener.close()
        server.close_idle()
        log.info("stopping; %d connection(s) still open", len(server.connections))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.cfg.graceful_timeout
        while server.connections and loop.time() < deadline:
            self.notify()
            await asyncio.sleep(0.05)
        for connection in list(server.connections):
            connection.transport.abort()


def _room_for(connections: int) -> None:
    """Raise this process's open-file limit (up to the hard one) so the connection cap, not
    the kernel, decides who is refused: each client may hold an upstream socket too."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 2 * connections + 256
    if soft != resource.RLIM_INFINITY and soft < wanted:
        ceiling = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (ceiling, hard))
        if ceiling < wanted:
            log.warning(
                "open-file limit %d is below what GATEWAY_MAX_CONNECTIONS=%d needs (%d)",
                ceiling,
                connections,
                wanted,
            )
