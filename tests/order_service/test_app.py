import shutil
import subprocess
import sys

from order_service import create_app
from order_service.models import db
from order_service.settings import Settings
from tests.order_service.conftest import INSTANCE_ID
from tests.support.processes import REPO
from tests.support.services import dispose

HEALTHY = b'{"checks":{"database":"ok"},"service":"order-service","status":"ok"}'


def test_importing_has_no_side_effects(tmp_path):
    modules = "order_service, order_service.app, order_service.orders, order_service.openapi, order_service.gunicorn_conf"
    subprocess.run(
        [sys.executable, "-c", f"import {modules}"],
        cwd=tmp_path,
        check=True,
        env={"PYTHONPATH": str(REPO)},
    )
    assert list(tmp_path.iterdir()) == []


def test_health_is_200_and_byte_stable(client):
    first, second = client.get("/health"), client.get("/health")
    assert (first.status_code, first.data, second.data) == (200, HEALTHY, HEALTHY)
    assert first.headers["X-Served-By"] == INSTANCE_ID


def test_creating_the_app_does_not_contact_user_service(tmp_path):
    # Without USER_SERVICE_URL the source is Consul: nothing may be started before a request.
    app = create_app(Settings(database_url=f"sqlite:///{tmp_path}/o.db"))
    try:
        assert "client" not in vars(app.extensions["user_directory"])
    finally:
        dispose(app, db)


def test_database_gone_is_503(tmp_path, user_service_url):
    (tmp_path / "data").mkdir()
    settings = Settings(
        database_url=f"sqlite:///{tmp_path}/data/o.db",
        user_service_url=user_service_url,
    )
    app = create_app(settings)
    dispose(app, db)
    shutil.rmtree(tmp_path / "data")
    client = app.test_client()
    assert client.get("/health").status_code == 503
    response = client.get("/orders/1")
    assert (response.status_code, response.json["error"]["code"]) == (
        503,
        "database_unavailable",
    )
