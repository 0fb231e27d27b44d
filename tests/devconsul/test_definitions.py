import pytest

from devconsul.definitions import parse_check, parse_service, validate_service
from devconsul.errors import HTTPError


def test_py_consul_lowercase_service_with_check():
    d = parse_service(
        {
            "name": "web",
            "id": "web-1",
            "port": 80,
            "tags": ["a"],
            "meta": {"v": "1"},
            "checks": [{"http": "http://x/health", "interval": "1s", "timeout": "2s"}],
        }
    )
    assert (d.id, d.name, d.port, d.tags, d.meta) == (
        "web-1",
        "web",
        80,
        ["a"],
        {"v": "1"},
    )
    assert d.weights == {"Passing": 1, "Warning": 1}
    (check,) = d.checks
    assert (check.kind, check.interval, check.timeout) == ("http", 10**9, 2 * 10**9)


def test_go_client_nulls_and_empty_check_are_ignored():
    d = parse_service({"Name": "web", "Check": None, "Checks": None})
    assert d.id == "web" and d.checks == []
    assert parse_service({"Name": "web", "Check": {}}).checks == []


def test_check_id_spelling_depends_on_the_struct():
    """CheckType (inside a service) has CheckID, CheckDefinition (the check
    endpoint) has ID; each refuses the other's (agent/structs/check_type.go,
    check_definition.go)."""
    assert parse_check({"CheckID": "a", "TTL": "1s"}, "CheckType").id == "a"
    assert parse_check({"ID": "b", "TTL": "1s"}).id == "b"
    for body, struct in (({"ID": "a"}, "CheckType"), ({"CheckID": "b"}, None)):
        with pytest.raises(HTTPError) as err:
            parse_check(body, struct) if struct else parse_check(body)
        key = next(iter(body))
        assert err.value.message == (
            f'Request decode failed: json: unknown field "{key}"'
        )


def _error(body) -> HTTPError:
    with pytest.raises(HTTPError) as err:
        validate_service(parse_service(body))
    return err.value


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"ID": "x"}, 400, "Missing service name"),
        ({"Name": "a", "Address": "0.0.0.0"}, 400, "Invalid service address"),
        (
            {"Name": "a", "Meta": {"bad key": "v"}},
            400,
            "Invalid Service Meta: Key contains invalid characters",
        ),
        (
            {"Name": "a", "Meta": {"consul-x": "v"}},
            400,
            "Invalid Service Meta: Key prefix 'consul-' is reserved for internal use",
        ),
        (
            {"Name": "a", "Weights": {"Passing": 0, "Warning": 1}},
            400,
            "Invalid Weights: Passing must be greater than 0",
        ),
        (
            {"Name": "a", "Check": {"TTL": "1s", "Status": "ok"}},
            400,
            "Status for checks must 'passing', 'warning', 'critical'",
        ),
        (
            {"Name": "a", "Check": {"HTTP": "http://x"}},
            400,
            (
                "Invalid check: Interval must be > 0 for Script, HTTP, H2PING, "
                "TCP, UDP or OSService checks"
            ),
        ),
        (
            {"Name": "a", "Check": {"TTL": "1s", "Interval": "1s"}},
            400,
            "Invalid check: Interval and TTL cannot both be specified",
        ),
        (
            {"Name": "a", "Check": {"Args": ["true"], "Interval": "1s"}},
            500,
            (
                "Scripts are disabled on this agent from remote calls; to enable, "
                "configure 'enable_script_checks' to true"
            ),
        ),
    ],
)
def test_validation_texts(body, status, message):
    err = _error(body)
    assert (err.status, err.message) == (status, message)


def test_thresholds_and_deregister_are_read():
    c = parse_check(
        {
            "TCP": "127.0.0.1:1",
            "Interval": "1s",
            "SuccessBeforePassing": 2,
            "FailuresBeforeCritical": 3,
            "deregister_critical_service_after": "90s",
        }
    )
    assert (c.success_before_passing, c.failures_before_critical) == (2, 3)
    assert c.deregister_after == 90 * 10**9
