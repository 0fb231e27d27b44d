import pytest
import requests

from tests.support.processes import ManagedProcess, free_port, python_module
from tests.support.services import stop_now


@pytest.mark.integration
def test_python_m_user_service_serves_under_gunicorn(tmp_path):
    port = free_port()
    env = {
        "PORT": str(port),
        "BIND_HOST": "127.0.0.1",
        "SERVICE_ADDRESS": "127.0.0.1",
        "DATA_DIR": str(tmp_path),
        "WEB_CONCURRENCY": "1",
        "CONSUL_HTTP_ADDR": f"127.0.0.1:{free_port()}",  # no Consul there: serve unregistered
    }
    process = ManagedProcess(
        python_module("user_service"), env=env, name="python-m-user-service"
    ).start()
    try:
        process.wait_http(f"http://127.0.0.1:{port}/health", status=200)
        response = requests.get(f"http://127.0.0.1:{port}/users", timeout=10)
        assert response.headers["X-Served-By"] == f"user-service-127.0.0.1-{port}"
        assert (tmp_path / "user-service.db").exists()
    finally:
        stop_now(process)
