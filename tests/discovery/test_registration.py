import json
import threading
import urllib.parse

import pytest

from chassis.env import ConfigError
from discovery.consul_client import ConsulSettings, make_consul
from discovery.registration import (
    AntiEntropy,
    Registration,
    RegistrationSettings,
    go_duration,
    parse_duration,
)
from tests.discovery.stubs import StubServer
from tests.support.processes import wait_until

BASE_ENV = {"SERVICE_ADDRESS": "10.0.0.7", "PORT": "8001"}


def settings_from(**env):
    return RegistrationSettings.from_env(
        "user-service", "/users", 8001, {**BASE_ENV, **env}
    )


@pytest.mark.parametrize(
    "env, field, expected",
    [
        ({}, "service_id", "user-service-10.0.0.7-8001"),
        ({}, "check_url", "http://10.0.0.7:8001/health"),
        ({"SERVICE_ADDRESS": "::1"}, "check_url", "http://[::1]:8001/health"),
        ({}, "check_interval", 10.0),
        ({}, "check_timeout", 2.0),
        ({}, "deregister_after", 60.0),
        ({}, "drain_seconds", 3.0),
        ({}, "weights", (1, 1)),
        ({}, "tags", ()),
        ({"PORT": "9100"}, "port", 9100),
        ({"CHECK_INTERVAL": "1s"}, "check_interval", 1.0),
        ({"CHECK_INTERVAL": "1.5"}, "check_interval", 1.5),
        ({"CHECK_TIMEOUT": "500ms"}, "check_timeout", 0.5),
        ({"DEREGISTER_CRITICAL_AFTER": "1m30s"}, "deregister_after", 90.0),
        ({"DRAIN_SECONDS": "0"}, "drain_seconds", 0.0),
        (
            {"SERVICE_WEIGHT_PASSING": "5", "SERVICE_WEIGHT_WARNING": "0"},
            "weights",
            (5, 0),
        ),
        ({"SERVICE_TAGS": "blue, v2,,"}, "tags", ("blue", "v2")),
        ({}, "meta", {"version": "1.2", "gateway_prefix": "/users"}),
        (
            {"SERVICE_LB_STRATEGY": "random"},
            "meta",
            {"version": "1.2", "gateway_prefix": "/users", "lb_strategy": "random"},
        ),
    ],
)
def test_settings_from_env(env, field, expected):
    assert getattr(settings_from(SERVICE_VERSION="1.2", **env), field) == expected


def test_address_defaults_to_an_advertisable_one():
    settings = RegistrationSettings.from_env("user-service", "/users", 8001, {})
    assert settings.address and settings.address != "0.0.0.0"
    assert settings.port == 8001


@pytest.mark.parametrize(
    "env, variable",
    [
        ({"PORT": "http"}, "PORT"),
        ({"PORT": "70000"}, "PORT"),
        ({"CHECK_INTERVAL": "often"}, "CHECK_INTERVAL"),
        ({"CHECK_INTERVAL": "10x"}, "CHECK_INTERVAL"),
        ({"CHECK_TIMEOUT": "0s"}, "CHECK_TIMEOUT"),
        ({"DEREGISTER_CRITICAL_AFTER": "-1"}, "DEREGISTER_CRITICAL_AFTER"),
        ({"DRAIN_SECONDS": "-1"}, "DRAIN_SECONDS"),
        ({"SERVICE_WEIGHT_PASSING": "0"}, "SERVICE_WEIGHT_PASSING"),
        ({"SERVICE_WEIGHT_WARNING": "70000"}, "SERVICE_WEIGHT_WARNING"),
        ({"SERVICE_LB_STRATEGY": "fastest"}, "SERVICE_LB_STRATEGY"),
        # Consul refuses these (400 Invalid service address) however often it is asked.
        ({"SERVICE_ADDRESS": "0.0.0.0"}, "SERVICE_ADDRESS"),
        ({"SERVICE_ADDRESS": "::"}, "SERVICE_ADDRESS"),
    ],
)
def test_bad_values_name_the_variable(env, variable):
    with pytest.raises(ConfigError) as err:
        settings_from(**env)
    assert str(err.value).startswith(f"{variable}:")


@pytest.mark.parametrize(
    "raw, seconds", [("10s", 10), ("1m", 60), ("1m30s", 90), ("250ms", 0.25), ("2", 2)]
)
def test_parse_duration(raw, seconds):
    assert parse_duration("X", raw) == seconds


@pytest.mark.parametrize("seconds, text", [(10, "10s"), (60.0, "60s"), (0.25, "250ms")])
def test_go_duration(seconds, text):
    assert go_duration(seconds) == text


class FakeAgent:
    """The agent endpoints registration uses, in memory, recording every request."""

    def __init__(self):
        self.services: dict[str, dict] = {}
        self.maintenance: dict[str, str] = {}
        self.lock = threading.Lock()

    def __call__(self, request):
        url = urllib.parse.urlsplit(request.path)
        query = dict(urllib.parse.parse_qsl(url.query))
        path = url.path
        with self.lock:
            if path == "/v1/agent/service/register":
                body = json.loads(request.last_body)
                self.services[body.get("id") or body["name"]] = body
                self.maintenance.pop(body.get("id"), None)
                return 200, {}, b""
            if path == "/v1/agent/services":
                return (
                    200,
                    {"Content-Type": "application/json"},
                    json.dumps(self.services).encode(),
                )
            if path.startswith("/v1/agent/service/maintenance/"):
                self.maintenance[path.rsplit("/", 1)[1]] = query.get("reason", "")
                return 200, {}, b""
            if path.startswith("/v1/agent/service/deregister/"):
                self.services.pop(path.rsplit("/", 1)[1], None)
                return 200, {}, b""
        return 404, {}, b"unknown"


