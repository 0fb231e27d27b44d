"""The order-service application factory."""

from flask import Flask

from chassis.service import create_service_app
from order_service import idempotency
from order_service.models import db
from order_service.openapi import DOCUMENT
from order_service.orders import orders
from order_service.settings import USER_SERVICE, Settings
from order_service.users import UserDirectory


def create_app(settings: Settings | None = None) -> Flask:
    """Build the app; creates missing tables. Registration with Consul is not done here."""
    settings = settings or Settings.from_env()
    users = UserDirectory(settings)
    # /health fails until this process knows where user-service is, so Consul's check
    # cannot pass before; it says "stale" while Consul is away (still serving).
    app = create_service_app(
        __name__, settings, db, orders, DOCUMENT, {USER_SERVICE: users.discovery_state}
    )
    app.extensions["user_directory"] = users
    app.extensions[idempotency.EXTENSION] = idempotency.IdempotencyKeys(
        settings.idempotency_key_ttl
    )
    return app
