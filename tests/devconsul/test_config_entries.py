"""devconsul.config_entries: decoding and validation as structs.DecodeConfigEntry
and ConfigEntry.Apply (hashicorp/consul agent/structs/config_entry.go)."""

import pytest

from devconsul.config_entries import camel, decode, validate
from devconsul.errors import HTTPError


@pytest.mark.parametrize(
    "key, expected",
    [
        ("connect_timeout", "ConnectTimeout"),
        ("protocol", "Protocol"),
        ("MeshGateway", "MeshGateway"),
    ],
)
def test_camel(key, expected):
    assert camel(key) == expected


def test_decode_keeps_the_body_with_consuls_keys_and_drops_indexes():
    entry = decode(
        {
            "kind": "service-resolver",
            "name": "web",
            "connect_timeout": "3s",
            "ModifyIndex": 9,
        }
    )
    assert entry == {"Kind": "service-resolver", "Name": "web", "ConnectTimeout": "3s"}


def test_validate_fixed_names_and_missing_names():
    validate({"Kind": "proxy-defaults", "Name": "global"})
    with pytest.raises(HTTPError) as err:
        validate({"Kind": "service-router", "Name": ""})
    assert (err.value.status, err.value.message) == (500, "Name is required")


def test_service_defaults_normalize_and_refuse_a_wildcard():
    assert (
        decode({"Kind": "service-defaults", "Name": "web", "Protocol": "HTTP"})[
            "Protocol"
        ]
        == "http"
    )
    with pytest.raises(HTTPError) as err:
        validate({"Kind": "service-defaults", "Name": "*"})
    assert err.value.message == (
        "service-defaults name must be the name of a service, and not a wildcard"
    )


def test_proxy_defaults_without_a_name_is_the_global_one():
    assert decode({"Kind": "proxy-defaults"})["Name"] == "global"
