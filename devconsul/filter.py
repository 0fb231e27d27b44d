"""Consul's `?filter=` expressions: a go-bexpr compatible parser and evaluator.

Grammar and error texts follow hashicorp/go-bexpr's PEG grammar (grammar/grammar.peg)
and the parser pigeon generates from it; semantics follow go-bexpr v0.1.2's
evaluate.go, the version Consul's go.mod pins for its filter parameter.

    compile_filter('Service.Tags contains "v1" and Checks.Status == passing')

returns a predicate over one decoded JSON record (dict). A bad expression raises
`FilterError`; the HTTP layer answers `500 Failed to create boolean expression
evaluator: <message>`, as Consul does.

Semantics (go-bexpr v0.1.2 evaluate.go, evaluateMatchExpressionRecurse):
- A selector that crosses a list applies the whole match to every element and is
  true if ANY element matches ("operations on slices are implicitly ANY"). So
  `Checks.Status == "passing"` means "some check passes" and
  `Checks.Status != "passing"` means "some check does not pass"; over an empty
  list every match, negated or not, is false.
- A list or map *at the end* of the selector is the operand itself: `contains`/`in`
  test list membership, map keys, or a substring of a string; `is empty` tests length.
- A missing map key (e.g. `ServiceMeta.env` without `env`): `==`, `contains`/`in`,
  `is not empty`, `matches` are false; `!=`, `not contains`/`not in`, `is empty`,
  `not matches` are true. (bexpr's default branch also makes `matches` true there,
  an accident we do not copy.) JSON null counts as missing.
- Values are raw text converted to the field's JSON type when compared, as bexpr
  coerces to the Go field type: `Service.Port == 8080`, `Service.Port == "8080"` and
  `Service.EnableTagOverride == true` all work (Go ParseBool spellings for booleans).
  A value that does not convert makes the comparison false (bexpr rejects it when the
  evaluator is created; we have no types to check against).
- Operators that do not apply to a field's type (`==` on a list, `matches` on a
  number) are false, so their negated forms are true.
- `matches` uses Python's `re.search`, close to Go's unanchored regexp.Match for the
  RE2 subset.

Unknown fields: bexpr validates selectors against the Go type and fails with
`Selector "X.Y" is not valid`. A caller can get the same by passing `selectors`,
the dotted field paths of the record type (`*` stands for any map key); the
`*_SELECTORS` constants below describe Consul's record types. Without `selectors`
any path is accepted and a field the record lacks counts as missing.

Not supported from newer go-bexpr: JSON-pointer selectors (`"/Service/Tags"`),
numeric path segments (`Tags.0`), inline value lists.
"""

import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

__all__ = [
    "AGENT_SERVICE_SELECTORS",
    "HEALTH_CHECK_SELECTORS",
    "NODE_SELECTORS",
    "NODE_SERVICE_SELECTORS",
    "SERVICE_ENTRY_SELECTORS",
    "SERVICE_NODE_SELECTORS",
    "FilterError",
    "compile_filter",
]


class FilterError(ValueError):
    """A filter expression that cannot be parsed or validated; str() is bexpr's text."""


# --- syntax tree --------------------------------------------------------------


@dataclass(frozen=True)
class Match:
    selector: tuple[str, ...]
    operator: str  # one of OPERATORS
    value: str | None  # raw text; None for is empty / is not empty


@dataclass(frozen=True)
class Not:
    operand: Any


@dataclass(frozen=True)
class Chain:
    operator: str  # "and" | "or"
    operands: tuple


# --- parser -------------------------------------------------------------------

_FAIL = object()
_WS = " \t\r\n"


def _go_quote(text: str) -> str:
    """Go's %q for the ASCII texts that appear in bexpr messages."""
    return json.dumps(text, ensure_ascii=False)


