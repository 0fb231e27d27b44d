"""The state file: what a running stack is, so another terminal can inspect or stop it.

`<data-dir>/switchyard.json`, written atomically whenever a process starts or stops and
removed when the stack is down. It holds the Consul address and token (the file is
private to the user, mode 0600), the supervisor's pid and each process's pid with its
kernel start time, so a pid reused after a crash is never mistaken for ours.
"""

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from switchyard.process import same_process

FILE_NAME = "switchyard.json"
VERSION = 1


class UnreadableState(ValueError):
    """The state file is there but says nothing usable (empty, cut short, edited, another
    version): what it listed is unknown, so only the lock's holder can be relied on."""


@dataclass
class ProcessRecord:
    name: str
    service: str
    port: int
    pid: int
    started: int | None = None  # kernel start time, see process_start_time()

    def alive(self) -> bool:
        return same_process(self.pid, self.started)


@dataclass
class StackState:
    supervisor_pid: int
    consul_addr: str
    consul_kind: str
    consul_token: str = ""
    gateway_url: str = ""
    consul_ui_url: str = ""
    processes: list[ProcessRecord] = field(default_factory=list)
    supervisor_started: int | None = None
    version: int = VERSION

    def record(self, name: str) -> ProcessRecord | None:
        return next((p for p in self.processes if p.name == name), None)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> "StackState":
        data = json.loads(text)
        if not isinstance(data, dict):
            raise TypeError("not a JSON object")
        if data.get("version") != VERSION:
            raise ValueError(f"unsupported state file version {data.get('version')!r}")
        data["processes"] = [ProcessRecord(**p) for p in data.get("processes", [])]
        return cls(**data)


def state_path(data_dir: Path) -> Path:
    return Path(data_dir) / FILE_NAME


def write_state(data_dir: Path, state: StackState) -> None:
    path = state_path(data_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(state.to_json())
    os.replace(tmp, path)


def read_state(data_dir: Path) -> StackState | None:
    """The state of the stack, None when there is none; raises UnreadableState."""
    path = state_path(data_dir)
    try:
        return StackState.from_json(path.read_text())
    except FileNotFoundError:
        return None
    except (ValueError, TypeError) as exc:  # TypeError: fields missing or unknown
        raise UnreadableState(f"cannot read {path}: {exc}") from exc


def remove_state(data_dir: Path) -> None:
    state_path(data_dir).unlink(missing_ok=True)
