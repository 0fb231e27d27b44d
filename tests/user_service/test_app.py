import pytest
import requests
from sqlalchemy import create_engine

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
    # The tables exist: no error, no loss.
    second = create_app(Settings(database_url=database_url))
    try:
        assert second.test_client().get(f"/users/{user['id']}").json == user
    finally:
        services.dispose(second, db)


# The users table as the versions before AUTOINCREMENT created it on SQLite.
USERS_WITHOUT_AUTOINCREMENT = """
CREATE TABLE users (
	id INTEGER NOT NULL,
	name VARCHAR(100) NOT NULL,
	email VARCHAR(254) NOT NULL,
	created_at DATETIME NOT NULL,
	updated_at DATETIME NOT NULL,
	PRIMARY KEY (id),
	UNIQUE (email)
)"""


def users_file_of_an_earlier_version(tmp_path) -> str:
    """The URL of a SQLite file with that table and two users, ids 1 and 5."""
    url = f"sqlite:///{tmp_path}/users.db"
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.exec_driver_sql(USERS_WITHOUT_AUTOINCREMENT)
        connection.exec_driver_sql(
            "INSERT INTO users VALUES"
            " (1, 'A', 'a@b.co', '2026-01-02 03:04:05', '2026-01-02 03:04:05'),"
            " (5, 'B', 'b@b.co', '2026-01-02 03:04:06', '2026-01-02 03:04:07')"
        )
    engine.dispose()
    return url


def test_an_sqlite_file_of_an_earlier_version_stops_reusing_ids(tmp_path):
    """Started on a users table without AUTOINCREMENT, the service rebuilds it with every
    user and the unique email; a deleted user's id then goes to nobody."""
    url = users_file_of_an_earlier_version(tmp_path)
    app = create_app(Settings(database_url=url, instance_id=INSTANCE_ID))
    client = app.test_client()
    try:
        assert [(u["id"], u["email"]) for u in client.get("/users").json["items"]] == [
            (1, "a@b.co"),
            (5, "b@b.co"),
        ]
        assert client.get("/users/5").json["updated_at"] == "2026-01-02T03:04:07Z"
        taken = client.post("/users", json={"name": "C", "email": "B@b.co"})
        assert taken.status_code == 409
        assert client.delete("/users/5").status_code == 204
        created = client.post("/users", json={"name": "C", "email": "c@b.co"})
        assert created.json["id"] == 6
    finally:
        services.dispose(app, db)


@pytest.mark.integration
def test_instances_starting_together_upgrade_an_earlier_sqlite_file(tmp_path):
    """Two instances of two workers each upgrade the same file at the same start."""
    url = users_file_of_an_earlier_version(tmp_path)
    (first, url_a), (second, url_b) = services.start_instances("user_service", url, 2)
    try:
        assert requests.delete(f"{url_a}/users/5", timeout=10).status_code == 204
        body = {"name": "C", "email": "c@b.co"}
        created = requests.post(f"{url_b}/users", json=body, timeout=10).json()
        assert created["id"] == 6
        listed = requests.get(f"{url_a}/users", timeout=10).json()["items"]
        assert [(u["id"], u["email"]) for u in listed] == [(1, "a@b.co"), (6, "c@b.co")]
    finally:
        services.stop_now(first, second)
    output = first.output() + second.output()
    assert "Traceback" not in output
    assert output.count("rebuilt table users with AUTOINCREMENT") == 1


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
