"""`switchyard status`: what Consul sees, joined with the pids this machine runs.

The JSON form is a stable interface for scripts: keys sorted, services and instances
sorted by name/id, and every field always present (null when unknown).
"""

import json

import requests

from switchyard.consul_api import ConsulAPI, aggregate_status, service_checks
from switchyard.render import table, truncate
from switchyard.state import StackState


def collect(consul_addr: str, token: str = "", state: StackState | None = None) -> dict:
    pids = {p.name: p for p in state.processes} if state else {}
    report = {
        "consul": {"addr": consul_addr, "kind": state.consul_kind if state else None},
        "gateway_url": state.gateway_url if state else None,
        "consul_ui_url": state.consul_ui_url if state else None,
        "reachable": True,
        "error": None,
        "services": [],
        "processes": [
            {
                "name": p.name,
                "service": p.service,
                "port": p.port,
                "pid": p.pid,
                "alive": p.alive(),
            }
            for p in sorted(pids.values(), key=lambda p: p.name)
        ],
    }
    api = ConsulAPI(f"http://{consul_addr}", token)
    try:
        report["services"] = [
            {"name": name, "instances": _instances(api, name, pids)}
            for name in api.service_names()
        ]
    except requests.RequestException as exc:
        report["reachable"] = False
        report["error"] = str(exc)
    return report


def _instances(api: ConsulAPI, service: str, pids: dict) -> list[dict]:
    instances = []
    for entry in api.health(service):
        svc = entry["Service"]
        record = pids.get(svc["ID"])
        checks = service_checks(entry.get("Checks", []))
        instances.append(
            {
                "id": svc["ID"],
                "address": svc.get("Address") or entry.get("Node", {}).get("Address"),
                "port": svc.get("Port"),
                "status": aggregate_status(entry.get("Checks", [])),
                "pid": record.pid if record and record.alive() else None,
                "checks": [
                    {
                        "id": c.get("CheckID"),
                        "name": c.get("Name"),
                        "status": c.get("Status"),
                        "output": c.get("Output", ""),
                    }
                    for c in sorted(checks, key=lambda c: c.get("CheckID", ""))
                ],
            }
        )
    return sorted(instances, key=lambda i: i["id"])


def to_json(report: dict) -> str:
    return json.dumps(report, indent=2, sort_keys=True)


def to_text(report: dict) -> str:
    lines = [f"Consul {report['consul']['addr']}"]
    if not report["reachable"]:
        lines.append(f"  unreachable: {report['error']}")
    rows = [
        [
            svc["name"],
            inst["id"],
            f"{inst['address']}:{inst['port']}",
            inst["pid"] if inst["pid"] is not None else "-",
            inst["status"],
            truncate(" / ".join(c["output"] for c in inst["checks"]), 50) or "-",
        ]
        for svc in report["services"]
        for inst in svc["instances"]
    ]
    if rows:
        lines.append(
            table(["SERVICE", "ID", "ADDRESS", "PID", "HEALTH", "CHECK OUTPUT"], rows)
        )
    elif report["reachable"]:
        lines.append("  no services registered")
    dead = [p["name"] for p in report["processes"] if not p["alive"]]
    if dead:
        lines.append(f"not running (in the state file): {', '.join(dead)}")
    return "\n".join(lines)
