"""The local agent: what /v1/agent/* changes, kept in the store and run by the
check runner. Also the node's own entries (the ``consul`` service, serfHealth),
maintenance mode, the reaper for DeregisterCriticalServiceAfter and the
sessions (with their TTL timers) that KV locks hang on.
"""

import logging
import time
import uuid

from devconsul.checks import CheckRunner
from devconsul.config import AgentConfig
from devconsul.definitions import CheckDefinition, ServiceDefinition, is_ip
from devconsul.durations import seconds
from devconsul.errors import HTTPError
from devconsul.scheduler import Scheduler
from devconsul.sessions import Sessions
from devconsul.store import Check, Node, Service, Store

log = logging.getLogger("devconsul.agent")

NODE_MAINTENANCE = "_node_maintenance"
SERVICE_MAINTENANCE_PREFIX = "_service_maintenance:"
DEFAULT_SERVICE_REASON = (
    "Maintenance mode is enabled for this service, but no reason was provided. "
    "This is a default message."
)
DEFAULT_NODE_REASON = (
    "Maintenance mode is enabled for this node, but no reason was provided. "
    "This is a default message."
)


class Agent:
    def __init__(self, config: AgentConfig, store: Store | None = None):
        self.config = config
        self.node = config.node
        self.node_id = str(uuid.uuid4())
        self.store = store or Store()
        self.scheduler = Scheduler()
        self.runner = CheckRunner(self.record_result, self.scheduler)
        self.sessions = Sessions(self.store, self.scheduler, config.session_ttl_min_ns)
        self._bootstrap()

    def start(self) -> "Agent":
        self.scheduler.start()
        self._schedule_reaper()
        return self

    def stop(self) -> None:
        self.runner.shutdown()
        self.scheduler.stop()

    def _bootstrap(self) -> None:
        """The node as a dev server sees itself: its node, serfHealth, `consul`."""
        address = self.config.bind_addr
        with self.store.write():
            self.store.put_node(
                Node(
                    id=self.node_id,
                    name=self.node,
                    address=address,
                    datacenter=self.config.datacenter,
                    tagged_addresses={
                        "lan": address,
                        "lan_ipv4": address,
                        "wan": address,
                        "wan_ipv4": address,
                    },
                    meta={"consul-network-segment": ""},
                )
            )
            self.store.put_check(
                Check(
                    node=self.node,
                    id="serfHealth",
                    name="Serf Health Status",
                    status="passing",
                    output="Agent alive and reachable",
                    local=False,
                )
            )
            self.store.put_service(
                Service(
                    node=self.node, id="consul", name="consul", port=8300, local=False
                )
            )

    # -- services -----------------------------------------------------------------

    # The agent's own records match their ID exactly, as Consul's local state
    # (agent/local) keys them, although the catalog below ignores its case.

    def local_services(self) -> list[Service]:
        """The services registered through this agent, by ID (the caller
        holds the store's lock)."""
        return self._local(self.store.services)

    def local_checks(self) -> list[Check]:
        """The checks registered through this agent, by ID (the caller holds
        the store's lock)."""
        return self._local(self.store.checks)

    def _local(self, table: dict) -> list:
        return [
            r for (node, _), r in sorted(table.items()) if node == self.node and r.local
        ]

    def local_service(self, service_id: str) -> Service | None:
        service = self.store.service(self.node, service_id)
        return (
            service if service and service.local and service.id == service_id else None
        )

    def local_check(self, check_id: str) -> Check | None:
        check = self.store.check(self.node, check_id)
        return check if check and check.local and check.id == check_id else None

    def register_service(self, definition: ServiceDefinition, replace_checks: bool):
        tagged = dict(definition.tagged_addresses)
        if is_ip(definition.address):
            family = "ipv6" if ":" in definition.address else "ipv4"
            entry = {"Address": definition.address, "Port": definition.port}
            tagged.setdefault(f"lan_{family}", entry)
            tagged.setdefault(f"wan_{family}", entry)
        service = Service(
            node=self.node,
            id=definition.id,
            name=definition.name,
            tags=definition.tags,
            address=definition.address,
            port=definition.port,
            meta=definition.meta,
            weights=definition.weights,
            enable_tag_override=definition.enable_tag_override,
            tagged_addresses=tagged,
            kind=definition.kind,
            proxy=definition.proxy,
            connect=definition.connect,
        )
        with self.store.write():
            self.store.put_service(service)
            many = len(definition.checks) > 1
            kept = set()
            for position, check in enumerate(definition.checks, start=1):
                check_id = check.id or f"service:{service.id}" + (
                    f":{position}" if many else ""
                )
                name = check.name or f"Service '{service.name}' check"
                self._add_check(check_id, name, check, service)
                kept.add(check_id)
            if replace_checks:
                for old in self.store.service_checks(self.node, service.id):
                    if old.id not in kept:
                        self.remove_check(old.id)
        log.info("registered service %s (%s)", service.id, service.name)

    def deregister_service(self, service_id: str) -> None:
        for check in self.store.service_checks(self.node, service_id):
            self.runner.stop(check.id)
        if self.store.delete_service(self.node, service_id):
            log.info("deregistered service %s", service_id)

    # -- checks -------------------------------------------------------------------

    def register_check(self, definition: CheckDefinition) -> None:
        service = None
        if definition.service_id:
            service = self.local_service(definition.service_id)
            if service is None:
                raise HTTPError(
                    404, f'ServiceID "{definition.service_id}" does not exist'
                )
        self._add_check(
            definition.id or definition.name, definition.name, definition, service
        )

    def _add_check(self, check_id, name, definition, service: Service | None) -> None:
        with self.store.write():
            existing = self.store.check(self.node, check_id)
            if existing and existing.id != check_id:
                # The same check to the catalog, another to the agent: it
                # starts afresh, and the one it replaces stops running.
                self.runner.stop(existing.id)
                existing = None
            check = Check(
                node=self.node,
                id=check_id,
                name=name,
                notes=definition.notes,
                status=definition.status or "critical",
                service_id=service.id if service else "",
                service_name=service.name if service else "",
                type=definition.kind,
                definition=definition,
            )
            if existing:
                # Re-registration keeps the current state: no flap to critical.
                check.status, check.output = existing.status, existing.output
                check.critical_since = existing.critical_since
            self.store.put_check(check)
        self.runner.start(check_id, definition)

    def remove_check(self, check_id: str) -> None:
        self.runner.stop(check_id)
        self.store.delete_check(self.node, check_id)

    def record_result(self, check_id: str, status: str, output: str) -> None:
        previous = self.store.set_check_status(self.node, check_id, status, output)
        if previous:
            log.info("check %s: %s -> %s: %s", check_id, previous, status, output)

    def update_ttl(self, check_id: str, status: str, output: str) -> None:
        check = self.local_check(check_id)
        if check is None:
            raise HTTPError(
                404,
                f'Unknown check ID "{check_id}". Ensure that the check ID is passed, '
                "not the check name.",
            )
        if check.type != "ttl":
            raise HTTPError(500, f'CheckID "{check_id}" does not have associated TTL')
        output = truncate_output(output)
        self.runner.ttl_touch(check_id, output)
        self.store.set_check_status(self.node, check_id, status, output)

    # -- maintenance --------------------------------------------------------------

    def set_service_maintenance(self, service_id: str, enable: bool, reason: str):
        service = self.local_service(service_id)
        if service is None:
            raise HTTPError(404, f'No service registered with ID "{service_id}"')
        check_id = SERVICE_MAINTENANCE_PREFIX + service_id
        self._set_maintenance(
            check_id,
            enable,
            "Service Maintenance Mode",
            reason or DEFAULT_SERVICE_REASON,
            service,
        )

    def set_node_maintenance(self, enable: bool, reason: str) -> None:
        self._set_maintenance(
            NODE_MAINTENANCE,
            enable,
            "Node Maintenance Mode",
            reason or DEFAULT_NODE_REASON,
            None,
        )

    def _set_maintenance(self, check_id, enable, name, notes, service) -> None:
        with self.store.write():
            present = self.store.check(self.node, check_id) is not None
            if enable and not present:
                self.store.put_check(
                    Check(
                        node=self.node,
                        id=check_id,
                        name=name,
                        notes=notes,
                        status="critical",
                        service_id=service.id if service else "",
                        service_name=service.name if service else "",
                        type="maintenance",
                    )
                )
            elif not enable and present:
                self.store.delete_check(self.node, check_id)

    # -- reaper -------------------------------------------------------------------

    def _schedule_reaper(self) -> None:
        def run():
            self.reap()
            self._schedule_reaper()

        self.scheduler.call_later(seconds(self.config.reap_interval_ns), run)

    def reap(self) -> None:
        """Deregister the agent's services whose check has been critical for
        longer than its DeregisterCriticalServiceAfter (raised to the
        configured minimum)."""
        now = time.monotonic()
        doomed = set()
        with self.store.lock:
            for check in self.local_checks():
                definition = check.definition
                if not (
                    definition and definition.deregister_after and check.service_id
                ):
                    continue
                if check.status != "critical" or check.critical_since is None:
                    continue
                limit = max(
                    definition.deregister_after, self.config.deregister_minimum_ns
                )
                if now - check.critical_since > seconds(limit):
                    doomed.add(check.service_id)
        for service_id in doomed:
            log.info("reaped service %s: check critical too long", service_id)
            self.deregister_service(service_id)


def truncate_output(output: str, limit: int = 4096) -> str:
    raw = output.encode()
    if len(raw) <= limit:
        return output
    cut = raw[:limit].decode(errors="ignore")
    return f"{cut} ... (captured {limit} of {len(raw)} bytes)"
