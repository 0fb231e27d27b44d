"""The user-service application factory."""

from flask import Flask

from chassis.service import create_service_app
from user_service.models import db
from user_service.openapi import DOCUMENT
from user_service.settings import Settings
from user_service.users import users


def create_app(settings: Settings | None = None) -> Flask:
    """Build the app; creates missing tables. Registration with Consul is not done here."""
    return create_service_app(
        __name__, settings or Settings.from_env(), db, users, DOCUMENT
    )
