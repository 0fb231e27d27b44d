"""The README's configuration tables agree with the code that reads the environment.

Every variable a table names is read (by the settings code, or by the OpenTelemetry SDK);
every variable the settings code reads is named in the Configuration section; and a default
a table gives as a literal is the default: setting the variable to it changes nothing the
code makes of the environment.
"""

import re
from pathlib import Path

import pytest
from opentelemetry.sdk import environment_variables as otel_sdk

from chassis import spanexport, tracing
from chassis.spans import sampler_setting
from discovery import gunicorn_hooks
from discovery.consul_client import ConsulSettings
from discovery.registration import RegistrationSettings
from gateway.settings import GatewaySettings
from order_service.settings import Settings as OrderSettings
from user_service.settings import Settings as UserSettings

README = Path(__file__).resolve().parent.parent / "README.md"

# Documented, read by other code than the settings readers below.
READ_ELSEWHERE = {
    otel_sdk.OTEL_RESOURCE_ATTRIBUTES,  # the SDK's Resource
    otel_sdk.OTEL_EXPORTER_OTLP_TIMEOUT,  # the SDK's OTLP exporter
    "OTEL_PYTHON_FLASK_EXCLUDED_URLS",  # tracing.instrument_service_app, from os.environ
}
# Defaults the tables give in words (they depend on the service or the machine).
DEFAULT_IN_WORDS = {
    "SERVICE_ADDRESS",
    "PORT",
    "WEB_CONCURRENCY",
    "GUNICORN_THREADS",
    "SERVICE_VERSION",
    "DATABASE_URL",
    "OTEL_PYTHON_FLASK_EXCLUDED_URLS",
}
# What makes the readers read every variable: the sampler's ratio is read only for a ratio
# sampler.
BASE = {"OTEL_TRACES_SAMPLER": "parentbased_traceidratio"}

# A default cell's part: a literal, maybe with its unit and a note: `5000` ms, `5` (order-service).
LITERAL = re.compile(r"`([^`<]*)`(?: m?s)?(?: \([^()]*\))?")


def configuration_section() -> str:
    text = README.read_text()
    start = text.index("\n## Configuration\n")
    return text[start : text.index("\n## ", start + 1)]


def table_rows() -> list[tuple[list[str], str]]:
    """(names, default cell) of every variable row: `A` / `_B` in a name cell is A_B."""
    rows = []
    for line in configuration_section().splitlines():
        if not line.startswith("| `"):
            continue
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        assert len(cells) == 3, f"not a variable | default | meaning row: {line}"
        names = re.findall(r"`([A-Z_][A-Z0-9_]*)`", cells[0])
        names = [
            names[0].rsplit("_", 1)[0] + name if name.startswith("_") else name
            for name in names
        ]
        rows.append((names, cells[1]))
    return rows


def documented_defaults() -> dict[str, str | None]:
    """Each variable's documented default: its literal, "" for none, None if in words."""
    defaults = {}
    for names, cell in table_rows():
        parts = cell.split(" / ") if len(names) > 1 else [cell]
        if len(parts) != len(names):
            parts = [cell] * len(names)  # not one part per name: in words
        for name, part in zip(names, parts, strict=True):
            literal = LITERAL.fullmatch(part)
            if part == "none" or part.startswith(("none:", "none ")):
                defaults[name] = ""
            else:
                defaults[name] = literal.group(1) if literal else None
    return defaults


class RecordingEnviron(dict):
    """An environment that remembers which variables were asked for."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.read: set[str] = set()

    def get(self, key, default=None):
        self.read.add(key)
        return super().get(key, default)

    def __getitem__(self, key):
        self.read.add(key)
        return super().__getitem__(key)


@pytest.fixture(autouse=True)
def own_lifecycles(monkeypatch):
    """service_hooks keeps one lifecycle per service name; not ours to leave behind."""
    monkeypatch.setattr(gunicorn_hooks, "_lifecycles", {})


def configuration(environ) -> tuple:
    """Everything the settings code makes of `environ`."""
    hooks = gunicorn_hooks.service_hooks("user-service", "/users", 8001, environ)
    tracing.check_settings(environ)  # reads OTEL_PROPAGATORS too
    return (
        ConsulSettings.from_env(environ),
        RegistrationSettings.from_env("user-service", "/users", 8001, environ),
        [hooks[key] for key in ("bind", "workers", "threads")],
        UserSettings.from_env(environ),
        OrderSettings.from_env(environ),
        GatewaySettings.from_env(environ),
        tracing.tracing_enabled(environ),
        sampler_setting(environ),
        spanexport.settings_from_env(environ),
    )


def variables_read() -> set[str]:
    environ = RecordingEnviron(BASE)
    configuration(environ)
    return environ.read


def test_every_documented_variable_is_read():
    documented = {name for names, _ in table_rows() for name in names}
    assert documented - variables_read() - READ_ELSEWHERE == set()


def test_every_variable_read_is_documented():
    """In a table, or in the Configuration section's text (one variable explains another)."""
    named = {name for names, _ in table_rows() for name in names}
    named |= set(re.findall(r"`([A-Z_][A-Z0-9_]*)`", configuration_section()))
    assert variables_read() - named == set()


def test_defaults_in_words_are_the_ones_without_a_literal():
    in_words = {name for name, value in documented_defaults().items() if value is None}
    assert in_words == DEFAULT_IN_WORDS


@pytest.mark.parametrize(
    ("name", "value"),
    [(name, value) for name, value in documented_defaults().items() if value],
)
def test_documented_default_is_the_default(name, value):
    unset = {k: v for k, v in BASE.items() if k != name}
    assert configuration({**unset, name: value}) == configuration(unset)
