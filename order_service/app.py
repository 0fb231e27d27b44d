"""The order-service application factory."""

from flask import Flask

from discovery.storage import init_database, ping
from discovery.web import (
    configure_logging,
    init_service_app,
    install_health,
    install_openapi,
)
from order_service.models import db
from order_service.openapi import DOCUMENT
from order_service.orders import orders
from order_service.settings import SERVICE_NAME, Settings
from order_service.users import UserDirectory


def create_app(settings: Settings | None = None) -> Flask:
    """Build the app; creates missing tables. Registration with Consul is not done here."""
    settings = settings or Settings.from_env()
    configure_logging(settings.log_level)
    app = Flask(__name__, static_folder=None)  # an API: no static files
    app.config.update(
        MAX_CONTENT_LENGTH=settings.max_body_bytes, INSTANCE_ID=settings.instance_id
    )
    init_service_app(app, SERVICE_NAME)
    init_database(app, db, settings.database_url)
    app.extensions["user_directory"] = UserDirectory(settings)
    app.register_blueprint(orders)
    install_health(app, SERVICE_NAME, {"database": lambda: ping(db)})
    install_openapi(app, DOCUMENT)
    return app
