"""The user-service application factory."""

from flask import Flask

from discovery.storage import init_database, ping
from discovery.web import (
    configure_logging,
    init_service_app,
    install_health,
    install_openapi,
)
from user_service.models import db
from user_service.openapi import DOCUMENT
from user_service.settings import SERVICE_NAME, Settings
from user_service.users import users


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
    app.register_blueprint(users)
    install_health(app, SERVICE_NAME, {"database": lambda: ping(db)})
    install_openapi(app, DOCUMENT)
    return app
