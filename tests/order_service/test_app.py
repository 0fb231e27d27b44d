from discovery.watcher import stop_all
from order_service import create_app
from order_service.models import db
from order_service.settings import Settings
from tests.order_service.conftest import INSTANCE_ID
from tests.support import services
from tests.support.processes import free_port

HEALTHY = (
    b'{"checks":{"database":"ok","user-service":"ok"},'
    b'"service":"order-service","status":"ok"}'
)


def test_importing_has_no_side_effects(tmp_path):
    modules = ("app", "orders", "openapi", "gunicorn_conf")
    leftovers = services.files_left_by_importing("order_service", modules, tmp_path)
    assert leftovers == []


def test_creating_the_app_does_not_contact_user_service(tmp_path):
    # Without USER_SERVICE_URL the source is Consul: nothing may be started before a request.
    app = create_app(Settings(database_url=f"sqlite:///{tmp_path}/o.db"))
    try:
        assert "client" not in vars(app.extensions["user_directory"])
    finally:
        services.dispose(app, db)


def test_health_fails_until_user_service_instances_are_known(tmp_path, monkeypatch):
    # Consul as the source, and nothing listening there: no instance list, so /health
    # must fail and Consul's check cannot pass.
    monkeypatch.setenv("CONSUL_HTTP_ADDR", f"127.0.0.1:{free_port()}")
    app = create_app(Settings(database_url=f"sqlite:///{tmp_path}/o.db"))
    try:
        response = app.test_client().get("/health")
        assert response.status_code == 503
        assert response.json["checks"] == {
            "database": "ok",
            "user-service": "unavailable",
        }
    finally:
        stop_all()
        services.dispose(app, db)


def test_health_is_200_and_byte_stable(client):
    services.check_health_is_200_and_byte_stable(client, HEALTHY, INSTANCE_ID)


def test_database_gone_is_503(tmp_path, user_service_url):
    app = services.app_without_its_database(
        tmp_path,
        lambda url: create_app(
            Settings(database_url=url, user_service_url=user_service_url)
        ),
    )
    client = app.test_client()
    assert client.get("/health").status_code == 503
    response = client.get("/orders/1")
    assert (response.status_code, response.json["error"]["code"]) == (
        503,
        "database_unavailable",
    )
