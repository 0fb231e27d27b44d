"""Gateway reads as a dev agent with no gateways answers them:
/v1/catalog/gateway-services/:gateway and /v1/health/ingress/:service.

Consul links services to gateways from ingress-gateway and terminating-gateway
config entries; devconsul stores those entries but registers no gateways, so
both reads are empty -- null for gateway services (Consul returns the nil
list as is), [] for ingress health (which Consul turns into an empty list).
They block on the config-entries table, where such links would come from.
"""

from devconsul.endpoints.health import _passing_only
from devconsul.filter import SERVICE_ENTRY_SELECTORS
from devconsul.filtering import filtered_read
from devconsul.messages import Request, Response
from devconsul.queries import blocking_read
from devconsul.routing import GET, Route, path_arg
from devconsul.store import CONFIG


def gateway_services(app, req: Request) -> Response:
    path_arg(req, "Missing gateway name")
    return blocking_read(app, req, lambda: app.store.table_index[CONFIG], lambda: None)


def ingress_health(app, req: Request) -> Response:
    path_arg(req, "Missing service name")
    _passing_only(req)
    return filtered_read(
        app,
        req,
        SERVICE_ENTRY_SELECTORS,
        lambda: app.store.table_index[CONFIG],
        list,
    )


ROUTES = [
    Route("/v1/catalog/gateway-services/", GET, gateway_services, prefix=True),
    Route("/v1/health/ingress/", GET, ingress_health, prefix=True),
]
