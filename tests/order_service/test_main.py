import pytest
import requests

from tests.support.processes import ManagedProcess, free_port, python_module
from tests.support.services import stop_now


@pytest.mark.integration
def test_python_m_order_service_serves_under_gunicorn(
    tmp_path, user_service_url, new_user
):
    port = free_port()
    env = {
        "PORT": str(port),
        "BIND_HOST": "127.0.0.1",
        "SERVICE_ADDRESS": "127.0.0.1",
        "DATA_DIR": str(tmp_path),
        "WEB_CONCURRENCY": "1",
        "USER_SERVICE_URL": user_service_url,
        "CONSUL_HTTP_ADDR": f"127.0.0.1:{free_port()}",  # no Consul there: serve unregistered
    }
    process = ManagedProcess(
        python_module("order_service"), env=env, name="python-m-order-service"
    ).start()
    try:
        process.wait_http(f"http://127.0.0.1:{port}/health", status=200)
        body = {"user_id": new_user(), "total_amount": "1.50"}
        response = requests.post(
            f"http://127.0.0.1:{port}/orders", json=body, timeout=10
        )
        assert (response.status_code, response.json()["total_amount"]) == (201, "1.50")
        assert response.headers["X-Served-By"] == f"order-service-127.0.0.1-{port}"
        assert (tmp_path / "order-service.db").exists()
    finally:
        stop_now(process)
