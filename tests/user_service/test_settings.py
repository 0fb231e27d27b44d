import pytest

from chassis.env import ConfigError
from user_service.settings import Settings


def test_defaults(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    settings = Settings.from_env({"SERVICE_ADDRESS": "10.0.0.1"})
    assert settings.database_url == f"sqlite:///{tmp_path}/var/user-service.db"
    assert (settings.log_level, settings.max_body_bytes) == ("INFO", 1024 * 1024)
    assert settings.instance_id == "user-service-10.0.0.1-8001"


def test_values_from_env(tmp_path):
    env = {
        "DATABASE_URL": "postgresql://db/users",
        "LOG_LEVEL": "debug",
        "MAX_BODY_BYTES": "2048",
        "PORT": "9001",
    }
    settings = Settings.from_env({**env, "SERVICE_ADDRESS": "h"})
    assert settings.database_url == "postgresql+psycopg://db/users"
    assert (settings.log_level, settings.max_body_bytes, settings.instance_id) == (
        "DEBUG",
        2048,
        "user-service-h-9001",
    )


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("LOG_LEVEL", "LOUD"),
        ("MAX_BODY_BYTES", "lots"),
        ("MAX_BODY_BYTES", "10"),
        ("PORT", "70000"),
        ("DATABASE_URL", "ftp://x"),
    ],
)
def test_bad_values_name_the_variable(tmp_path, name, value):
    with pytest.raises(ConfigError, match=f"^{name}: "):
        Settings.from_env({"DATA_DIR": str(tmp_path), name: value})
