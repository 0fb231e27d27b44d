import pytest
from sqlalchemy import text

from chassis.env import ConfigError
from tests.support.services import dispose, fresh_database
from user_service import create_app
from user_service.models import db
from user_service.settings import Settings


def test_defaults(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    settings = Settings.from_env({"SERVICE_ADDRESS": "10.0.0.1"})
    assert settings.database_url == f"sqlite:///{tmp_path}/var/user-service.db"
    assert (settings.log_level, settings.max_body_bytes) == ("INFO", 1024 * 1024)
    assert settings.idle_transaction_timeout == 5.0
    assert settings.instance_id == "user-service-10.0.0.1-8001"


def test_values_from_env(tmp_path):
    env = {
        "DATABASE_URL": "postgresql://db/users",
        "LOG_LEVEL": "debug",
        "MAX_BODY_BYTES": "2048",
        "PORT": "9001",
        "DATABASE_IDLE_TRANSACTION_TIMEOUT": "2.5",
    }
    settings = Settings.from_env({**env, "SERVICE_ADDRESS": "h"})
    assert settings.database_url == "postgresql+psycopg://db/users"
    assert (settings.log_level, settings.max_body_bytes, settings.instance_id) == (
        "DEBUG",
        2048,
        "user-service-h-9001",
    )
    assert settings.idle_transaction_timeout == 2.5


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("LOG_LEVEL", "LOUD"),
        ("MAX_BODY_BYTES", "lots"),
        ("MAX_BODY_BYTES", "10"),
        ("PORT", "70000"),
        ("DATABASE_URL", "ftp://x"),
        ("DATABASE_IDLE_TRANSACTION_TIMEOUT", "-1"),
        ("DATABASE_IDLE_TRANSACTION_TIMEOUT", "soon"),
    ],
)
def test_bad_values_name_the_variable(tmp_path, name, value):
    with pytest.raises(ConfigError, match=f"^{name}: "):
        Settings.from_env({"DATA_DIR": str(tmp_path), name: value})


@pytest.mark.postgres
def test_the_idle_transaction_timeout_reaches_the_services_sessions(tmp_path):
    """DATABASE_IDLE_TRANSACTION_TIMEOUT is what PostgreSQL applies to the service's own
    sessions (README: When an instance freezes)."""
    with fresh_database("postgresql", tmp_path, "user-service") as url:
        env = {
            "DATABASE_URL": url,
            "DATABASE_IDLE_TRANSACTION_TIMEOUT": "2.5",
            "SERVICE_ADDRESS": "h",
        }
        app = create_app(Settings.from_env(env))
        with app.app_context():
            shown = db.session.scalar(text("SHOW idle_in_transaction_session_timeout"))
        dispose(app, db)
    assert shown == "2500ms"