class _Parser:
    """Recursive descent over go-bexpr's PEG grammar, one method per grammar rule.

    Like pigeon it remembers the furthest position where a terminal failed and what
    was expected there, so "no match found, expected: ..." messages come out the
    same; semantic errors ("Unterminated string literal") are collected with the
    display name of the rule that raised them and make the whole parse fail.
    """

    def __init__(self, text: str):
        self.text = text
        self.pos = 0
        self.max_fail = -1
        self.expected: set[str] = set()
        self.inverted = False  # inside a !lookahead, where successes are what failed
        self.errors: list[str] = []

    # terminals

    def _record(self, matched: bool, pos: int, want: str) -> None:
        if matched != self.inverted or pos < self.max_fail:
            return
        if pos > self.max_fail:
            self.max_fail, self.expected = pos, set()
        self.expected.add("!" + want if self.inverted else want)

    def lit(self, word: str) -> bool:
        matched = self.text.startswith(word, self.pos)
        self._record(matched, self.pos, _go_quote(word))
        if matched:
            self.pos += len(word)
        return matched

    def cls(self, accept: Callable[[str], bool], want: str) -> str | None:
        ch = self.text[self.pos] if self.pos < len(self.text) else ""
        matched = bool(ch) and accept(ch)
        self._record(matched, self.pos, want)
        if matched:
            self.pos += 1
            return ch
        return None

    def eof(self) -> bool:
        # EOF <- !.  (pigeon reports the inverted "." as "EOF")
        self.inverted = not self.inverted
        self._record(self.pos < len(self.text), self.pos, ".")
        self.inverted = not self.inverted
        return self.pos >= len(self.text)

    def ws(self) -> bool:
        # _ <- [ \t\r\n]+
        if self.cls(lambda c: c in _WS, r"[ \t\r\n]") is None:
            return False
        while self.cls(lambda c: c in _WS, r"[ \t\r\n]") is not None:
            pass
        return True

    def error(self, rule: str, message: str, pos: int | None = None) -> None:
        self.errors.append(
            f"{self.location(self.pos if pos is None else pos)}: rule {_go_quote(rule)}: {message}"
        )

    def location(self, pos: int) -> str:
        before = self.text[:pos]
        line = before.count("\n") + 1
        col = pos - (before.rfind("\n") + 1) + 1
        return f"{line}:{col} ({len(before.encode())})"

    def restore(self, pos: int) -> object:
        self.pos = pos
        return _FAIL

    # rules

    def parse(self):
        try:
            tree = self.input()
        except RecursionError:
            raise FilterError("Expression is nested too deeply") from None
        if self.errors:
            raise FilterError("\n".join(dict.fromkeys(self.errors)))
        if tree is _FAIL:
            expected = sorted(self.expected - {"!."}) + (
                ["EOF"] if "!." in self.expected else []
            )
            listed = (
                expected[0]
                if len(expected) == 1
                else f"{', '.join(expected[:-1])} or {expected[-1]}"
            )
            raise FilterError(
                f"{self.location(self.max_fail)}: no match found, expected: {listed}"
            )
        return tree

    def input(self):
        # Input <- _? "(" _? OrExpression _? ")" _? EOF / _? OrExpression _? EOF
        start = self.pos
        for body in (lambda: self._group()[0], self.or_expression):
            self.pos = start
            self.ws()
            tree = body()
            if tree is not _FAIL:
                self.ws()
                if self.eof():
                    return tree
        return self.restore(start)

    def _group(self) -> tuple[Any, int | None]:
        """ "(" _? OrExpression _? ")" : (tree, None), or (_FAIL, where a ")" was
        missing after a complete expression, else None)."""
        if not self.lit("("):
            return _FAIL, None
        self.ws()
        tree = self.or_expression()
        if tree is _FAIL:
            return _FAIL, None
        self.ws()
        if self.lit(")"):
            return tree, None
        return _FAIL, self.pos

    def _chain(self, word: str, operand: Callable[[], Any]):
        # X <- left:Operand _ "word" _ right:X / Operand, read as a loop so long
        # chains need no recursion; the operands of one chain are kept flat.
        operands = [operand()]
        if operands[0] is _FAIL:
            return _FAIL
        while True:
            after = self.pos
            if self.ws() and self.lit(word) and self.ws():
                right = operand()
                if right is not _FAIL:
                    operands.append(right)
                    continue
            self.pos = after
            return operands[0] if len(operands) == 1 else Chain(word, tuple(operands))

    def or_expression(self):
        return self._chain("or", self.and_expression)

    def and_expression(self):
        return self._chain("and", self.not_expression)

    def not_expression(self):
        # NotExpression <- "not" _ NotExpression / ParenthesizedExpression
        start = self.pos
        if self.lit("not") and self.ws():
            operand = self.not_expression()
            if operand is not _FAIL:
                return operand.operand if isinstance(operand, Not) else Not(operand)
        self.pos = start
        return self.parenthesized()

    def parenthesized(self):
        # "(" _? OrExpression _? ")" / MatchExpression
        #   / "(" _? OrExpression _? !")" &{Unmatched parentheses}
        start = self.pos
        tree, unmatched_at = self._group()
        if tree is not _FAIL:
            return tree
        self.pos = start
        tree = self.match_expression()
        if tree is _FAIL and unmatched_at is not None:
            self.error("grouping", "Unmatched parentheses", unmatched_at)
        return tree

    def match_expression(self):
        start = self.pos
        for form in (
            self._selector_op_value,
            self._selector_op,
            self._value_op_selector,
        ):
            tree = form()
            if tree is not _FAIL:
                return tree
            self.pos = start
        return _FAIL

    def _selector_op_value(self):
        # Selector Operator Value
        return self._selector_match(_BINARY_OPERATORS, self.value)

    def _selector_op(self):
        # Selector ("is empty" / "is not empty")
        return self._selector_match(_EMPTY_OPERATORS, lambda: None)

    def _selector_match(self, operators, operand: Callable[[], Any]):
        selector = self.selector()
        if selector is _FAIL:
            return _FAIL
        operator = self.operator(operators)
        if operator is None:
            return _FAIL
        value = operand()
        return _FAIL if value is _FAIL else Match(selector, operator, value)

    def _value_op_selector(self):
        # Value (in / not in) Selector / Value (in / not in) !Selector &{Invalid selector}
        value = self.value()
        if value is _FAIL:
            return _FAIL
        operator = self.operator(_IN_OPERATORS)
        if operator is None:
            return _FAIL
        at = self.pos
        selector = self.selector()
        if selector is _FAIL:
            self.error("match", "Invalid selector", at)
            return _FAIL
        return Match(selector, operator, value)

    def operator(
        self, forms: tuple[tuple[str, tuple[str, ...], bool], ...]
    ) -> str | None:
        """Try each (operator, words, spaced) form: words separated by whitespace;
        spaced forms need whitespace around them, the symbols only allow it."""
        start = self.pos
        for name, words, spaced in forms:
            self.pos = start
            if not spaced:
                self.ws()
                if self.lit(words[0]):
                    self.ws()
                    return name
                continue
            if all(self.ws() and self.lit(word) for word in words) and (
                name in _NO_TRAILING_WS or self.ws()
            ):
                return name
        self.pos = start
        return None

    def selector(self):
        # Selector <- Identifier ("." Identifier / IndexExpression)*
        start = self.pos
        first = self.identifier()
        if first is None:
            return self.restore(start)
        path = [first]
        while True:
            at = self.pos
            if self.lit("."):
                part = self.identifier()
                if part is not None:
                    path.append(part)
                    continue
                self.pos = at
            part = self.index_expression()
            if part is _FAIL:
                self.pos = at
                return tuple(path)
            path.append(part)

    def identifier(self) -> str | None:
        # Identifier <- [a-zA-Z] [a-zA-Z0-9_]*
        start = self.pos
        if self.cls(_is_letter, "[a-zA-Z]") is None:
            return None
        while self.cls(
            lambda c: _is_letter(c) or _is_digit(c) or c == "_", "[a-zA-Z0-9_]"
        ):
            pass
        return self.text[start : self.pos]

    def index_expression(self):
        # "[" _? StringLiteral _? "]" / "[" _? !StringLiteral &{Invalid index}
        #   / "[" _? StringLiteral _? !"]" &{Unclosed index expression}
        start = self.pos
        if not self.lit("["):
            return _FAIL
        self.ws()
        key = self.string_literal()
        if key is _FAIL:
            self.error("index", "Invalid index")
            return self.restore(start)
        self.ws()
        if not self.lit("]"):
            self.error("index", "Unclosed index expression")
            return self.restore(start)
        return key

    def value(self):
        # Value <- Selector / NumberLiteral / StringLiteral
        selector = self.selector()
        if selector is not _FAIL:
            return ".".join(selector)
        number = self.number_literal()
        if number is not _FAIL:
            return number
        return self.string_literal()

    def number_literal(self):
        # "-"? IntegerOrFloat &AfterNumbers / "-"? IntegerOrFloat !AfterNumbers &{Invalid number literal}
        start = self.pos
        self.lit("-")
        if not self.lit("0"):
            if self.cls(lambda c: c in "123456789", "[1-9]") is None:
                return self.restore(start)
            while self.cls(_is_digit, "[0-9]"):
                pass
        fraction = self.pos
        if self.lit(".") and self.cls(_is_digit, "[0-9]"):
            while self.cls(_is_digit, "[0-9]"):
                pass
        else:
            self.pos = fraction
        end = self.pos
        # AfterNumbers <- &(_ / EOF / ")")
        if self.ws() or self.eof() or self.lit(")"):
            self.pos = end
            return self.text[start:end]
        self.error("number", "Invalid number literal")
        return self.restore(start)

    def string_literal(self):
        # ('`' RawStringChar* '`' / '"' DoubleStringChar* '"') / (...) EOF &{Unterminated}
        start = self.pos
        for quote in ("`", '"'):
            self.pos = start
            if not self.lit(quote):
                continue
            # RawStringChar <- !'`' .   DoubleStringChar <- !'"' .
            while not self._lookahead_not(quote) and self.cls(lambda c: True, "."):
                pass
            if self.lit(quote):
                return self._unquote(start)
            if self.eof():
                self.error("string", "Unterminated string literal")
            return self.restore(start)
        return self.restore(start)

    def _lookahead_not(self, word: str) -> bool:
        """Evaluate `word` as inside !word, returning True when word is present."""
        at = self.pos
        self.inverted = not self.inverted
        present = self.lit(word)
        self.inverted = not self.inverted
        self.pos = at
        return present

    def _unquote(self, start: int):
        raw = self.text[start : self.pos]
        try:
            return _go_unquote(raw)
        except ValueError:
            # pigeon reports an action's error at the start of the expression
            self.error("string", "invalid syntax", start)
            return raw


