"""Finding Compose and a Docker engine, for the tests in this folder."""

import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "docker-compose.yml"


def run(argv: list[str], timeout: float = 60, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        argv,
        check=False,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
        **kwargs,
    )


def compose_commands() -> list[list[str]]:
    """Every Compose flavour installed here: the v2 plugin first, then the v1 standalone."""
    found = []
    if (
        shutil.which("docker")
        and run(["docker", "compose", "version"], 30).returncode == 0
    ):
        found.append(["docker", "compose"])
    if shutil.which("docker-compose"):
        found.append(["docker-compose"])
    return found


def engine_problem() -> str | None:
    """Why no Docker engine can be used here, or None when `docker info` succeeds."""
    if not shutil.which("docker"):
        return "no `docker` command installed"
    info = run(["docker", "info"], 30)
    if info.returncode != 0:
        last = (info.stderr.strip().splitlines() or ["docker info failed"])[-1]
        return f"no Docker engine answers (`docker info`: {last})"
    return None
