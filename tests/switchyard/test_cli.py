from pathlib import Path

import pytest

from switchyard.cli import build_parser, main


def parse(*argv):
    return build_parser().parse_args(list(argv))


def test_up_defaults():
    args = parse("up")
    assert (args.users, args.orders, args.gateway_port, args.consul_port) == (
        2,
        2,
        8000,
        8500,
    )
    assert (args.consul_addr, args.strategy, args.agent) == (
        None,
        "round_robin",
        "auto",
    )
    assert args.data_dir == Path("var")


def test_up_options():
    args = parse(
        "up",
        "--users",
        "3",
        "--orders",
        "1",
        "--gateway-port",
        "9000",
        "--consul-addr",
        "10.0.0.1:8500",
        "--strategy",
        "random",
        "--data-dir",
        "/tmp/x",
        "--token",
        "t",
    )
    assert (args.users, args.orders, args.gateway_port) == (3, 1, 9000)
    assert (args.consul_addr, args.strategy, args.data_dir, args.token) == (
        "10.0.0.1:8500",
        "random",
        Path("/tmp/x"),
        "t",
    )


def test_token_defaults_to_the_consul_environment_variable(monkeypatch):
    monkeypatch.setenv("CONSUL_HTTP_TOKEN", "from-env")
    assert parse("up").token == "from-env"
    assert parse("status").token == "from-env"


@pytest.mark.parametrize(
    "argv",
    [
        ["up", "--users", "0"],
        ["up", "--gateway-port", "70000"],
        ["up", "--strategy", "fastest"],
        ["up", "--consul-port", "8500", "--consul-addr", "127.0.0.1:8500"],
        ["sideways"],
        [],
    ],
)
def test_bad_arguments_exit_with_usage(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        parse(*argv)
    assert exc.value.code == 2
    assert "usage: switchyard" in capsys.readouterr().err


def test_status_without_a_stack_says_so(tmp_path, capsys):
    assert main(["status", "--data-dir", str(tmp_path)]) == 1
    assert "no stack running" in capsys.readouterr().err


def test_down_without_a_stack_is_a_no_op(tmp_path, capsys):
    assert main(["down", "--data-dir", str(tmp_path)]) == 0
    assert "no stack running" in capsys.readouterr().out


def test_up_rejects_a_malformed_consul_address(tmp_path, capsys):
    assert main(["up", "--data-dir", str(tmp_path), "--consul-addr", "nowhere"]) == 2
    assert "HOST:PORT" in capsys.readouterr().out