def _is_letter(c: str) -> bool:
    return c.isascii() and c.isalpha()


def _is_digit(c: str) -> bool:
    return c in "0123456789"


# (operator, words, spaced): grammar order matters, as in PEG.
_BINARY_OPERATORS = (
    ("==", ("==",), False),
    ("!=", ("!=",), False),
    ("contains", ("contains",), True),
    ("not contains", ("not", "contains"), True),
    ("matches", ("matches",), True),
    ("not matches", ("not", "matches"), True),
)
_EMPTY_OPERATORS = (
    ("is empty", ("is", "empty"), True),
    ("is not empty", ("is", "not", "empty"), True),
)
_IN_OPERATORS = (
    ("in", ("in",), True),
    ("not in", ("not", "in"), True),
)
# `is empty` / `is not empty` end the match; every other spaced operator needs
# whitespace before its value or selector.
_NO_TRAILING_WS = {"is empty", "is not empty"}

_SIMPLE_ESCAPES = {
    "a": "\a",
    "b": "\b",
    "f": "\f",
    "n": "\n",
    "r": "\r",
    "t": "\t",
    "v": "\v",
    "\\": "\\",
}


def _go_unquote(raw: str) -> str:
    """strconv.Unquote for a `raw` or "interpreted" Go string literal."""
    if raw[0] == "`":
        return raw[1:-1].replace("\r", "")
    body = raw[1:-1]
    if "\n" in body:
        raise ValueError("newline in string")
    out, i = [], 0
    while i < len(body):
        ch = body[i]
        if ch != "\\":
            out.append(ch)
            i += 1
            continue
        code = body[i + 1 : i + 2]
        if code in _SIMPLE_ESCAPES or code == '"':
            out.append(_SIMPLE_ESCAPES.get(code, code))
            i += 2
        elif code in ("x", "u", "U"):
            width = {"x": 2, "u": 4, "U": 8}[code]
            digits = body[i + 2 : i + 2 + width]
            if len(digits) != width or not all(
                d in "0123456789abcdefABCDEF" for d in digits
            ):
                raise ValueError("bad hex escape")
            out.append(chr(int(digits, 16)))
            i += 2 + width
        elif code and code in "01234567":
            digits = body[i + 1 : i + 4]
            if (
                len(digits) != 3
                or not all(d in "01234567" for d in digits)
                or int(digits, 8) > 255
            ):
                raise ValueError("bad octal escape")
            out.append(chr(int(digits, 8)))
            i += 4
        else:
            raise ValueError("unknown escape")
    return "".join(out)


