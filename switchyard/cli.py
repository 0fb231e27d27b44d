"""`switchyard up | status | down | traces`: the whole local system in one command."""

import argparse
import contextlib
import os
import signal
import sys
import time
from pathlib import Path

import requests

from chassis.logs import LOG_LEVELS
from discovery.strategies import STRATEGIES
from switchyard import shutdown, status
from switchyard.agent import KINDS, choose_agent
from switchyard.lifeline import Lifeline, claim, finish_stopping, running_holder
from switchyard.otlp import OTLPReceiver
from switchyard.plan import DRAIN_SECONDS, MAX_DRAIN_SECONDS, StackOptions
from switchyard.render import Console, table
from switchyard.restarts import Restarts
from switchyard.spanstore import SpanRecord, SpanStore
from switchyard.stack import Stack, StartupError
from switchyard.state import StackState, UnreadableState, read_state, state_path
from switchyard.traces import find_trace, trace_table, waterfall

LOOPBACK = ("127.0.0.1", "localhost", "::1")

# Every way to ask `switchyard up` to stop: Ctrl-C, kill, a closed terminal, Ctrl-\.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)
OUTPUT_GONE = 141  # as if SIGPIPE had ended us, the way `| head` ends other tools


def positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {number}")
    return number


def log_level(value: str) -> str:
    level = value.strip().upper()
    if level not in LOG_LEVELS:
        raise argparse.ArgumentTypeError(
            f"one of {', '.join(LOG_LEVELS)} (any case), got {value!r}"
        )
    return level


def drain(value: str) -> float:
    seconds = float(value)
    # Bounded so that a stop still fits STOP_GRACE, which `down` and the reaper wait.
    if not 0 <= seconds <= MAX_DRAIN_SECONDS:
        raise argparse.ArgumentTypeError(
            f"must be from 0 to {MAX_DRAIN_SECONDS:g} seconds, got {value}"
        )
    return seconds


def port(value: str) -> int:
    number = int(value)
    if not 0 < number < 65536:
        raise argparse.ArgumentTypeError(f"not a TCP port: {number}")
    return number


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="switchyard", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    up = commands.add_parser("up", help="start Consul, the services and the gateway")
    up.add_argument(
        "--users", type=positive, default=2, help="user-service instances (2)"
    )
    up.add_argument(
        "--orders", type=positive, default=2, help="order-service instances (2)"
    )
    up.add_argument(
        "--gateway-port", type=port, default=8000, help="gateway port (8000)"
    )
    where = up.add_mutually_exclusive_group()
    where.add_argument(
        "--consul-port", type=port, default=8500, help="port of the agent we start"
    )
    where.add_argument(
        "--consul-addr", metavar="HOST:PORT", help="use this agent; start none"
    )
    up.add_argument(
        "--agent",
        choices=("auto",) + KINDS[1:],
        default="auto",
        help="which agent to start: consul if on PATH, else devconsul (auto)",
    )
    up.add_argument(
        "--strategy",
        choices=sorted(STRATEGIES),
        default="round_robin",
        help="gateway load-balancing strategy (round_robin)",
    )
    up.add_argument("--startup-timeout", type=float, default=60.0, metavar="SECONDS")
    up.add_argument(
        "--drain-seconds",
        type=drain,
        default=DRAIN_SECONDS,
        metavar="SECONDS",
        help="on stop, each instance keeps serving this long out of the passing set "
        f"({DRAIN_SECONDS:g})",
    )
    up.add_argument(
        "--log-level",
        type=log_level,  # argparse applies it to the default from $LOG_LEVEL too
        default=os.environ.get("LOG_LEVEL", "INFO").upper(),
        help="LOG_LEVEL of every process (default: $LOG_LEVEL, else INFO)",
    )
    up.add_argument(
        "--otlp-endpoint",
        metavar="URL",
        help="send spans to this OTLP/HTTP collector "
        "(default: keep them under the data directory for `switchyard traces`)",
    )

    st = commands.add_parser("status", help="what Consul sees, with local pids")
    st.add_argument("--json", action="store_true", help="stable JSON for scripts")
    st.add_argument(
        "--consul-addr", metavar="HOST:PORT", help="default: from the state file"
    )

    commands.add_parser("down", help="stop a stack started in another terminal")

    tr = commands.add_parser("traces", help="recent traces, or one as a waterfall")
    tr.add_argument("id", nargs="?", help="a trace id or an X-Request-ID")
    tr.add_argument("--limit", type=positive, default=20, help="traces listed (20)")

    for sub in (up, st, commands.choices["down"], tr):
        sub.add_argument(
            "--data-dir", type=Path, default=Path("var"), help="default: var/"
        )
    for sub in (up, st):
        sub.add_argument(
            "--token",
            default=os.environ.get("CONSUL_HTTP_TOKEN", ""),
            help="Consul ACL token (default: $CONSUL_HTTP_TOKEN)",
        )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    command = {
        "up": cmd_up,
        "status": cmd_status,
        "down": cmd_down,
        "traces": cmd_traces,
    }[args.command]
    try:
        return command(args)
    except KeyboardInterrupt:  # a stop signal before the stack started
        return 130
    except BrokenPipeError:
        # `switchyard status | head`: the reader left; say nothing more, like other tools.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


