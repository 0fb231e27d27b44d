"""The order-service application factory."""

from flask import Flask

from chassis.service import create_service_app
from order_service.models import db
from order_service.openapi import DOCUMENT
from order_service.orders import orders
from order_service.settings import Settings
from order_service.users import UserDirectory


def create_app(settings: Settings | None = None) -> Flask:
    """Build the app; creates missing tables. Registration with Consul is not done here."""
    settings = settings or Settings.from_env()
    app = create_service_app(__name__, settings, db, orders, DOCUMENT)
    app.extensions["user_directory"] = UserDirectory(settings)
    return app
