"""Which Consul agent the local stack uses, and how to start it when we own it.

Order of preference: the address the user gave (we start nothing), else a real
`consul agent -dev` when `consul` is on PATH, else the embedded devconsul.
"""

import json
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass

EXTERNAL, CONSUL, DEVCONSUL = "external", "consul", "devconsul"
KINDS = (EXTERNAL, CONSUL, DEVCONSUL)
NODE_NAME = "switchyard"


@dataclass(frozen=True)
class AgentChoice:
    kind: str
    host: str
    port: int
    argv: tuple[str, ...] = ()  # empty when the agent is not ours to run

    @property
    def addr(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.addr}"

    @property
    def ui_url(self) -> str:
        return f"{self.url}/ui/"

    @property
    def managed(self) -> bool:
        return self.kind != EXTERNAL


def parse_addr(value: str) -> tuple[str, int]:
    """HOST:PORT, optionally with an http:// scheme, as CONSUL_HTTP_ADDR allows."""
    bare = value.removeprefix("http://").rstrip("/")
    host, sep, port = bare.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"expected HOST:PORT, got {value!r}")
    return host, int(port)


def choose_agent(
    consul_addr: str | None,
    consul_port: int,
    token: str = "",
    prefer: str = "auto",
    which: Callable[[str], str | None] = shutil.which,
) -> AgentChoice:
    """Decide the agent; `prefer` ("auto", "consul", "devconsul") overrides the PATH lookup."""
    if consul_addr:
        host, port = parse_addr(consul_addr)
        return AgentChoice(EXTERNAL, host, port)
    binary = which("consul") if prefer in ("auto", CONSUL) else None
    if prefer == CONSUL and binary is None:
        raise ValueError("--agent consul: no `consul` binary on PATH")
    if binary:
        return AgentChoice(
            CONSUL, "127.0.0.1", consul_port, consul_argv(binary, consul_port, token)
        )
    return AgentChoice(
        DEVCONSUL, "127.0.0.1", consul_port, devconsul_argv(consul_port, token)
    )


def consul_argv(binary: str, port: int, token: str) -> tuple[str, ...]:
    argv = [
        binary,
        "agent",
        "-dev",
        "-client",
        "127.0.0.1",
        "-bind",
        "127.0.0.1",
        "-http-port",
        str(port),
        "-node",
        NODE_NAME,
        "-ui",
    ]
    if token:
        # Deny by default and make the given token the management token, like devconsul's ACL mode.
        acl = (
            'acl {\n  enabled = true\n  default_policy = "deny"\n'
            f"  tokens {{\n    initial_management = {json.dumps(token)}\n  }}\n}}\n"
        )
        argv += ["-hcl", acl]
    return tuple(argv)


def devconsul_argv(port: int, token: str) -> tuple[str, ...]:
    argv = [sys.executable, "-m", "devconsul", "agent", "-dev", "-client", "127.0.0.1"]
    argv += ["-http-port", str(port), "-node", NODE_NAME, "-ui"]
    if token:
        argv += ["-acl-token", token]
    return tuple(argv)
