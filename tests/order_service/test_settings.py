import pytest

from chassis.env import ConfigError
from order_service.settings import Settings


def test_defaults(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    settings = Settings.from_env({"SERVICE_ADDRESS": "10.0.0.1"})
    assert settings.database_url == f"sqlite:///{tmp_path}/var/order-service.db"
    assert (settings.user_service_url, settings.user_service_timeout) == ("", 5.0)
    assert (settings.log_level, settings.max_body_bytes) == ("INFO", 1024 * 1024)
    assert settings.idempotency_key_ttl == 86400.0  # 24 h
    assert settings.instance_id == "order-service-10.0.0.1-8002"


def test_values_from_env(tmp_path):
    env = {
        "DATABASE_URL": f"sqlite:///{tmp_path}/o.db",
        "USER_SERVICE_URL": "http://a:1,http://b:2",
        "USER_SERVICE_TIMEOUT": "0.5",
        "SERVICE_ADDRESS": "h",
        "PORT": "9002",
        "IDEMPOTENCY_KEY_TTL": "0",
    }
    settings = Settings.from_env(env)
    assert settings.idempotency_key_ttl == 0  # for ever
    assert (settings.user_service_url, settings.user_service_timeout) == (
        "http://a:1,http://b:2",
        0.5,
    )
    assert settings.instance_id == "order-service-h-9002"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("USER_SERVICE_TIMEOUT", "soon"),
        ("USER_SERVICE_TIMEOUT", "0"),
        ("IDEMPOTENCY_KEY_TTL", "-1"),
        ("IDEMPOTENCY_KEY_TTL", "a day"),
        ("LOG_LEVEL", "x"),
        ("DATABASE_URL", "::"),
    ],
)
def test_bad_values_name_the_variable(tmp_path, name, value):
    with pytest.raises(ConfigError, match=f"^{name}: "):
        Settings.from_env({"DATA_DIR": str(tmp_path), name: value})
