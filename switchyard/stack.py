"""The local stack: start the agent and every instance, wait until healthy, stop in order.

Start order: the Consul agent (unless external), then every service instance at once, then
the gateway once the services pass their checks. Stop order is the reverse: the gateway
first so no new requests arrive, then the services (each drains and deregisters on
SIGTERM), then the agent. Every wait is bounded; whatever outlives its bound is killed
with its whole process group.
"""

import os
import socket
import time
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path

import requests

from switchyard.agent import AgentChoice
from switchyard.consul_api import ConsulAPI, deregister_leftovers
from switchyard.plan import (
    MAX_DRAIN_SECONDS,
    ProcessSpec,
    StackOptions,
    agent_spec,
    free_port,
    gateway_spec,
    plan_stack,
)
from switchyard.process import Supervised, process_start_time
from switchyard.render import Console
from switchyard.state import (
    ProcessRecord,
    StackState,
    remove_state,
    write_state,
)

POLL = 0.2
# The longest drain plus gunicorn's graceful worker shutdown of a local stack's requests.
STOP_GRACE = MAX_DRAIN_SECONDS + 5.0


class StartupError(RuntimeError):
    """A process did not come up; the message carries the last lines of its output."""

    def __init__(self, name: str, reason: str, tail: Iterable[str] = ()):
        self.name = name
        self.reason = reason
        self.tail = list(tail)
        super().__init__(f"{name}: {reason}")

    def describe(self) -> str:
        lines = [f"ERROR switchyard: {self.name} {self.reason}"]
        if self.tail:
            lines.append(f"--- last {len(self.tail)} lines of {self.name} ---")
            lines.extend(self.tail)
        return "\n".join(lines)


def port_in_use(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("", port))
        except OSError:
            return True
    return False


