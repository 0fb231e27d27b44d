"""HTTP API endpoints, one module per area of Consul's API."""

from devconsul.endpoints import (
    acl,
    agent,
    agent_runtime,
    catalog,
    config_entries,
    coordinate,
    discovery_chain,
    event,
    gateways,
    health,
    internal,
    kv,
    operator,
    session,
    status,
    txn,
)
from devconsul.routing import Route


def all_routes() -> list[Route]:
    return [
        *agent.ROUTES,
        *catalog.ROUTES,
        *health.ROUTES,
        *kv.ROUTES,
        *session.ROUTES,
        *status.ROUTES,
        *acl.ROUTES,
        *internal.ROUTES,
        *txn.ROUTES,
        *event.ROUTES,
        *coordinate.ROUTES,
        *agent_runtime.ROUTES,
        *operator.ROUTES,
        *config_entries.ROUTES,
        *discovery_chain.ROUTES,
        *gateways.ROUTES,
    ]