def cmd_up(args: argparse.Namespace) -> int:
    console = Console()
    try:
        agent = choose_agent(args.consul_addr, args.consul_port, args.token, args.agent)
    except ValueError as exc:
        console.say(f"ERROR switchyard: {exc}")
        return 2
    if agent.port == args.gateway_port and agent.host in LOOPBACK:
        # Caught here, not by a gateway failing to bind after its retries and a rollback.
        console.say(
            f"ERROR switchyard: --gateway-port {args.gateway_port} is the Consul agent's port"
        )
        return 2
    # `switchyard up >&-`: a stack nobody could see or stop by Ctrl-C.
    if console.gone():
        with contextlib.suppress(OSError, AttributeError, ValueError):
            sys.stderr.write(
                "ERROR switchyard: stdout or stderr is closed; not starting\n"
            )
        return OUTPUT_GONE
    stop_on_signals()
    try:
        lock = claim(args.data_dir, console)
    except OSError as exc:  # not a directory, not writable, ...
        console.say(unusable(args.data_dir, exc))
        return 1
    if lock is None:
        return 1
    # Spans go to the user's collector, or to our receiver, which lives as long as we do.
    receiver = None
    if args.otlp_endpoint:
        console.say(f"switchyard: spans go to {args.otlp_endpoint}")
    else:
        store = SpanStore(args.data_dir)
        receiver = OTLPReceiver(store).start()
        console.say(
            f"switchyard: spans kept in {store.path} (receiver {receiver.url}); "
            "see them with `switchyard traces`"
        )
    options = StackOptions(
        users=args.users,
        orders=args.orders,
        gateway_port=args.gateway_port,
        strategy=args.strategy,
        data_dir=args.data_dir,
        token=args.token,
        otlp_endpoint=args.otlp_endpoint or receiver.url,
        drain_seconds=args.drain_seconds,
        log_level=args.log_level,
    )
    try:
        with lock, Lifeline(args.data_dir, lock):
            stack = Stack(
                options,
                agent,
                console,
                startup_timeout=args.startup_timeout,
                on_stop=ignore_stop_signals,
            )
            try:
                return run(stack, console)
            finally:
                # A stop signal raises KeyboardInterrupt once: the handler then ignores
                # them all. Landing just as a failed start-up, or run(), begins to stop
                # (before that stop ignores signals), it cuts the stop short; this one
                # completes it, and no signal can interrupt it any more.
                stack.stop()
    finally:
        if receiver is not None:
            receiver.stop()


def stop_on_signals() -> None:
    """Every stop signal means "stop everything"; a second one must not abort the stopping.

    SIGHUP stays ignored when it was (`nohup switchyard up`: keep running once the terminal
    is closed).
    """
    signals = [
        sig
        for sig in STOP_SIGNALS
        if not (sig == signal.SIGHUP and signal.getsignal(sig) == signal.SIG_IGN)
    ]

    def handler(signum, frame):
        ignore_stop_signals()
        raise KeyboardInterrupt

    for sig in signals:
        signal.signal(sig, handler)


def ignore_stop_signals() -> None:
    """Once stopping has begun, for a signal or after a failed start-up, nothing may cut
    it short: what it would leave running, and why it stopped, matter more."""
    for sig in STOP_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)


def run(stack: Stack, console: Console) -> int:
    console.say(f"switchyard: starting (data in {stack.options.data_dir}/)")
    try:
        stack.start()
    except StartupError as exc:
        console.say(exc.describe())
        console.say("ERROR switchyard: start-up failed; everything else was stopped")
        return 1
    except KeyboardInterrupt:
        console.say("switchyard: interrupted during start-up; everything was stopped")
        return 130
    code = 0
    try:
        console.say(summary(stack))
        console.say("switchyard: following logs; Ctrl-C stops everything")
        console.follow_logs(list(stack.processes))
        supervise(stack, console)
        code = OUTPUT_GONE
    except KeyboardInterrupt:
        pass
    finally:  # even after a bug of ours, leave nothing running
        console.stopping()  # output nobody reads is dropped from now on, not waited for
        console.say("switchyard: stopping (draining every instance)")
        stack.stop()
        console.say("switchyard: stopped")
    return code


def supervise(stack: Stack, console: Console) -> None:
    """Start again what exits on its own (see switchyard.restarts); the rest keeps running
    until a signal, or until nobody reads our output any more (returns then)."""
    restarts = Restarts()
    while not console.gone():
        for proc in stack.exited():
            if not restarts.pending(proc.name):
                delay = restarts.exited(proc.name)
                console.say(
                    f"WARNING switchyard: {proc.name} exited with code {proc.returncode}; "
                    f"starting it again{f' in {delay:.0f}s' if delay else ''}"
                )
        for name in restarts.due():
            try:
                stack.relaunch(name)
            except StartupError as exc:  # its log cannot be written, say: again later
                console.say(exc.describe())
        time.sleep(0.5)