class Stack:
    def __init__(
        self,
        options: StackOptions,
        agent: AgentChoice,
        console: Console | None = None,
        pick_port: Callable[[], int] = free_port,
        startup_timeout: float = 60.0,
        on_stop: Callable[[], None] = lambda: None,
    ):
        self.options = options
        self.agent = agent
        self.console = console or Console(quiet=True)
        self.startup_timeout = startup_timeout
        self.on_stop = on_stop  # called once stopping begins (the CLI ignores signals)
        self.specs = {s.name: s for s in plan_stack(options, agent, pick_port)}
        self.processes: dict[str, Supervised] = {}
        self._stopped = False
        self.consul = ConsulAPI(agent.url, options.token)
        self.logs_dir = Path(options.data_dir) / "logs"
        self.state = StackState(
            supervisor_pid=os.getpid(),
            supervisor_started=process_start_time(os.getpid()),
            consul_addr=agent.addr,
            consul_kind=agent.kind,
            consul_token=options.token,
            gateway_url=f"http://127.0.0.1:{options.gateway_port}",
            consul_ui_url=agent.ui_url,
        )

    # -- what runs ---------------------------------------------------------------------

    def instances(self, service: str | None = None) -> list[ProcessSpec]:
        return [s for s in self.specs.values() if service in (None, s.service)]

    @property
    def gateway_url(self) -> str:
        return self.state.gateway_url

    # -- start -------------------------------------------------------------------------

    def start(self) -> None:
        """Bring everything up or, on any failure (or Ctrl-C), stop what was started."""
        try:
            self._check_ports()
            self.start_agent()
            services = [s for s in self.specs.values() if s.service != "gateway"]
            gateways = [s for s in self.specs.values() if s.service == "gateway"]
            for spec in services:
                self.launch(spec)
            self.wait_passing(services)
            for spec in gateways:
                self.launch(spec)
                self.wait_gateway(spec)
        except BaseException:
            self.stop()
            raise

    def _check_ports(self) -> None:
        ports = [("gateway", self.options.gateway_port, "--gateway-port")]
        if self.agent.managed:
            hint = f"--consul-port, or --consul-addr 127.0.0.1:{self.agent.port} for that agent"
            ports.append(("consul", self.agent.port, hint))
        for name, port, hint in ports:
            if port_in_use(port):
                raise StartupError(
                    name, f"cannot start: port {port} is already in use (see {hint})"
                )

    def start_agent(self) -> None:
        if self.agent.managed:
            self.launch(agent_spec(self.agent))
        self._wait(
            "consul",
            self.consul.leader_ready,
            f"did not answer at {self.agent.url} within {self.startup_timeout:.0f}s",
        )
        self.console.step("[ready]", "consul", f"{self.agent.url} ({self.agent.kind})")

    def stop_agent(self) -> None:
        proc = self.processes.get("consul")
        if proc is not None:
            proc.stop(STOP_GRACE)
            self._record()

    def launch(self, spec: ProcessSpec) -> Supervised:
        """Start one process (again, if it ran before) and record it in the state file."""
        proc = Supervised(
            spec.name,
            spec.argv,
            {**os.environ, **spec.env},
            self.logs_dir / f"{spec.name}.log",
            self.console.log_line,
        )
        self.processes[spec.name] = proc
        try:
            proc.start(record=lambda _: self._record())
        except OSError as exc:  # its log or the state file cannot be written, say
            raise StartupError(spec.name, f"could not be started: {exc}") from exc
        self.console.step("[started]", spec.name, f"pid {proc.pid}, port {spec.port}")
        return proc

    def relaunch(self, name: str) -> Supervised:
        """Start again, on its port, a process that exited on its own. Not waited for: the
        agent's answers, or the instance's check in Consul, tell when it is back."""
        return self.launch(
            agent_spec(self.agent) if name == "consul" else self.specs[name]
        )

    def add_gateway(self, strategy: str, port: int | None = None) -> ProcessSpec:
        """A further gateway with another strategy (tests compare strategies side by side)."""
        spec = gateway_spec(port or free_port(), strategy, self.options, self.agent)
        self.specs[spec.name] = spec
        self.launch(spec)
        self.wait_gateway(spec)
        return spec

    def _wait(self, name: str, ready: Callable[[], bool], reason: str) -> None:
        deadline = time.monotonic() + self.startup_timeout
        while not ready():
            self._raise_if_exited(name)
            if time.monotonic() > deadline:
                raise StartupError(name, reason, self._tail(name))
            time.sleep(POLL)

    def _raise_if_exited(self, name: str) -> None:
        """`name` exited, or the agent that everything waits on: no use waiting longer.

        The agent first: an instance that fails because the agent is gone is not the cause.
        """
        for each in dict.fromkeys(("consul", name)):
            proc = self.processes.get(each)
            if proc is not None and not proc.alive():
                raise StartupError(
                    each,
                    f"exited with code {proc.returncode} while starting",
                    proc.tail(),
                )

    def _tail(self, name: str) -> list[str]:
        proc = self.processes.get(name)
        return proc.tail() if proc else []

    def wait_passing(self, specs: Iterable[ProcessSpec]) -> None:
        """Until every instance is registered and passing in Consul; reports each step."""
        pending = {s.name: s for s in specs}
        seen: set[str] = set()
        deadline = time.monotonic() + self.startup_timeout
        while pending:
            statuses = self._statuses({s.service for s in pending.values()})
            for name in list(pending):
                self._raise_if_exited(name)
                status = statuses.get(name)
                if status == "passing":
                    self.console.step("[passing]", name, "check passing in Consul")
                    del pending[name]
                elif status and name not in seen:
                    seen.add(name)
                    self.console.step("[registered]", name, f"check {status}")
            if pending and time.monotonic() > deadline:
                name = next(iter(pending))
                state = statuses.get(name, "not registered")
                raise StartupError(
                    name,
                    f"not passing in Consul after {self.startup_timeout:.0f}s ({state})",
                    self._tail(name),
                )
            if pending:
                time.sleep(POLL)

    def _statuses(self, services: Iterable[str]) -> dict[str, str]:
        statuses: dict[str, str] = {}
        for service in services:
            try:
                statuses.update(self.consul.instance_status(service))
            except requests.RequestException:
                pass  # the agent may be busy; the deadline bounds the wait
        return statuses

    def wait_gateway(self, spec: ProcessSpec) -> None:
        """Until the gateway answers /health 200 and routes to every running instance."""
        expected = Counter(
            self._service(name)
            for name, proc in self.processes.items()
            if proc.alive() and self._service(name) not in ("gateway", "consul")
        )

        def sees_everything() -> bool:
            try:
                resp = requests.get(f"{spec.url}/health", timeout=1)
                seen = (
                    resp.json().get("services", {}) if resp.status_code == 200 else None
                )
            except (requests.RequestException, ValueError):
                return False
            return seen is not None and all(
                seen.get(name, {}).get("routable", 0) >= count
                for name, count in expected.items()
            )

        self._wait(
            spec.name,
            sees_everything,
            f"/health did not answer 200 with every instance routable "
            f"in {self.startup_timeout:.0f}s",
        )
        self.console.step("[ready]", spec.name, f"{spec.url} routes to every instance")
        self.wait_passing([spec])

    # -- operate -----------------------------------------------------------------------

    def kill(self, name: str) -> None:
        self.processes[name].kill()
        self._record()

    def restart(self, name: str) -> None:
        """Graceful stop (drain, deregister), start again on the same port, wait for passing."""
        if name == "consul":
            self.stop_agent()
            self.start_agent()
            return
        spec = self.specs[name]
        self.processes[name].stop(STOP_GRACE)
        self.launch(spec)
        if spec.service == "gateway":
            self.wait_gateway(spec)
        else:
            self.wait_passing([spec])

    def retire(self, name: str) -> None:
        """Stop one process for good and forget it (an extra gateway, say)."""
        self.processes.pop(name).stop(STOP_GRACE)
        self.specs.pop(name, None)
        self._record()

    def exited(self) -> list[Supervised]:
        return [p for p in self.processes.values() if not p.alive()]

    # -- stop --------------------------------------------------------------------------

    def stop(self) -> None:
        """Stop everything: gateways, then services, then the agent. Idempotent."""
        if self._stopped:
            return
        self.console.stopping()
        self.on_stop()
        # Only now: a stop cut short before on_stop (by a signal) must be done again.
        self._stopped = True
        groups = [
            [p for n, p in self.processes.items() if self._service(n) == "gateway"],
            [
                p
                for n, p in self.processes.items()
                if self._service(n) not in ("gateway", "consul")
            ],
        ]
        for group in groups:
            self._stop_group(group)
        self._deregister_leftovers()
        self._stop_group([p for n, p in self.processes.items() if n == "consul"])
        remove_state(self.options.data_dir)

    def _service(self, name: str) -> str:
        spec = self.specs.get(name)
        return spec.service if spec else "consul"

    def _stop_group(self, group: list[Supervised]) -> None:
        running = [p for p in group if p.alive()]
        for proc in running:
            proc.request_stop()
        deadline = time.monotonic() + STOP_GRACE
        for proc in running:
            if proc.wait_stopped(deadline):
                self.console.step(
                    "[stopped]", proc.name, f"exit code {proc.returncode}"
                )
            else:
                self.console.step(
                    "[killed]", proc.name, f"still running after {STOP_GRACE:.0f}s"
                )

    def _deregister_leftovers(self) -> None:
        services = {name: self._service(name) for name in self.processes}
        instances = {n: s for n, s in services.items() if s != "consul"}
        deregister_leftovers(self.consul, instances, self.console)

    def _record(self) -> None:
        self.state.processes = [
            ProcessRecord(
                name=name,
                service=self._service(name),
                port=self.specs[name].port if name in self.specs else self.agent.port,
                pid=proc.pid,
                started=process_start_time(proc.pid),
            )
            for name, proc in self.processes.items()
            if proc.alive()
        ]
        write_state(self.options.data_dir, self.state)
