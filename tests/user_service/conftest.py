"""Fixtures for user-service tests: an app on a fresh SQLite or PostgreSQL database."""

import pytest

from tests.support.openapi import conforming_client
from tests.support.services import DATABASE_KINDS, dispose, fresh_database
from user_service import create_app
from user_service.models import db
from user_service.openapi import DOCUMENT
from user_service.settings import Settings

INSTANCE_ID = "user-service-test-1"


@pytest.fixture(params=DATABASE_KINDS)
def database_url(request, tmp_path):
    with fresh_database(request.param, tmp_path, "user-service") as url:
        yield url


@pytest.fixture
def app(database_url):
    app = create_app(Settings(database_url=database_url, instance_id=INSTANCE_ID))
    yield app
    dispose(app, db)


@pytest.fixture
def client(app):
    """A test client whose every response is checked against the OpenAPI document."""
    return conforming_client(app, DOCUMENT)
