"""docker-compose.yml: valid for the installed Compose, and shaped as the issue asks."""

import os
from pathlib import Path

import pytest
import yaml

from tests.compose.tooling import COMPOSE_FILE, REPO, compose_commands, run

DOMAIN_SERVICES = ("user-service", "order-service")


@pytest.fixture(scope="module")
def resolved() -> dict:
    """The file as Compose itself resolves it (anchors merged, paths absolute)."""
    commands = compose_commands()
    if not commands:
        pytest.skip("neither `docker compose` nor `docker-compose` is installed")
    # Every installed flavour must accept the file; the first one's view is checked below.
    results = [
        run([*command, "-f", str(COMPOSE_FILE), "config"]) for command in commands
    ]
    for command, result in zip(commands, results, strict=True):
        assert result.returncode == 0, f"{' '.join(command)} config:\n{result.stderr}"
    return yaml.safe_load(results[0].stdout)


def test_every_service_is_there(resolved):
    assert set(resolved["services"]) == {
        "consul",
        "postgres",
        "user-service",
        "order-service",
        "gateway",
        "jaeger",
    }


@pytest.mark.parametrize("name", [*DOMAIN_SERVICES, "gateway"])
def test_every_application_service_sends_its_spans_to_jaeger(name, resolved):
    environment = resolved["services"][name]["environment"]
    assert environment["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://jaeger:4318"
    assert environment["OTEL_SDK_DISABLED"] == "false"
    assert "jaeger" in resolved["services"][name]["depends_on"]


@pytest.mark.parametrize("name", DOMAIN_SERVICES)
def test_domain_services_run_two_replicas_without_fixed_ports(name, resolved):
    service = resolved["services"][name]
    assert service["deploy"]["replicas"] == 2
    assert "ports" not in service  # replicas cannot share a host port
    assert "container_name" not in service


@pytest.mark.parametrize("name", ["consul", "postgres", *DOMAIN_SERVICES, "gateway"])
def test_every_service_has_a_healthcheck(name, resolved):
    assert resolved["services"][name]["healthcheck"]["test"]


def test_dependencies_wait_for_health(resolved):
    services = resolved["services"]
    for name in (*DOMAIN_SERVICES, "gateway"):
        depends = dict(services[name]["depends_on"])
        assert "consul" in depends
        # Jaeger only has to be started: spans that cannot be delivered never hold a request.
        assert depends.pop("jaeger")["condition"] == "service_started"
        assert all(d["condition"] == "service_healthy" for d in depends.values()), name
    assert {"user-service", "order-service"} <= set(services["gateway"]["depends_on"])
    assert "postgres" in services["user-service"]["depends_on"]


def test_published_ports(resolved):
    def published(name):
        return {
            int(p["published"]) for p in resolved["services"][name].get("ports", [])
        }

    assert published("gateway") == {8000}
    assert published("consul") == {8500}
    assert published("jaeger") == {16686}


@pytest.mark.parametrize("name", [*DOMAIN_SERVICES, "gateway"])
def test_each_service_exposes_the_port_it_listens_on(name, resolved):
    """The image exposes no port of its own: one fixed EXPOSE would misdescribe (in
    `docker ps`, and to tools reading the image) every service run on another PORT."""
    service = resolved["services"][name]
    exposed = {str(p) for p in service.get("expose", [])}
    exposed |= {str(p["target"]) for p in service.get("ports", [])}
    assert exposed == {service["environment"]["PORT"]}
    assert "\nEXPOSE" not in (REPO / "Dockerfile").read_text()


def test_one_image_for_every_application_service(resolved):
    apps = [resolved["services"][n] for n in (*DOMAIN_SERVICES, "gateway")]
    assert {s["image"] for s in apps} == {
        os.environ.get("SWITCHYARD_IMAGE", "switchyard:latest")
    }
    assert all(Path(s["build"]["context"]) == REPO for s in apps)
    commands = [s["command"][-1] for s in apps]
    assert commands == [
        "user_service.wsgi:app",
        "order_service.wsgi:app",
        "gateway.wsgi:app",
    ]


def test_switchyard_image_names_the_one_image():
    """What keeps two stacks built from different checkouts on one engine apart."""
    for command in compose_commands():
        result = run(
            [*command, "-f", str(COMPOSE_FILE), "config"],
            env={**os.environ, "SWITCHYARD_IMAGE": "switchyard-test:abc"},
        )
        services = yaml.safe_load(result.stdout)["services"]
        assert {services[n]["image"] for n in (*DOMAIN_SERVICES, "gateway")} == {
            "switchyard-test:abc"
        }, command


def test_configuration_is_environment_only(resolved):
    for name in (*DOMAIN_SERVICES, "gateway"):
        env = resolved["services"][name]["environment"]
        assert env["CONSUL_HTTP_ADDR"] == "consul:8500"
        assert "SERVICE_ADDRESS" not in env  # each replica advertises its container IP
        assert "volumes" not in resolved["services"][name]
    databases = {
        resolved["services"][n]["environment"]["DATABASE_URL"] for n in DOMAIN_SERVICES
    }
    assert {url.rsplit("/", 1)[1] for url in databases} == {"users", "orders"}


def test_consul_reads_its_configuration_from_the_consul_folder(resolved):
    consul = resolved["services"]["consul"]
    assert consul["image"].startswith("hashicorp/consul")
    mounts = [
        v if isinstance(v, str) else f"{v['source']}:{v['target']}"
        for v in consul["volumes"]
    ]
    assert any(m.startswith(f"{REPO / 'consul'}:") for m in mounts)
    assert not list(
        (REPO / "consul").glob("*.py")
    )  # `consul` must stay importable as py-consul


def test_postgres_creates_one_database_per_service():
    init = (REPO / "docker" / "postgres-init" / "01-databases.sql").read_text()
    assert "CREATE DATABASE users" in init
    assert "CREATE DATABASE orders" in init


def test_local_state_stays_out_of_the_build_context():
    """What git ignores is local state (caches, builds, hypothesis' database): in the build
    context it would invalidate the `COPY . .` layer, and so the pip install, at every test
    run. And .env, where Compose finds its variables, may hold a token."""
    ignored = set((REPO / ".dockerignore").read_text().split("\n"))

    def covered(pattern: str) -> bool:
        pattern = pattern.rstrip("/")
        top = pattern.split("/")[0]
        return bool({pattern, f"**/{pattern}", top} & ignored)

    git_ignored = [
        line
        for line in (REPO / ".gitignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert [p for p in git_ignored if not covered(p)] == []
    assert ".env" in ignored


def test_dockerfile_builds_one_non_root_image():
    dockerfile = (REPO / "Dockerfile").read_text()
    assert dockerfile.startswith("# ") and "FROM python:3.11-slim" in dockerfile
    assert "'.[postgres]'" in dockerfile
    assert "\nUSER switchyard" in dockerfile
