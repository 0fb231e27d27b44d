import pytest

from tests.support import services
from tests.user_service.conftest import INSTANCE_ID
from user_service import create_app
from user_service.models import db
from user_service.settings import Settings

HEALTHY = b'{"checks":{"database":"ok"},"service":"user-service","status":"ok"}'


def test_importing_has_no_side_effects(tmp_path):
    modules = ("app", "users", "openapi", "gunicorn_conf")
    leftovers = services.files_left_by_importing("user_service", modules, tmp_path)
    assert leftovers == []  # no var/, no database file


def test_health_is_200_and_byte_stable(client):
    services.check_health_is_200_and_byte_stable(client, HEALTHY, INSTANCE_ID)


def test_tables_are_created_once_and_data_survives_a_restart(database_url):
    first = create_app(Settings(database_url=database_url))
    user = (
        first.test_client().post("/users", json={"name": "A", "email": "a@b.co"}).json
    )
    services.dispose(first, db)
    second = create_app(
        Settings(database_url=database_url)
    )  # tables exist: no error, no loss
    try:
        assert second.test_client().get(f"/users/{user['id']}").json == user
    finally:
        services.dispose(second, db)


def test_database_gone_is_503_for_health_and_requests(tmp_path):
    app = services.app_without_its_database(
        tmp_path,
        lambda url: create_app(Settings(database_url=url, instance_id=INSTANCE_ID)),
    )
    client = app.test_client()
    health = client.get("/health")
    assert (health.status_code, health.json["status"], health.json["checks"]) == (
        503,
        "unavailable",
        {"database": "unavailable"},
    )
    response = client.get("/users")
    assert (response.status_code, response.json["error"]["code"]) == (
        503,
        "database_unavailable",
    )
    assert response.headers["X-Served-By"] == INSTANCE_ID


def test_instance_id_defaults_to_service_address_and_port(tmp_path):
    settings = Settings.from_env(
        {
            "DATABASE_URL": f"sqlite:///{tmp_path}/u.db",
            "SERVICE_ADDRESS": "10.9.8.7",
            "PORT": "8123",
        }
    )
    app = create_app(settings)
    try:
        assert (
            app.test_client().get("/health").headers["X-Served-By"]
            == "user-service-10.9.8.7-8123"
        )
    finally:
        services.dispose(app, db)


@pytest.mark.parametrize("path", ["/static/x.css", "/users/1/extra", "/"])
def test_no_route_serves_html(client, path):
    response = client.get(path)
    assert (response.status_code, response.mimetype) == (404, "application/json")