# --- validation ---------------------------------------------------------------


def _matches(tree) -> Iterable[Match]:
    if isinstance(tree, Match):
        yield tree
    elif isinstance(tree, Not):
        yield from _matches(tree.operand)
    else:
        for operand in tree.operands:
            yield from _matches(operand)


def _check_selectors(tree, selectors: Iterable[str]) -> None:
    known = set()
    for path in selectors:
        parts = tuple(path.split("."))
        known.update(parts[:n] for n in range(1, len(parts) + 1))

    def valid(parts: tuple[str, ...]) -> bool:
        return any(
            len(k) == len(parts)
            and all(a == "*" or a == b for a, b in zip(k, parts, strict=True))
            for k in known
        )

    for match in _matches(tree):
        for n in range(1, len(match.selector) + 1):
            if not valid(match.selector[:n]):
                raise FilterError(
                    f"Selector {_go_quote('.'.join(match.selector[:n]))} is not valid"
                )


def _compile_regex(match: Match) -> re.Pattern:
    try:
        return re.compile(match.value)
    except re.error as exc:
        raise FilterError(
            f"Failed to compile regular expression {_go_quote(match.value)}: error parsing regexp: {exc}"
        ) from None


# --- evaluation ---------------------------------------------------------------

_MISSING = object()
_GO_TRUE = {"1", "t", "T", "true", "TRUE", "True"}
_GO_FALSE = {"0", "f", "F", "false", "FALSE", "False"}


