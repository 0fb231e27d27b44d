"""``devconsul agent -dev [...]``: Consul's flag names, single or double dash.

Script checks stay off unless ``-enable-script-checks``, exactly as in Consul.

Prometheus output of /v1/agent/metrics is turned on as in Consul, with
``-hcl 'telemetry { prometheus_retention_time = "60s" }'``. devconsul reads
no configuration language, so ``-hcl`` accepts exactly that one setting and
refuses anything else; a devconsul-only flag would have been simpler, but the
point is that the command line a user gives ``consul agent -dev`` works here
unchanged, and the other way round.

Hidden, dev-only knobs (not in --help, never needed outside tests):
  -dev-reap-interval DURATION       how often the reaper runs (Consul: 30s)
  -dev-deregister-minimum DURATION  floor of DeregisterCriticalServiceAfter
                                    (Consul: 1m)
  -dev-session-ttl-min DURATION     shortest session TTL accepted (Consul's
                                    session_ttl_min, default 10s)
"""

import argparse
import errno
import logging
import re
import signal
import socket
import sys
import threading

from devconsul.config import AgentConfig
from devconsul.durations import parse_duration
from devconsul.logstream import LEVELS
from devconsul.server import AgentHTTPServer, App


def _flag(parser, name: str, **kwargs) -> None:
    parser.add_argument(f"-{name}", f"--{name}", **kwargs)


def _duration(text: str) -> int:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


# The one -hcl setting understood: the telemetry block with its retention time.
_TELEMETRY_HCL = re.compile(
    r'\s*telemetry\s*=?\s*\{\s*prometheus_retention_time\s*=\s*"([^"]*)"\s*\}\s*'
)


def _hcl(text: str) -> int:
    """-hcl's one supported setting: telemetry.prometheus_retention_time (ns)."""
    match = _TELEMETRY_HCL.fullmatch(text)
    if not match:
        raise argparse.ArgumentTypeError(
            "devconsul understands only "
            "'telemetry { prometheus_retention_time = \"DURATION\" }' in -hcl"
        )
    return _duration(match.group(1))


def _port(text: str) -> int:
    if not text.isdigit() or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"invalid port {text!r}")
    return int(text)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="devconsul",
        description="A Consul-compatible single-node development agent.",
        allow_abbrev=False,
    )
    commands = parser.add_subparsers(dest="command", required=True)
    agent = commands.add_parser(
        "agent", help="run the agent (needs -dev)", allow_abbrev=False
    )
    _flag(agent, "dev", action="store_true", help="development mode (required)")
    _flag(agent, "client", default="127.0.0.1", help="address the HTTP API binds to")
    _flag(agent, "http-port", type=_port, default=8500, dest="http_port")
    _flag(agent, "node", default=None, help="node name (default: hostname)")
    _flag(agent, "datacenter", default="dc1")
    _flag(agent, "bind", default="127.0.0.1", help="address advertised for the node")
    _flag(
        agent, "ui", action="store_true", help="accepted; dev mode always serves /ui/"
    )
    _flag(
        agent,
        "acl-token",
        dest="acl_token",
        default=None,
        help="require this token on every API request (opt-in ACL mode)",
    )
    _flag(
        agent,
        "enable-script-checks",
        dest="enable_script_checks",
        action="store_true",
        help="run script checks (Args) registered through the HTTP API",
    )
    _flag(
        agent,
        "enable-local-script-checks",
        dest="enable_local_script_checks",
        action="store_true",
        help="script checks from configuration files only (none here)",
    )
    _flag(agent, "log-level", dest="log_level", default="info", choices=LEVELS)
    _flag(
        agent,
        "hcl",
        dest="prometheus_retention",
        type=_hcl,
        action="append",
        default=[],
        help="only 'telemetry { prometheus_retention_time = \"60s\" }': "
        "Prometheus output on /v1/agent/metrics",
    )
    hidden = argparse.SUPPRESS
    _flag(
        agent,
        "dev-reap-interval",
        dest="reap_interval",
        type=_duration,
        default=AgentConfig.reap_interval_ns,
        help=hidden,
    )
    _flag(
        agent,
        "dev-deregister-minimum",
        dest="deregister_minimum",
        type=_duration,
        default=AgentConfig.deregister_minimum_ns,
        help=hidden,
    )
    _flag(
        agent,
        "dev-session-ttl-min",
        dest="session_ttl_min",
        type=_duration,
        default=AgentConfig.session_ttl_min_ns,
        help=hidden,
    )
    return parser


def config_from_args(args: argparse.Namespace) -> AgentConfig:
    return AgentConfig(
        node=args.node or socket.gethostname(),
        datacenter=args.datacenter,
        client_addr=args.client,
        http_port=args.http_port,
        bind_addr=args.bind,
        acl_token=args.acl_token,
        enable_script_checks=args.enable_script_checks,
        enable_local_script_checks=(
            args.enable_local_script_checks or args.enable_script_checks
        ),
        # Like repeated -hcl fragments in Consul, the last one wins.
        prometheus_retention_ns=(args.prometheus_retention or [0])[-1],
        reap_interval_ns=args.reap_interval,
        deregister_minimum_ns=args.deregister_minimum,
        session_ttl_min_ns=args.session_ttl_min,
    )


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.dev:
        parser.error("devconsul only runs in development mode: add -dev")
    # The level sits on the handler too: a /v1/agent/monitor stream may lower
    # the loggers' level to see debug lines, and stderr must not get them.
    stderr = logging.StreamHandler(sys.stderr)
    stderr.setLevel(LEVELS[args.log_level])
    logging.basicConfig(
        level=LEVELS[args.log_level],
        format="%(levelname)s %(name)s: %(message)s",
        handlers=[stderr],
    )
    return serve(config_from_args(args))


def serve(config: AgentConfig) -> int:
    app = App(config)
    try:
        server = AgentHTTPServer((config.client_addr, config.http_port), app)
    except OSError as exc:
        reason = "address already in use" if exc.errno == errno.EADDRINUSE else exc
        print(
            f"devconsul: error: cannot listen on {config.client_addr}:"
            f"{config.http_port}: {reason}",
            file=sys.stderr,
        )
        return 1
    app.agent.start()
    # Wake-ups are latency-bound: a woken watcher thread should not wait the
    # default 5 ms for the GIL while another request thread computes.
    sys.setswitchinterval(0.001)

    def stop(signum, frame):
        # shutdown() waits for serve_forever to return, so not from its own thread.
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    host, port = server.server_address[:2]
    print(
        f"devconsul: HTTP API on http://{host}:{port} (node {config.node}, "
        f"datacenter {config.datacenter}, UI at http://{host}:{port}/ui/)",
        flush=True,
    )
    try:
        server.serve_forever(poll_interval=0.1)
    finally:
        server.server_close()
        app.agent.stop()
    print("devconsul: stopped", flush=True)
    return 0