@pytest.fixture
def agent():
    fake = FakeAgent()
    with StubServer(fake) as stub:
        stub.fake = fake
        yield stub


def registration_for(stub, **env):
    consul = make_consul(ConsulSettings(port=stub.port, token="tok"))
    return Registration(settings_from(SERVICE_VERSION="1.2", **env), consul)


def calls(stub):
    return [(method, path.split("?")[0]) for method, path, _ in stub.requests]


def test_register_is_one_call_with_service_check_meta_and_weights(agent):
    registration_for(agent, CHECK_INTERVAL="1s", SERVICE_WEIGHT_PASSING="3").register()
    assert calls(agent) == [("PUT", "/v1/agent/service/register")]
    _method, path, headers = agent.requests[0]
    assert "replace-existing-checks=true" in path
    assert headers["X-Consul-Token"] == "tok"
    body = agent.fake.services["user-service-10.0.0.7-8001"]
    assert body["name"] == "user-service"
    assert (body["address"], body["port"]) == ("10.0.0.7", 8001)
    assert body["meta"] == {"version": "1.2", "gateway_prefix": "/users"}
    assert body["weights"] == {"Passing": 3, "Warning": 1}
    assert body["checks"] == [
        {
            "http": "http://10.0.0.7:8001/health",
            "interval": "1s",
            "timeout": "2s",
            "DeregisterCriticalServiceAfter": "60s",
        }
    ]


def test_drain_leaves_passing_set_waits_then_deregisters(agent):
    registration = registration_for(agent, DRAIN_SECONDS="2.5")
    registration.register()
    slept = []

    def sleep(seconds):
        # during the wait the instance is still registered, but in maintenance
        assert "user-service-10.0.0.7-8001" in agent.fake.services
        assert "user-service-10.0.0.7-8001" in agent.fake.maintenance
        slept.append(seconds)

    registration.drain(sleep=sleep)
    assert slept == [2.5]
    assert calls(agent)[1:] == [
        ("PUT", "/v1/agent/service/maintenance/user-service-10.0.0.7-8001"),
        ("PUT", "/v1/agent/service/deregister/user-service-10.0.0.7-8001"),
    ]
    assert "draining" in agent.fake.maintenance["user-service-10.0.0.7-8001"]
    assert not agent.fake.services
    assert all(h["X-Consul-Token"] == "tok" for _, _, h in agent.requests)


def test_a_registration_during_the_drain_is_refused(agent):
    """Anti-entropy registering while the instance drains (it found the agent without it a
    moment before) would drop the maintenance check and put the instance back in the
    passing set; after the deregistration, it would bring back an instance that is gone."""
    registration = registration_for(agent)
    registration.register()

    def sleep(seconds):
        registration.register()
        assert registration.service_id in agent.fake.maintenance

    registration.drain(sleep=sleep)
    registration.register()
    assert not agent.fake.services
    assert calls(agent).count(("PUT", "/v1/agent/service/register")) == 1


def test_no_registration_after_a_deregistration(agent):
    registration = registration_for(agent)
    registration.register()
    registration.safe_deregister()  # on_exit's way out: SIGINT, SIGQUIT, no drain
    registration.register()
    assert not agent.fake.services


def test_drain_without_consul_does_not_wait_or_raise(caplog):
    consul = make_consul(ConsulSettings(port=1, timeout=0.5))
    registration = Registration(settings_from(), consul)
    slept = []
    registration.drain(sleep=slept.append)
    assert slept == []
    assert any("maintenance failed" in r.getMessage() for r in caplog.records)


def test_anti_entropy_registers_again_when_the_agent_forgets(agent):
    registration = registration_for(agent)
    registration.register()
    anti_entropy = AntiEntropy(registration, interval=0.05).start()
    try:
        wait_until(lambda: len(agent.requests) >= 3, timeout=2, what="polls")
        assert (
            calls(agent)[1:3] == [("GET", "/v1/agent/services")] * 2
        )  # known: no register
        agent.fake.services.clear()  # agent restarted
        wait_until(lambda: registration.service_id in agent.fake.services, timeout=2)
    finally:
        anti_entropy.stop()
    assert all(h["X-Consul-Token"] == "tok" for _, _, h in agent.requests)


def test_anti_entropy_completes_a_registration_that_failed_at_start(caplog):
    fake = FakeAgent()
    broken = {"on": True}

    def flaky(request):
        return (503, {}, b"starting") if broken["on"] else fake(request)

    with StubServer(flaky) as stub:
        registration = registration_for(stub)
        anti_entropy = AntiEntropy(registration, interval=0.05).start()
        try:
            wait_until(lambda: len(stub.requests) >= 5, timeout=2, what="failing polls")
            broken["on"] = False
            wait_until(lambda: registration.service_id in fake.services, timeout=2)
        finally:
            anti_entropy.stop()
    warnings = [r for r in caplog.records if "anti-entropy" in r.getMessage()]
    assert len(warnings) == 1  # one warning per outage, not per poll


def test_no_prefix_claims_no_gateway_route():
    settings = RegistrationSettings.from_env(
        "gateway", "", 8000, {**BASE_ENV, "SERVICE_VERSION": "1"}
    )
    assert settings.meta == {"version": "1"}