def _coerce(raw: str, like: Any) -> Any:
    """The raw value as the type of `like` (bexpr's Coerce* functions), or _MISSING."""
    try:
        if isinstance(like, bool):
            return True if raw in _GO_TRUE else False if raw in _GO_FALSE else _MISSING
        if isinstance(like, int):
            return int(raw, 0)
        if isinstance(like, float):
            return float(raw)
    except ValueError:
        return _MISSING
    return raw if isinstance(like, str) else _MISSING


def _equal(field: Any, raw: str) -> bool:
    return field is not _MISSING and field is not None and _coerce(raw, field) == field


def _contains(field: Any, raw: str) -> bool:
    if isinstance(field, dict):
        return raw in field
    if isinstance(field, list):
        return any(_equal(item, raw) for item in field)
    return isinstance(field, str) and raw in field


def _is_empty(field: Any) -> bool:
    if field is _MISSING or field is None:
        return True
    return isinstance(field, str | list | dict) and len(field) == 0


_NEGATIONS = {
    "!=": "==",
    "not contains": "contains",
    "not in": "in",
    "is not empty": "is empty",
    "not matches": "matches",
}


def _leaf(match: Match) -> Callable[[Any], bool]:
    """The test applied where the selector ends (to _MISSING if it ends nowhere)."""
    base = _NEGATIONS.get(match.operator, match.operator)
    if base == "==":
        test = lambda field: _equal(field, match.value)
    elif base in ("contains", "in"):
        test = lambda field: _contains(field, match.value)
    elif base == "is empty":
        test = _is_empty
    else:
        pattern = _compile_regex(match)
        test = lambda field: (
            isinstance(field, str) and pattern.search(field) is not None
        )
    if match.operator in _NEGATIONS:
        return lambda field: not test(field)
    return test


def _select(value: Any, path: tuple[str, ...], leaf: Callable[[Any], bool]) -> bool:
    if not path:
        return leaf(value)
    if isinstance(value, list):
        # bexpr: "operations on slices are implicitly ANY operations"; the selector
        # does not advance while iterating.
        return any(_select(item, path, leaf) for item in value)
    if isinstance(value, dict) and value.get(path[0]) is not None:
        return _select(value[path[0]], path[1:], leaf)
    return leaf(_MISSING)


def _compile(tree) -> Callable[[Any], bool]:
    if isinstance(tree, Match):
        leaf = _leaf(tree)
        return lambda record: _select(record, tree.selector, leaf)
    if isinstance(tree, Not):
        operand = _compile(tree.operand)
        return lambda record: not operand(record)
    operands = [_compile(operand) for operand in tree.operands]
    combine = all if tree.operator == "and" else any
    return lambda record: combine(test(record) for test in operands)


