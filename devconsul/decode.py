"""Request decoding with Consul's rules: case-insensitive keys, ``null`` accepted,
Go duration strings, presence-based query flags, Go-style error texts.

Consul decodes bodies with Go's ``encoding/json`` into structs, which matches
keys case-insensitively; py-consul relies on that by sending lowercase keys.
"""

import base64
import binascii
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager

from devconsul.durations import parse_duration
from devconsul.errors import HTTPError

# snake_case spellings Consul accepts in addition to the field names.
ALIASES = {
    "enable_tag_override": "enabletagoverride",
    "tagged_addresses": "taggedaddresses",
    "deregister_critical_service_after": "deregistercriticalserviceafter",
    "service_id": "serviceid",
    "script_args": "scriptargs",
    "docker_container_id": "dockercontainerid",
    "tls_server_name": "tlsservername",
    "tls_skip_verify": "tlsskipverify",
    "grpc_use_tls": "grpcusetls",
    "h2ping_use_tls": "h2pingusetls",
    "disable_redirects": "disableredirects",
}

_GO_TYPES = {
    str: "string",
    int: "int",
    bool: "bool",
    list: "[]string",
    dict: "map[string]string",
}


DECODE_FAILED = "Request decode failed: "


def decode_failed(detail: str) -> HTTPError:
    return HTTPError(400, DECODE_FAILED + detail)


@contextmanager
def worded(prefix: str) -> Iterator[None]:
    """Decode errors raised inside worded as an endpoint words them, e.g.
    ``Failed to parse body: `` for /v1/txn."""
    try:
        yield
    except HTTPError as exc:
        if not exc.message.startswith(DECODE_FAILED):
            raise
        raise HTTPError(400, prefix + exc.message.removeprefix(DECODE_FAILED)) from None


def enterprise_field(exc: HTTPError) -> HTTPError:
    """rewordUnknownEnterpriseFieldError (agent/http_ce.go), which catalog and
    session writes apply: Namespace is an Enterprise field."""
    if exc.message.endswith('json: unknown field "Namespace"'):
        exc.message += " - Namespaces are a Consul Enterprise feature"
    return exc


def load_json(raw: bytes):
    """Parse a request body, with Go's error wording for the common mistakes."""
    text = raw.decode("utf-8", errors="replace")
    if not text.strip():
        raise decode_failed("EOF")
    try:
        return json.loads(text, parse_constant=_no_constants)
    except json.JSONDecodeError as exc:
        raise decode_failed(_go_json_error(exc)) from None


def _no_constants(name: str):
    """NaN and Infinity are not JSON; Python accepts them, Go does not."""
    if name.startswith("-"):
        raise decode_failed(f"invalid character '{name[1]}' in numeric literal")
    raise decode_failed(f"invalid character '{name[0]}' looking for beginning of value")


def _go_json_error(exc: json.JSONDecodeError) -> str:
    if exc.pos >= len(exc.doc.rstrip()):
        return "unexpected EOF"
    char = exc.doc[exc.pos]
    if exc.msg.startswith("Expecting property name"):
        return f"invalid character '{char}' looking for beginning of object key string"
    if exc.msg.startswith("Expecting value"):
        return f"invalid character '{char}' looking for beginning of value"
    return f"invalid character '{char}' after top-level value"


def json_kind(value) -> str:
    """The JSON type Go names in its unmarshal errors."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def field_type_error(value, field: str, go_type: str) -> HTTPError:
    """Go's error for a JSON value of the wrong type in struct field `field`
    (``Struct.Field``) of type `go_type`."""
    return decode_failed(
        f"json: cannot unmarshal {json_kind(value)} into Go struct field {field} "
        f"of type {go_type}"
    )


def json_object(value) -> dict:
    """A decoded body as Go decodes it into ``map[string]interface{}`` (config
    entries, discovery-chain overrides): any object, ``null`` as empty."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise decode_failed(
            f"json: cannot unmarshal {json_kind(value)} into Go value of type "
            "map[string]interface {}"
        )
    return value


