import pytest

from devconsul.decode import (
    Fields,
    go_base64,
    go_parse_uint,
    json_object,
    load_json,
    parse_bool,
    parse_uint,
    worded,
)
from devconsul.errors import HTTPError


def test_keys_are_case_insensitive_and_aliases_apply():
    f = Fields({"name": "web", "ENABLETAGOVERRIDE": True, "tagged_addresses": {}}, "S")
    assert f.str("Name") == "web"
    assert f.bool("EnableTagOverride") is True
    assert f.obj("TaggedAddresses") == {}


def test_snake_case_outside_the_alias_list_is_not_a_field():
    assert Fields({"success_before_passing": 3}, "C").int("SuccessBeforePassing") == 0


def test_null_means_absent():
    f = Fields({"Check": None, "Tags": None, "Port": None}, "S")
    assert (f.obj("Check"), f.str_list("Tags"), f.int("Port", 7)) == (None, [], 7)


@pytest.mark.parametrize(
    ("value", "ns"),
    [("10s", 10**10), (1500, 1500), (None, 0), ("", 0), ("1m", 6 * 10**10)],
)
def test_durations_accept_strings_and_nanoseconds(value, ns):
    assert Fields({"Interval": value}, "C").duration("Interval") == ns


def test_bad_duration_is_a_decode_error():
    with pytest.raises(HTTPError) as err:
        Fields({"TTL": "ten"}, "C").duration("TTL")
    assert err.value.status == 400
    assert err.value.message == 'Request decode failed: time: invalid duration "ten"'


def test_wrong_type_names_the_go_field():
    with pytest.raises(HTTPError, match="cannot unmarshal string into Go struct field"):
        Fields({"Port": "80"}, "ServiceDefinition").int("Port")


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"", "Request decode failed: EOF"),
        (
            b"{not json",
            (
                "Request decode failed: invalid character 'n' looking for "
                "beginning of object key string"
            ),
        ),
        (b"{", "Request decode failed: unexpected EOF"),
        (
            b"[1, NaN]",
            "Request decode failed: invalid character 'N' looking for beginning of value",
        ),
        (
            b"-Infinity",
            "Request decode failed: invalid character 'I' in numeric literal",
        ),
    ],
)
def test_load_json_errors(raw, message):
    with pytest.raises(HTTPError) as err:
        load_json(raw)
    assert (err.value.status, err.value.message) == (400, message)


@pytest.mark.parametrize("text", ["1", "t", "T", "true", "TRUE", "True"])
def test_parse_bool_true(text):
    assert parse_bool(text) is True


@pytest.mark.parametrize("text", ["0", "f", "F", "false", "FALSE", "False"])
def test_parse_bool_false(text):
    assert parse_bool(text) is False


@pytest.mark.parametrize("text", ["yes", "", "2"])
def test_parse_bool_rejects(text):
    with pytest.raises(ValueError):
        parse_bool(text)


def test_parse_uint():
    assert parse_uint("42") == 42
    for bad in ("-1", "x", ""):
        with pytest.raises(ValueError):
            parse_uint(bad)


@pytest.mark.parametrize(
    "text, error",
    [
        ("aGk=", None),
        ("not!base64", "illegal base64 data at input byte 3"),
        ("aGk", "illegal base64 data at input byte 0"),
        ("aGkhaGk", "illegal base64 data at input byte 4"),
    ],
)
def test_go_base64(text, error):
    if error is None:
        assert go_base64(text) == b"hi"
        return
    with pytest.raises(ValueError) as err:
        go_base64(text)
    assert str(err.value) == error


def test_worded_rewords_only_decode_errors():
    with pytest.raises(HTTPError) as err, worded("Failed to parse body: "):
        load_json(b"{")
    assert err.value.message == "Failed to parse body: unexpected EOF"
    with pytest.raises(HTTPError) as err, worded("Failed to parse body: "):
        raise HTTPError(413, "too large")
    assert err.value.message == "too large"


def test_go_parse_uint_words_errors_as_strconv():
    assert go_parse_uint("42") == 42
    with pytest.raises(
        ValueError, match='strconv.ParseUint: parsing "-1": invalid syntax'
    ):
        go_parse_uint("-1")


def test_json_object_is_gos_map_decoding():
    """encoding/json into map[string]interface{}: null leaves it empty, any
    other non-object names its JSON type in the error."""
    assert json_object(None) == {}
    assert json_object({"a": 1}) == {"a": 1}
    with pytest.raises(HTTPError) as caught:
        json_object([1])
    assert caught.value.message == (
        "Request decode failed: json: cannot unmarshal array into Go value of "
        "type map[string]interface {}"
    )
