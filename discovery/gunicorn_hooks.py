"""gunicorn settings and server hooks that put a service into Consul for its lifetime.

A service's gunicorn config module does

    from discovery.gunicorn_hooks import service_hooks
    globals().update(service_hooks(name="user-service", prefix="/users", default_port=8001))

and gets bind/workers/threads from the environment plus these hooks:
- when_ready (master, once): register service + check, start anti-entropy, and start
  watching the services it calls (`depends_on`);
- post_worker_init (each worker, before it serves): have every `depends_on` service's
  instances before accepting a request, and keep following them;
- SIGTERM to the master: drain -- maintenance on (out of the passing set), keep serving for
  DRAIN_SECONDS, deregister -- and only then gunicorn's graceful stop of the workers;
- workers that receive the SIGTERM too (a signal to the whole process group) keep serving
  until the master's drain is over;
- on_exit: deregister if nothing did yet (SIGINT/SIGQUIT stop at once, without a drain).

| variable | default | meaning |
|---|---|---|
| BIND_HOST | 0.0.0.0 | interface gunicorn listens on (port: PORT) |
| WEB_CONCURRENCY | 2 | gunicorn worker processes |
| GUNICORN_THREADS | 4 | threads per worker (gthread: chassis.worker) |
| LOG_LEVEL | INFO | level of the master's log lines (any case) |

Registration variables: see discovery.registration; Consul's: discovery.consul_client. All
are checked when the config module loads, so a bad value stops gunicorn before it serves.

Watchers: one per called service per worker process, each worker following Consul itself,
seeded at fork with the master's. Sharing one watcher between a master's workers would
need shared memory or IPC on the request path, and threads do not survive fork; a
blocking query per worker costs Consul little. The master's own watcher is what makes the
seeding work: a worker forked later (a crashed worker replaced, a reload) inherits the
master's current instances and serves at once, even while Consul is away.
"""

import logging
import mmap
import signal
import threading
import time
from collections.abc import Mapping

import requests

import consul
from chassis.accesslog import ACCESS_LOG_FORMAT
from chassis.env import env_int, env_str
from chassis.logs import configure_logging, log_level_from_env
from chassis.worker import skip_exit_collection
from discovery.consul_client import ConsulSettings
from discovery.forksafe import guard_name_resolution
from discovery.instances import host_for_url
from discovery.registration import AntiEntropy, Registration, RegistrationSettings
from discovery.watcher import watch

log = logging.getLogger("discovery")

IDLE, DRAINING, DRAINED = 0, 1, 2
# How long a worker that got SIGTERM waits for the master to start a drain before it takes
# the signal as a plain stop (a worker-count change or reload also sends SIGTERM).
DRAIN_START_GRACE = 1.0
# How long a worker waits for its first list of a called service's instances before it
# serves anyway (its /health then fails until the list arrives). Under gunicorn's worker
# timeout (30 s), which counts from the fork.
DISCOVERY_BOOT_WAIT = 10.0
# A service's limits on a request's head: gunicorn's (414 or 431 beyond, as JSON:
# chassis.worker). Each is the gateway's most (gateway.settings) plus what the gateway may
# add to a request it forwards: a request the gateway admits must never meet the service's
# 414 or 431 in place of the gateway's own. The request line's is gunicorn's most (a
# larger limit_request_line is taken as 8190); the gateway's target limit is below it.
LIMIT_REQUEST_LINE = 8190
LIMIT_REQUEST_FIELDS = 100 + 9
LIMIT_REQUEST_FIELD_SIZE = 8190 + 59  # one header line, its CRLF included


class DrainFlag:
    """One byte of memory shared by the master and its forked workers."""

    def __init__(self):
        self._mem = mmap.mmap(-1, 1)  # anonymous, MAP_SHARED: survives fork as shared

    def get(self) -> int:
        return self._mem[0]

    def set(self, state: int) -> None:
        self._mem[0] = state


