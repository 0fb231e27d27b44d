"""devconsul.filter: go-bexpr compatible filter expressions (table-driven)."""

import pytest

from devconsul.filter import (
    HEALTH_CHECK_SELECTORS,
    SERVICE_ENTRY_SELECTORS,
    FilterError,
    compile_filter,
)

# One /v1/health/service entry: a node check passing, the service's own check critical.
ENTRY = {
    "Node": {"Node": "n1", "Address": "10.0.0.1", "Meta": {"rack": "a"}},
    "Service": {
        "ID": "web-1",
        "Service": "web",
        "Tags": ["v1", "primary"],
        "Address": "",
        "Port": 8080,
        "Meta": {"env": "prod", "version": "1.2.0"},
        "Weights": {"Passing": 3, "Warning": 1},
        "EnableTagOverride": False,
        "Proxy": None,
    },
    "Checks": [
        {"CheckID": "serfHealth", "Status": "passing", "ServiceTags": []},
        {"CheckID": "service:web-1", "Status": "critical", "ServiceTags": ["v1"]},
    ],
}


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        # == and != with string, bare-word, backtick and number values
        ('Service.Service == "web"', True),
        ("Service.Service == web", True),
        ("Service.Service == `web`", True),
        ('Service.Service == "db"', False),
        ('Service.Service != "db"', True),
        ('Service.Service != "web"', False),
        ('Service.Address == ""', True),
        # the value is converted to the field's type
        ("Service.Port == 8080", True),
        ('Service.Port == "8080"', True),
        ("Service.Port == 80", False),
        ("Service.Port != 80", True),
        ("Service.Port == web", False),
        ("Service.Weights.Passing == 3", True),
        ("Service.EnableTagOverride == false", True),
        ("Service.EnableTagOverride == F", True),
        ("Service.EnableTagOverride == true", False),
        # contains / in on lists, strings (substring) and maps (keys)
        ('Service.Tags contains "v1"', True),
        ('Service.Tags contains "v2"', False),
        ('Service.Tags not contains "v2"', True),
        ('"v1" in Service.Tags', True),
        ('"v1" not in Service.Tags', False),
        ('"eb" in Service.Service', True),
        ('Service.Service contains "x"', False),
        ("Service.Meta contains env", True),
        ('"owner" not in Service.Meta', True),
        # is empty / is not empty
        ("Service.Tags is not empty", True),
        ("Service.Tags is empty", False),
        ("Service.Address is empty", True),
        ("Service.Proxy is empty", True),
        # matches / not matches: unanchored regex search
        ('Service.ID matches "^web-[0-9]+$"', True),
        ('Service.ID matches "eb"', True),
        ('Service.ID not matches "^db"', True),
        ('Service.Meta.version matches "^1\\\\."', True),
        ("Service.Port matches `80`", False),
        # meta maps: dotted and indexed; a missing key is missing
        ('Service.Meta.env == "prod"', True),
        ('Service.Meta["env"] == "prod"', True),
        ("Service.Meta[`env`] != prod", False),
        ('Node.Meta.rack != "a"', False),
        ('Service.Meta.owner == "x"', False),
        ('Service.Meta.owner != "x"', True),
        ("Service.Meta.owner is empty", True),
        ("Service.Meta.owner is not empty", False),
        ('"x" in Service.Meta.owner', False),
        ('"x" not in Service.Meta.owner', True),
        ('Service.Meta.owner matches "."', False),
        ('Service.Meta.owner not matches "."', True),
        # a selector crossing a list matches if ANY element does
        ('Checks.Status == "passing"', True),
        ('Checks.Status == "critical"', True),
        ('Checks.Status == "warning"', False),
        ('Checks.Status != "passing"', True),
        ('Checks.CheckID == "serfHealth"', True),
        ('Checks.ServiceTags contains "v1"', True),
        ("Checks is not empty", True),
        # operators that do not fit the field's type are false, negations true
        ("Service.Tags == v1", False),
        ("Service.Tags != v1", True),
        # and, or, not, parentheses; precedence not > and > or
        ("Service.Port == 8080 and Service.Service == web", True),
        ("Service.Port == 8080 and Service.Service == db", False),
        ("Service.Port == 1 or Service.Service == web", True),
        ("not Service.Service == db", True),
        ("not not Service.Service == web", True),
        ("Service.Port == 8080 or Service.Port == 1 and Service.Port == 2", True),
        ("(Service.Port == 8080 or Service.Port == 1) and Service.Port == 2", False),
        ("not Service.Port == 1 and Service.Port == 8080", True),
        ("not (Service.Port == 1 or Service.Port == 8080)", False),
        ("(Service.Port == 8080)", True),
        ("\t(\n Service.Port  ==  8080 \r)\n", True),
        # string escapes are Go's
        ('Service.Service == "w\\x65b"', True),
        ('Service.Service == "w\\u0065b"', True),
    ],
)
def test_evaluates_like_bexpr(expression, expected):
    assert compile_filter(expression)(ENTRY) is expected


