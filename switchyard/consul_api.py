"""The few Consul HTTP API calls the CLI needs, with the ACL token on every one.

Plain `requests` rather than the service-side discovery package: switchyard only looks at
Consul from the outside, the way an operator would with curl.
"""

from collections.abc import Mapping

import requests

from switchyard.render import Console

TIMEOUT = 3.0


class ConsulAPI:
    def __init__(self, base_url: str, token: str = ""):
        self.base_url = base_url.rstrip("/")
        self.session = requests.Session()
        if token:
            self.session.headers["X-Consul-Token"] = token

    def _get(self, path: str, **params) -> object:
        resp = self.session.get(
            f"{self.base_url}{path}", params=params, timeout=TIMEOUT
        )
        resp.raise_for_status()
        return resp.json()

    def leader_ready(self) -> bool:
        try:
            return bool(self._get("/v1/status/leader"))
        except requests.RequestException:
            return False

    def service_names(self) -> list[str]:
        return sorted(self._get("/v1/catalog/services"))

    def health(self, service: str) -> list[dict]:
        """Every instance of `service` with its checks, passing or not."""
        return list(self._get(f"/v1/health/service/{service}"))

    def instance_status(self, service: str) -> dict[str, str]:
        """Instance id -> aggregated check status, worst first (critical > warning > passing)."""
        return {
            entry["Service"]["ID"]: aggregate_status(entry.get("Checks", []))
            for entry in self.health(service)
        }

    def deregister(self, service_id: str) -> None:
        resp = self.session.put(
            f"{self.base_url}/v1/agent/service/deregister/{service_id}", timeout=TIMEOUT
        )
        if resp.status_code != 404:
            resp.raise_for_status()


def deregister_leftovers(
    api: ConsulAPI, instances: Mapping[str, str], console: Console
) -> None:
    """Deregister those of `instances` (id -> service name) that Consul still lists.

    Instances that died without deregistering (SIGKILL, crash) must not linger: whoever
    stops a stack (its supervisor, `switchyard down`, the reaper) calls this once the
    instances are stopped and before the agent is.
    """
    try:
        for service in set(instances.values()):
            for instance_id in api.instance_status(service):
                if instance_id in instances:
                    api.deregister(instance_id)
                    console.step("[deregistered]", instance_id, "left behind")
    except requests.RequestException as exc:
        console.say(f"WARNING switchyard: could not check Consul for leftovers: {exc}")


_SEVERITY = {"passing": 0, "warning": 1, "critical": 2, "maintenance": 3}


def aggregate_status(checks: list[dict]) -> str:
    statuses = [c.get("Status", "critical") for c in checks] or ["passing"]
    return max(statuses, key=lambda s: _SEVERITY.get(s, 2))


def service_checks(checks: list[dict]) -> list[dict]:
    """The instance's own checks: node-level ones (empty ServiceID) are not about it."""
    return [c for c in checks if c.get("ServiceID")]
