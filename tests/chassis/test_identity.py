import pytest
from flask import Flask

from chassis.identity import instance_id_from_env
from chassis.responses import init_service_app


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"SERVICE_ADDRESS": "10.1.2.3", "PORT": "9000"}, "svc-10.1.2.3-9000"),
        ({"SERVICE_ADDRESS": "10.1.2.3"}, "svc-10.1.2.3-8001"),
    ],
)
def test_instance_id_from_env(env, expected):
    assert instance_id_from_env("svc", 8001, env) == expected


def test_instance_id_from_env_when_config_has_none(monkeypatch):
    monkeypatch.setenv("SERVICE_ADDRESS", "192.0.2.7")
    monkeypatch.setenv("PORT", "7000")
    app = Flask(__name__, static_folder=None)
    init_service_app(app, "svc")
    assert (
        app.test_client().get("/nothing").headers["X-Served-By"] == "svc-192.0.2.7-7000"
    )