def summary(stack: Stack) -> str:
    health = {}
    for service in {s.service for s in stack.instances()}:
        try:
            health.update(stack.consul.instance_status(service))
        except requests.RequestException:
            pass  # shown as "-": the table must not fail because Consul blinked
    rows = [
        [
            spec.name,
            f"127.0.0.1:{spec.port}",
            stack.processes[spec.name].pid,
            health.get(spec.name, "-"),
        ]
        for spec in stack.instances()
    ]
    return "\n".join(
        [
            "",
            table(["INSTANCE", "ADDRESS", "PID", "HEALTH"], rows),
            "",
            f"Gateway    {stack.gateway_url}",
            f"Consul UI  {stack.agent.ui_url}  ({stack.agent.kind})",
            f"State      {state_path(stack.options.data_dir)}",
            f"Logs       {stack.logs_dir}/",
            "",
        ]
    )


def unusable(data_dir: Path, exc: OSError) -> str:
    return f"ERROR switchyard: cannot use the data directory {data_dir}/: {exc}"


def load_state(data_dir: Path) -> tuple[StackState | None, UnreadableState | None]:
    """The state file's stack, or why it cannot be used; raises OSError when the data
    directory cannot be read (a file, say)."""
    try:
        return read_state(data_dir), None
    except UnreadableState as problem:
        return None, problem


def cmd_status(args: argparse.Namespace) -> int:
    try:
        state, problem = load_state(args.data_dir)
    except OSError as exc:
        print(unusable(args.data_dir, exc), file=sys.stderr)
        return 1
    if problem is not None:
        print(f"WARNING switchyard: {problem}", file=sys.stderr)
    addr = args.consul_addr or (state.consul_addr if state else None)
    if addr is None:
        print(no_address(args.data_dir, problem), file=sys.stderr)
        return 1
    token = args.token or (state.consul_token if state else "")
    report = status.collect(addr, token, state)
    print(status.to_json(report) if args.json else status.to_text(report))
    return 0 if report["reachable"] else 1


def no_address(data_dir: Path, problem: UnreadableState | None) -> str:
    """Why status has no agent to ask: no stack, one still starting, or no usable state."""
    holder = running_holder(data_dir)
    if holder is None:
        missing = "" if problem else f" (no {state_path(data_dir)})"
        return (
            f"no stack running from {data_dir}/{missing}; "
            "pass --consul-addr to ask an agent directly"
        )
    # Until its first process starts, a starting stack has written no state file.
    doing = "running" if problem else "starting"
    return (
        f"a stack from {data_dir}/ is {doing} (switchyard pid {holder.pid}, "
        f"started {holder.since}); pass --consul-addr to ask its agent directly"
    )


def cmd_down(args: argparse.Namespace) -> int:
    console = Console()
    try:
        state, problem = load_state(args.data_dir)
    except OSError as exc:
        console.say(unusable(args.data_dir, exc))
        return 1
    holder = running_holder(args.data_dir)
    if holder is not None:
        # Starting or running, whatever the state file says (none yet, unreadable, or a
        # previous stack's): the lock names who runs here, and SIGTERM stops it all.
        if shutdown.stop_supervisor(holder.record(), console):
            # Said only now: a forced stop says it instead, as it removes the file.
            if problem is not None:
                console.say(f"WARNING switchyard: {problem}")
            console.say("switchyard: stopped")
            return 0
    elif state is None:
        if problem is not None:
            shutdown.discard_state(args.data_dir, problem, console)
        else:
            console.say(f"no stack running from {args.data_dir}/")
        return 0
    # Its supervisor is gone (dead, or killed just now): its reaper, or we, stop the rest.
    if not finish_stopping(args.data_dir, console):
        return 1
    console.say("switchyard: stopped (forced)")
    return 0


def cmd_traces(args: argparse.Namespace) -> int:
    store = SpanStore(args.data_dir)
    # Only the reading is guarded: printing stays out, so that a reader of our output
    # who leaves (BrokenPipeError, an OSError too) is main's to handle.
    try:
        if args.id is None:  # the recent traces
            found = store.recent(args.limit)
            shown = trace_table(found) if found else f"no traces in {store.path} yet"
        else:  # the one asked for as a waterfall; None when unknown
            found = find_trace(store, args.id)
            shown = drawn(found) if found else None
    except OSError as exc:  # a data directory that is a file, or that we may not read
        print(unusable(args.data_dir, exc), file=sys.stderr)
        return 1
    if shown is None:
        print(
            f"ERROR switchyard: no trace {args.id!r} in {store.path}: "
            "neither a trace id nor an X-Request-ID of a stored trace",
            file=sys.stderr,
        )
        return 1
    print(shown)
    return 0


def drawn(spans: list[SpanRecord]) -> str:
    return f"trace {spans[0].trace_id}, {len(spans)} spans\n\n{waterfall(spans)}"
