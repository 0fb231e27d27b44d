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
from devconsul.store import Check, Node, Service, Store, apply_status

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
        # The local state, keyed by the exact ID as Consul's agent/local keys
        # it: "Web-1" and "web-1" are two services (and "Disk" and "disk" two
        # checks), each shown by the agent endpoints. The catalog keys them
        # lowercased and holds one of the two; Consul's anti-entropy pushes
        # whichever one the catalog lacks at every full sync, so its catalog
        # alternates between them. Here the catalog keeps the one written
        # last, and removing it puts the other back, as Consul's next sync
        # would. A record in the catalog is the same object as here, so a
        # check result reaches the catalog only for the spelling it holds.
        self.services: dict[str, Service] = {}
        self.checks: dict[str, Check] = {}
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

    def local_services(self) -> list[Service]:
        """The services registered through this agent, by ID in any case as
        the catalog orders them (the caller holds the store's lock)."""
        return _by_id(self.services)

    def local_checks(self) -> list[Check]:
        """The checks registered through this agent, by ID in any case as the
        catalog orders them (the caller holds the store's lock)."""
        return _by_id(self.checks)

    def local_service(self, service_id: str) -> Service | None:
        return self.services.get(service_id)

    def local_check(self, check_id: str) -> Check | None:
        return self.checks.get(check_id)

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
            self.services[service.id] = service
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
                for old in self._checks_of(service.id):
                    if old.id not in kept:
                        self.remove_check(old.id)
        log.info("registered service %s (%s)", service.id, service.name)

    def deregister_service(self, service_id: str) -> None:
        with self.store.write():
            if self.services.pop(service_id, None) is None:
                return
            for check in self._checks_of(service_id):
                self.runner.stop(check.id)
                del self.checks[check.id]
            self.store.delete_service(self.node, service_id)
            self._restore_shadowed()
        log.info("deregistered service %s", service_id)

    def _checks_of(self, service_id: str) -> list[Check]:
        return [c for c in self.checks.values() if c.service_id == service_id]

    def _restore_shadowed(self) -> None:
        """After a deletion from the catalog, which ignores the ID's case, put
        back what the agent still holds under another spelling."""
        for service in self.local_services():
            if self.store.service(self.node, service.id) is None:
                self.store.put_service(service)
        for check in self.local_checks():
            if self.store.check(self.node, check.id) is None:
                self._sync_check(check)

    def _sync_check(self, check: Check) -> None:
        """Write `check` to the catalog and keep, as the agent's record, the
        one the catalog holds: an identical rewrite leaves the old one there."""
        self.store.put_check(check)
        self.checks[check.id] = self.store.check(self.node, check.id)

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
            existing = self.checks.get(check_id)
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
            self._sync_check(check)
        self.runner.start(check_id, definition)

    def remove_check(self, check_id: str) -> None:
        self.runner.stop(check_id)
        with self.store.write():
            if self.checks.pop(check_id, None) is not None:
                self.store.delete_check(self.node, check_id)
                self._restore_shadowed()

    def record_result(self, check_id: str, status: str, output: str) -> None:
        previous = self._set_status(check_id, status, output)
        if previous:
            log.info("check %s: %s -> %s: %s", check_id, previous, status, output)

    def _set_status(self, check_id: str, status: str, output: str) -> str | None:
        """Record a result of the agent's check; the previous status when it
        changed. The catalog sees it only when it holds this spelling."""
        with self.store.write():
            check = self.checks.get(check_id)
            if check is None:
                return None
            previous = check.status
            if self.store.check(self.node, check_id) is check:
                self.store.set_check_status(self.node, check_id, status, output)
            else:
                apply_status(check, status, output)
            return previous if check.status != previous else None

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
        self._set_status(check_id, status, output)

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
            present = check_id in self.checks
            if enable and not present:
                self._sync_check(
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
                self.remove_check(check_id)

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


def _by_id(records: dict) -> list:
    return [records[k] for k in sorted(records, key=lambda k: (k.lower(), k))]


def truncate_output(output: str, limit: int = 4096) -> str:
    raw = output.encode()
    if len(raw) <= limit:
        return output
    cut = raw[:limit].decode(errors="ignore")
    return f"{cut} ... (captured {limit} of {len(raw)} bytes)"