class Fields:
    """A JSON object read the way Go's decoder reads a struct. With `known`
    (lowercased field names, devconsul.schemas), a key naming no field fails
    as under Consul's DisallowUnknownFields."""

    def __init__(self, obj, struct: str, known: frozenset[str] | None = None):
        if obj is None:
            obj = {}
        if not isinstance(obj, dict):
            raise decode_failed(
                f"json: cannot unmarshal {json_kind(obj)} into Go value of type "
                f"{struct}"
            )
        self.struct = struct
        self._values = {}
        for key, value in obj.items():
            if known is not None and key.lower() not in known:
                raise decode_failed(f'json: unknown field "{key}"')
            self._values.setdefault(key.lower(), value)
        for alias, canonical in ALIASES.items():
            if alias in self._values:
                self._values.setdefault(canonical, self._values[alias])

    def has(self, name: str) -> bool:
        return self._values.get(name.lower()) is not None

    def present(self, name: str) -> bool:
        """Sent at all, ``null`` included (Go then overwrites a default with nil)."""
        return name.lower() in self._values

    def raw(self, name: str):
        return self._values.get(name.lower())

    def _typed(self, name: str, kind: type, default):
        value = self.raw(name)
        if value is None:
            return default
        ok = isinstance(value, kind) and not (kind is int and isinstance(value, bool))
        if kind is int and isinstance(value, float) and value.is_integer():
            value, ok = int(value), True
        if not ok:
            raise field_type_error(value, f"{self.struct}.{name}", _GO_TYPES[kind])
        return value

    def str(self, name: str, default: str = "") -> str:
        return self._typed(name, str, default)

    def int(self, name: str, default: int = 0) -> int:
        return self._typed(name, int, default)

    def bool(self, name: str, default: bool = False) -> bool:
        return self._typed(name, bool, default)

    def str_list(self, name: str) -> list[str]:
        values = self._typed(name, list, [])
        for value in values:
            if not isinstance(value, str):
                raise field_type_error(value, f"{self.struct}.{name}", "string")
        return list(values)

    def str_map(self, name: str) -> dict[str, str]:
        values = self._typed(name, dict, {})
        for value in values.values():
            if not isinstance(value, str):
                raise field_type_error(value, f"{self.struct}.{name}", "string")
        return dict(values)

    def obj(self, name: str) -> dict | None:
        value = self.raw(name)
        if value is None:
            return None
        return self._typed(name, dict, None)

    def duration(self, name: str) -> int:
        """Go durations: a string such as ``"10s"`` or a bare number of nanoseconds."""
        value = self.raw(name)
        # Lenient: "" as unset, as some clients send empty strings for zero.
        if value is None or value == "":
            return 0
        if isinstance(value, bool):
            raise decode_failed(f"json: cannot unmarshal bool into {name}")
        if isinstance(value, (int, float)):
            return int(value)
        if not isinstance(value, str):
            raise decode_failed(f"json: cannot unmarshal {json_kind(value)}")
        try:
            return parse_duration(value)
        except ValueError as exc:
            raise decode_failed(str(exc)) from None


# -- query parameters ---------------------------------------------------------

_TRUE = {"1", "t", "T", "TRUE", "true", "True"}
_FALSE = {"0", "f", "F", "FALSE", "false", "False"}


def parse_bool(text: str) -> bool:
    """Go's ``strconv.ParseBool``."""
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(text)


def parse_uint(text: str) -> int:
    if not re.fullmatch(r"\d+", text or ""):
        raise ValueError(text)
    return int(text)


def go_parse_uint(text: str) -> int:
    """parse_uint with the message of Go's ``strconv.ParseUint``."""
    try:
        return parse_uint(text)
    except ValueError:
        raise ValueError(
            f'strconv.ParseUint: parsing "{text}": invalid syntax'
        ) from None


_BASE64 = re.compile(r"[A-Za-z0-9+/]")


def go_base64(text: str) -> bytes:
    """Standard base64 as Go decodes it, with Go's error on bad input."""
    try:
        return base64.b64decode(text, validate=True)
    except binascii.Error:
        bad = next((i for i, c in enumerate(text) if not _BASE64.match(c)), None)
        if bad is None or text[bad:].strip("=") == "":
            bad = len(text) - len(text) % 4 if len(text) % 4 else len(text)
        raise ValueError(f"illegal base64 data at input byte {bad}") from None