def compile_filter(
    expression: str, selectors: Iterable[str] | None = None
) -> Callable[[Any], bool]:
    """A predicate for one JSON record; FilterError (bexpr's message) if `expression` is bad.

    `selectors`: the valid dotted field paths (`*` = any map key); None accepts any path.
    """
    tree = _Parser(expression).parse()
    if selectors is not None:
        _check_selectors(tree, selectors)
    return _compile(tree)


# --- Consul's record types ------------------------------------------------------
#
# The fields go-bexpr accepts for each Go type Consul filters (agent/structs and
# api/agent.go, Consul 1.17): every exported field except those tagged `bexpr:"-"`
# (RaftIndex's CreateIndex/ModifyIndex, EnterpriseMeta, Locality, HealthCheck's
# Definition, AgentService's ContentHash/Namespace/Partition/Datacenter); a map
# with string keys accepts any key (`*`); a slice of structs takes its element's
# fields without an index (`Checks.Status`).


def _fields(prefix: str, names: str) -> tuple[str, ...]:
    return tuple(f"{prefix}{name}" for name in names.split())


_UPSTREAM = (
    "DestinationType DestinationPartition DestinationNamespace DestinationPeer "
    "DestinationName Datacenter LocalBindAddress LocalBindPort LocalBindSocketPath "
    "LocalBindSocketMode MeshGateway.Mode CentrallyConfigured"
)
# ConnectProxyConfig / AgentServiceConnectProxyConfig (Config is `bexpr:"-"`).
_PROXY = _fields(
    "",
    "DestinationServiceName DestinationServiceID LocalServiceAddress "
    "LocalServicePort LocalServiceSocketPath Mode TransparentProxy.OutboundListenerPort "
    "TransparentProxy.DialedDirectly MeshGateway.Mode Expose.Checks "
    "Expose.Paths.ListenerPort Expose.Paths.Path Expose.Paths.LocalPathPort "
    "Expose.Paths.Protocol Expose.Paths.ParsedFromCheck",
) + _fields("Upstreams.", _UPSTREAM)


# structs.NodeService and api.AgentService have the same filterable fields.
_SERVICE = _fields(
    "",
    "Kind ID Service Tags Address TaggedAddresses.*.Address TaggedAddresses.*.Port "
    "Meta.* Port SocketPath Weights.Passing Weights.Warning EnableTagOverride "
    "Connect.Native PeerName",
) + _fields("Proxy.", " ".join(_PROXY))

# structs.Node
NODE_SELECTORS = _fields(
    "", "ID Node Address Datacenter Partition PeerName TaggedAddresses.* Meta.*"
)
# structs.HealthCheck: agent/checks, health/checks, health/state, health/node.
HEALTH_CHECK_SELECTORS = _fields(
    "",
    "Node CheckID Name Status Notes Output ServiceID ServiceName ServiceTags Type "
    "Interval Timeout ExposedPort PeerName",
)
# api.AgentService: agent/services.
AGENT_SERVICE_SELECTORS = _SERVICE
# structs.NodeService: the Service of a health/service entry.
NODE_SERVICE_SELECTORS = _SERVICE
# structs.ServiceNode: catalog/service, catalog/services.
SERVICE_NODE_SELECTORS = _fields(
    "",
    "ID Node Address Datacenter TaggedAddresses.* NodeMeta.* ServiceKind ServiceID "
    "ServiceName ServiceTags ServiceAddress ServiceTaggedAddresses.*.Address "
    "ServiceTaggedAddresses.*.Port ServiceWeights.Passing ServiceWeights.Warning "
    "ServiceMeta.* ServicePort ServiceSocketPath ServiceEnableTagOverride "
    "ServiceConnect.Native PeerName",
) + _fields("ServiceProxy.", " ".join(_PROXY))
# structs.CheckServiceNode: health/service.
SERVICE_ENTRY_SELECTORS = (
    _fields("Node.", " ".join(NODE_SELECTORS))
    + _fields("Service.", " ".join(NODE_SERVICE_SELECTORS))
    + _fields("Checks.", " ".join(HEALTH_CHECK_SELECTORS))
)