class ServiceLifecycle:
    def __init__(
        self,
        settings: RegistrationSettings,
        consul_settings: ConsulSettings | None = None,
        log_level: str = "INFO",
        depends_on: tuple[str, ...] = (),
    ):
        self.settings = settings
        self.log_level = log_level
        self.depends_on = depends_on
        self.registration = Registration(settings, consul_settings=consul_settings)
        self.anti_entropy = AntiEntropy(self.registration)
        self.flag = DrainFlag()
        self._done = False  # deregistered (drained or exited)

    # -- master ------------------------------------------------------------------------

    def when_ready(self, arbiter) -> None:
        configure_logging(self.log_level)
        # The threads started below resolve Consul's name while workers are forked.
        guard_name_resolution()
        try:
            self.registration.register()
        except (requests.RequestException, consul.ConsulException) as exc:
            # Consul unreachable or refusing: serve anyway; anti-entropy retries. Anything
            # else is a bug, and must not leave a service serving that never registers.
            log.warning(
                "registering %s failed, will retry: %s",
                self.registration.service_id,
                exc,
            )
        self.anti_entropy.start()
        # Before any worker is forked: each inherits what this watcher knows at its fork.
        for service in self.depends_on:
            watch(service)
        arbiter.handle_term = self._drain_then(arbiter.handle_term)

    def _drain_then(self, handle_term):
        def handle_term_after_drain():
            # Runs in the master's main loop (gunicorn queues signals), so blocking here
            # delays only the arbiter; workers keep serving.
            if not self._done:
                self.flag.set(DRAINING)
                self.anti_entropy.stop()
                self.registration.drain()
                self._done = True
                self.flag.set(DRAINED)
            handle_term()

        return handle_term_after_drain

    def on_exit(self, arbiter) -> None:
        if not self._done:
            self.anti_entropy.stop()
            self.registration.safe_deregister()
            self._done = True
        # The master's last step before it exits (gunicorn's halt), as for its workers.
        skip_exit_collection()

    # -- workers -----------------------------------------------------------------------

    def post_worker_init(self, worker) -> None:
        self._install_signal_handlers(worker)
        self._know_dependencies()

    def _know_dependencies(self) -> None:
        """Start this worker's watchers; wait (bounded) until each has an instance list,
        inherited from the master or from its own first answer."""
        deadline = time.monotonic() + DISCOVERY_BOOT_WAIT
        for service in self.depends_on:
            watcher = watch(service)
            if not watcher.wait_loaded(max(0.0, deadline - time.monotonic())):
                log.warning(
                    "no instance list of %s from Consul after %gs; serving, /health "
                    "fails until one arrives",
                    service,
                    DISCOVERY_BOOT_WAIT,
                )

    def _install_signal_handlers(self, worker) -> None:
        handle_exit = worker.handle_exit

        def on_sigterm(sig, frame):
            threading.Thread(
                target=self._exit_after_drain, args=(handle_exit, sig), daemon=True
            ).start()

        signal.signal(signal.SIGTERM, on_sigterm)

    def _exit_after_drain(self, handle_exit, sig) -> None:
        started = time.monotonic()
        # Bounded: never hold a worker past the drain plus a margin, whatever the flag says.
        limit = started + DRAIN_START_GRACE + self.settings.drain_seconds + 5.0
        while time.monotonic() < limit:
            state = self.flag.get()
            if state == DRAINED:
                break
            if state == IDLE and time.monotonic() - started > DRAIN_START_GRACE:
                break
            time.sleep(0.05)
        handle_exit(sig, None)


_lifecycles: dict[str, ServiceLifecycle] = {}


def service_hooks(
    name: str,
    prefix: str,
    default_port: int = 8000,
    environ: Mapping[str, str] | None = None,
    depends_on: tuple[str, ...] = (),
) -> dict:
    """gunicorn settings for service `name`, which calls the services `depends_on` (found
    through Consul); checks the environment now (ConfigError at boot)."""
    settings = RegistrationSettings.from_env(name, prefix, default_port, environ)
    consul_settings = ConsulSettings.from_env(environ)
    log_level = log_level_from_env(environ)
    # One lifecycle per service per master: a config reload (HUP) must not lose track of
    # what the first one registered.
    if name not in _lifecycles:
        _lifecycles[name] = ServiceLifecycle(
            settings, consul_settings, log_level, tuple(depends_on)
        )
    lifecycle = _lifecycles[name]
    host = host_for_url(env_str("BIND_HOST", "0.0.0.0", environ))
    return {
        "bind": [f"{host}:{settings.port}"],
        "workers": env_int("WEB_CONCURRENCY", 2, minimum=1, environ=environ),
        "threads": env_int("GUNICORN_THREADS", 4, minimum=1, environ=environ),
        # gthread, with gunicorn's own error pages (unparsable requests) as JSON.
        "worker_class": "chassis.worker.JSONErrorWorker",
        # Access lines (when --access-logfile is given) carry request and trace ids.
        "logger_class": "chassis.accesslog.TraceAccessLogger",
        "access_log_format": ACCESS_LOG_FORMAT,
        "limit_request_line": LIMIT_REQUEST_LINE,
        "limit_request_fields": LIMIT_REQUEST_FIELDS,
        "limit_request_field_size": LIMIT_REQUEST_FIELD_SIZE,
        # gunicorn >= 25.1 opens a control socket at one default path per user; several
        # instances on one host would fight over it, and nothing here uses gunicornc.
        "control_socket_disable": True,
        "when_ready": lifecycle.when_ready,
        "on_exit": lifecycle.on_exit,
        "post_worker_init": lifecycle.post_worker_init,
    }