def test_empty_list_matches_nothing_even_negated():
    record = {"Checks": []}
    assert not compile_filter('Checks.Status == "passing"')(record)
    assert not compile_filter('Checks.Status != "passing"')(record)
    assert compile_filter("Checks is empty")(record)


def test_filters_a_list_of_records():
    checks = [
        {"CheckID": "a", "Status": "passing"},
        {"CheckID": "b", "Status": "critical"},
    ]
    keep = compile_filter("Status != passing", HEALTH_CHECK_SELECTORS)
    assert [c["CheckID"] for c in checks if keep(c)] == ["b"]


# Messages are go-bexpr's (grammar/grammar_test.go, validate.go) character for character.
@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ('foo == "12x', '1:12 (11): rule "string": Unterminated string literal'),
        ("foo == `12x", '1:12 (11): rule "string": Unterminated string literal'),
        ('foo == "a\\qb"', '1:8 (7): rule "string": invalid syntax'),
        ("foo == 3x", '1:9 (8): rule "number": Invalid number literal'),
        ("foo[3] == abc", '1:5 (4): rule "index": Invalid index'),
        ('x in foo["abc"', '1:15 (14): rule "index": Unclosed index expression'),
        ("x in 32", '1:6 (5): rule "match": Invalid selector'),
        ("(foo == 4", '1:10 (9): rule "grouping": Unmatched parentheses'),
        ("32 == 32", '1:4 (3): no match found, expected: "in", "not" or [ \\t\\r\\n]'),
        (
            "x in foo abc",
            '1:10 (9): no match found, expected: "and", "or", [ \\t\\r\\n] or EOF',
        ),
        (
            "x in foo and ",
            (
                '1:14 (13): no match found, expected: "(", "-", "0", "\\"", "`", "not", '
                "[ \\t\\r\\n], [1-9] or [a-zA-Z]"
            ),
        ),
        ("x in foo and", "1:13 (12): no match found, expected: [ \\t\\r\\n]"),
        (
            "a = 1",
            (
                '1:3 (2): no match found, expected: "!=", "==", "contains", "in", "is", '
                '"matches", "not" or [ \\t\\r\\n]'
            ),
        ),
        (
            "a === 1",
            (
                '1:5 (4): no match found, expected: "-", "0", "\\"", "`", [ \\t\\r\\n], '
                "[1-9] or [a-zA-Z]"
            ),
        ),
        ("a ==\n  `x", '2:5 (9): rule "string": Unterminated string literal'),
        ('a == "é', '1:8 (8): rule "string": Unterminated string literal'),
    ],
)
def test_bad_expressions_fail_with_bexpr_messages(expression, message):
    with pytest.raises(FilterError) as caught:
        compile_filter(expression)
    assert str(caught.value) == message


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("Service.Nope == 1", 'Selector "Service.Nope" is not valid'),
        ("Nodes.Meta.rack == a", 'Selector "Nodes" is not valid'),
        ("Checks.Status.x == a", 'Selector "Checks.Status.x" is not valid'),
        (
            'Service.ID matches "("',
            (
                'Failed to compile regular expression "(": error parsing regexp: '
                "missing ), unterminated subpattern at position 0"
            ),
        ),
    ],
)
def test_validation_errors(expression, message):
    with pytest.raises(FilterError) as caught:
        compile_filter(expression, SERVICE_ENTRY_SELECTORS)
    assert str(caught.value) == message


@pytest.mark.parametrize(
    "expression",
    [
        'Service.Meta.anything == "x"',
        'Node.Meta["rack-1"] == "x"',
        "Checks.Status == passing",
        "Service.Weights.Warning == 1",
    ],
)
def test_known_selectors_pass_validation(expression):
    compile_filter(expression, SERVICE_ENTRY_SELECTORS)


def test_unknown_fields_are_missing_without_a_schema():
    assert compile_filter("Nope is empty")(ENTRY)
    assert not compile_filter('Nope == ""')(ENTRY)


def test_long_chains_and_deep_nesting():
    chain = " or ".join(f"a == {n}" for n in range(3000))
    assert compile_filter(chain)({"a": 2999})
    nested = "(" * 40 + "not a == 1" + ")" * 40
    assert not compile_filter(nested)({"a": 1})
    with pytest.raises(FilterError, match="nested too deeply"):
        compile_filter("(" * 5000 + "a == 1" + ")" * 5000)
