"""Dependencies point one way (DESIGN.md, Layout), checked by reading every import, lazy ones too.

user_service, order_service, gateway -> discovery -> chassis
(the services may use chassis directly); devconsul imports nothing of ours;
switchyard starts the services as processes and imports none of them.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
OURS = {
    "chassis",
    "discovery",
    "devconsul",
    "user_service",
    "order_service",
    "gateway",
    "switchyard",
}
SERVICES = {"user_service", "order_service", "gateway"}

# package -> the packages of ours it may import (besides itself)
ALLOWED = {
    "chassis": set(),
    "discovery": {"chassis"},
    "devconsul": set(),
    "user_service": {"discovery", "chassis"},
    "order_service": {"discovery", "chassis"},
    "gateway": {"discovery", "chassis"},
    "switchyard": {"discovery", "chassis", "devconsul"},
}


def imported_packages(path: Path) -> set[str]:
    """Top-level names of every absolute import in one file."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def violations(package: str, root: Path = ROOT) -> list[str]:
    found = []
    for path in sorted((root / package).rglob("*.py")):
        bad = (imported_packages(path) & OURS) - ALLOWED[package] - {package}
        found += [f"{path.relative_to(root)} imports {name}" for name in sorted(bad)]
    return found


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_imports_point_one_way(package):
    assert violations(package) == []


def test_every_package_of_ours_is_checked():
    assert set(ALLOWED) == OURS
    assert SERVICES <= set(ALLOWED)
    assert all((ROOT / package / "__init__.py").is_file() for package in OURS)


def test_a_backward_import_is_caught_even_inside_a_function(tmp_path):
    (tmp_path / "chassis").mkdir()
    (tmp_path / "chassis" / "sneaky.py").write_text(
        "import json\nfrom chassis import env\n\n"
        "def f():\n    from discovery.watcher import watch\n    import gateway.app\n"
    )
    assert violations("chassis", tmp_path) == [
        "chassis/sneaky.py imports discovery",
        "chassis/sneaky.py imports gateway",
    ]


def test_the_consul_folder_is_no_python_package():
    # It holds agent configuration for compose; a `consul` package would shadow py-consul.
    assert not list((ROOT / "consul").rglob("*.py"))
