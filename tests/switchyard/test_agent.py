import sys

import pytest

from switchyard.agent import CONSUL, DEVCONSUL, EXTERNAL, choose_agent, parse_addr


def no_consul(name):
    return None


def has_consul(name):
    return "/usr/bin/consul" if name == "consul" else None


@pytest.mark.parametrize(
    "value, expected",
    [
        ("127.0.0.1:8500", ("127.0.0.1", 8500)),
        ("http://consul.internal:8501/", ("consul.internal", 8501)),
        ("localhost:1", ("localhost", 1)),
    ],
)
def test_parse_addr_accepts_host_port(value, expected):
    assert parse_addr(value) == expected


@pytest.mark.parametrize("value", ["8500", "host:", ":8500", "host:abc", "host:70000"])
def test_parse_addr_rejects_malformed(value):
    with pytest.raises(ValueError, match="HOST:PORT"):
        parse_addr(value)


def test_given_address_wins_and_starts_nothing():
    choice = choose_agent("10.0.0.5:8500", 8500, which=has_consul)
    assert (choice.kind, choice.addr, choice.argv, choice.managed) == (
        EXTERNAL,
        "10.0.0.5:8500",
        (),
        False,
    )


def test_real_consul_on_path_is_preferred():
    choice = choose_agent(None, 8600, which=has_consul)
    assert choice.kind == CONSUL
    assert choice.argv[:3] == ("/usr/bin/consul", "agent", "-dev")
    assert choice.argv[choice.argv.index("-http-port") + 1] == "8600"
    assert choice.ui_url == "http://127.0.0.1:8600/ui/"


def test_devconsul_when_no_consul_binary():
    choice = choose_agent(None, 8500, which=no_consul)
    assert choice.kind == DEVCONSUL
    assert choice.argv[:3] == (sys.executable, "-m", "devconsul")
    assert "-ui" in choice.argv
    assert "-acl-token" not in choice.argv


def test_prefer_devconsul_even_when_consul_is_installed():
    assert (
        choose_agent(None, 8500, prefer="devconsul", which=has_consul).kind == DEVCONSUL
    )


def test_prefer_consul_without_binary_is_an_error():
    with pytest.raises(ValueError, match="no `consul` binary"):
        choose_agent(None, 8500, prefer="consul", which=no_consul)


@pytest.mark.parametrize(
    "which, flag", [(no_consul, "-acl-token"), (has_consul, "-hcl")]
)
def test_token_turns_on_acls_in_the_agent_we_start(which, flag):
    argv = choose_agent(None, 8500, token="s3cret", which=which).argv
    assert "s3cret" in argv[argv.index(flag) + 1]
