"""What GET /v1/agent/self reports: Consul's shape for a single dev server.

Keys follow agent.Stats() and consul.Server.Stats() (agent/agent.go,
agent/consul/server.go) and a dev agent's answer: "consul" carries the leader
that clients look for, "raft" and "serf_*" describe a one-server cluster, and
every value is a string, as Consul's map[string]map[string]string makes it.
Values are this agent's own (its index, its thread count, its Python), never
invented Go runtime figures.
"""

import os
import platform
import sys
import threading

from devconsul import VERSION

REVISION = "devconsul"
SERVER_PORT = 8300
# Go's GOARCH names for the common machines.
_ARCHES = {"x86_64": "amd64", "aarch64": "arm64", "arm64": "arm64", "i686": "386"}


def server_address(config) -> str:
    """The raft address every other endpoint reports as leader and peer."""
    return f"{config.bind_addr}:{SERVER_PORT}"


# serf's coordinate dimensionality (Consul's default Vivaldi config).
DIMENSIONS = 8


def coordinate() -> dict:
    """The agent's own network coordinate, for /v1/agent/self's Coord and
    /v1/coordinate/*: serf's NewCoordinate (the origin), since a lone agent
    has no peers to measure against."""
    return {"Vec": [0.0] * DIMENSIONS, "Error": 1.5, "Adjustment": 0.0, "Height": 1e-05}


def member(config, node_id: str) -> dict:
    """serf.Member as /v1/agent/members and /v1/agent/self show a dev server
    (no "bootstrap" tag: dev mode does not set bootstrap)."""
    return {
        "Name": config.node,
        "Addr": config.bind_addr,
        "Port": 8301,
        "Tags": {
            "acls": "1" if config.acl_token else "0",
            "build": f"{VERSION}:{REVISION}",
            "dc": config.datacenter,
            "ft_fs": "1",
            "ft_si": "1",
            "id": node_id,
            "port": str(SERVER_PORT),
            "raft_vsn": "3",
            "role": "consul",
            "segment": "",
            "vsn": "2",
            "vsn_max": "3",
            "vsn_min": "2",
            "wan_join_port": "8302",
        },
        "Status": 1,
        "ProtocolMin": 1,
        "ProtocolMax": 5,
        "ProtocolCur": 2,
        "DelegateMin": 2,
        "DelegateMax": 5,
        "DelegateCur": 4,
    }


def config_section(config, node_id: str) -> dict:
    """The fixed ``Config`` struct of AgentSelf (agent/agent_endpoint.go)."""
    return {
        "Datacenter": config.datacenter,
        "PrimaryDatacenter": config.datacenter,
        "NodeName": config.node,
        "NodeID": node_id,
        "Revision": REVISION,
        "Server": True,
        "Version": VERSION,
        "BuildDate": "2026-01-01T00:00:00Z",
    }


def stats(app) -> dict[str, dict[str, str]]:
    config, agent = app.config, app.agent
    with app.store.lock:
        services = len(agent.local_services())
        checks = len(agent.local_checks())
        index = app.store.index
    monitors = agent.runner.counts()
    return {
        "agent": {
            "check_monitors": str(monitors.get("script", 0)),
            "check_ttls": str(monitors.get("ttl", 0)),
            "checks": str(checks),
            "services": str(services),
        },
        "build": {
            "prerelease": "",
            "revision": REVISION,
            "version": VERSION,
            "version_metadata": "",
        },
        "consul": {
            "acl": "enabled" if config.acl_token else "disabled",
            "bootstrap": "false",
            "known_datacenters": "1",
            "leader": "true",
            "leader_addr": server_address(config),
            "server": "true",
        },
        "raft": _raft(config, agent.node_id, index),
        "runtime": _runtime(),
        "serf_lan": _serf(),
        "serf_wan": _serf(),
    }


def _raft(config, node_id: str, index: int) -> dict[str, str]:
    """hashicorp/raft's Stats() for the leader of a one-server cluster."""
    return {
        "applied_index": str(index),
        "commit_index": str(index),
        "fsm_pending": "0",
        "last_contact": "0",
        "last_log_index": str(index),
        "last_log_term": "2",
        "last_snapshot_index": "0",
        "last_snapshot_term": "0",
        "latest_configuration": (
            f"[{{Suffrage:Voter ID:{node_id} Address:{server_address(config)}}}]"
        ),
        "latest_configuration_index": "0",
        "num_peers": "0",
        "protocol_version": "3",
        "protocol_version_max": "3",
        "protocol_version_min": "0",
        "snapshot_version_max": "1",
        "snapshot_version_min": "0",
        "state": "Leader",
        "term": "2",
    }


def _runtime() -> dict[str, str]:
    cpus = str(os.cpu_count() or 1)
    machine = platform.machine().lower()
    return {
        "arch": _ARCHES.get(machine, machine),
        "cpu_count": cpus,
        "goroutines": str(threading.active_count()),
        "max_procs": cpus,
        "os": sys.platform,
        "version": f"python{platform.python_version()}",
    }


def _serf() -> dict[str, str]:
    """serf.Stats() of a pool with this agent as its only member."""
    return {
        "coordinate_resets": "0",
        "encrypted": "false",
        "event_queue": "0",
        "event_time": "1",
        "failed": "0",
        "health_score": "0",
        "intent_queue": "0",
        "left": "0",
        "member_time": "1",
        "members": "1",
        "query_queue": "0",
        "query_time": "1",
    }
