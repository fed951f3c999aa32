"""CloudWatch Logs filter patterns: each operator exactly on and one past its boundary."""

from __future__ import annotations

import json
from typing import Any

import pytest

from mlops.errors import ConfigError
from mlops_cli.emulator.logfilter import FilterPattern, matches


def _doc(**fields: Any) -> str:
    return json.dumps(fields)


JSON_TABLE = [
    # numeric comparisons: on the boundary and one past it
    ("{ $.latency > 100 }", _doc(latency=100), False),
    ("{ $.latency > 100 }", _doc(latency=101), True),
    ("{ $.latency > 100 }", _doc(latency=100.5), True),
    ("{ $.latency >= 100 }", _doc(latency=100), True),
    ("{ $.latency >= 100 }", _doc(latency=99), False),
    ("{ $.latency < 100 }", _doc(latency=100), False),
    ("{ $.latency < 100 }", _doc(latency=99), True),
    ("{ $.latency <= 100 }", _doc(latency=100), True),
    ("{ $.latency <= 100 }", _doc(latency=101), False),
    ("{ $.latency = 100 }", _doc(latency=100), True),
    ("{ $.latency = 100 }", _doc(latency=100.0), True),
    ("{ $.latency = 100 }", _doc(latency=101), False),
    ("{ $.latency = 100 }", _doc(latency="100"), False),
    ("{ $.latency != 100 }", _doc(latency=100), False),
    ("{ $.latency != 100 }", _doc(latency=101), True),
    ("{ $.latency != 100 }", _doc(other=1), False),
    ("{ $.n < -1 }", _doc(n=-1), False),
    ("{ $.n < -1 }", _doc(n=-2), True),
    ("{ $.n >= 1e3 }", _doc(n=1000), True),
    ("{ $.n >= 1e3 }", _doc(n=999), False),
    ("{ $.n > 0 }", _doc(n=True), False),
    # strings: exact, case-sensitive, wildcards quoted or bare
    ('{ $.type = "capture" }', _doc(type="capture"), True),
    ('{ $.type = "capture" }', _doc(type="captures"), False),
    ('{ $.type = "capture" }', _doc(type="Capture"), False),
    ('{ $.type = "capture" }', _doc(kind="capture"), False),
    ("{ $.type = capture }", _doc(type="capture"), True),
    ('{ $.type != "capture" }', _doc(type="metric"), True),
    ('{ $.type != "capture" }', _doc(type="capture"), False),
    ('{ $.path = "/models/*" }', _doc(path="/models/a/b"), True),
    ('{ $.path = "/models/*" }', _doc(path="/models/"), True),
    ('{ $.path = "/models/*" }', _doc(path="/model"), False),
    ("{ $.ip = 10.0.* }", _doc(ip="10.0.1.2"), True),
    ("{ $.ip = 10.0.* }", _doc(ip="10.1.0.0"), False),
    ('{ $.code = "200" }', _doc(code=200), False),
    # IS / EXISTS
    ("{ $.flag IS TRUE }", _doc(flag=True), True),
    ("{ $.flag IS TRUE }", _doc(flag="true"), False),
    ("{ $.flag IS TRUE }", _doc(flag=1), False),
    ("{ $.flag IS FALSE }", _doc(flag=False), True),
    ("{ $.flag IS FALSE }", _doc(flag=0), False),
    ("{ $.flag IS NULL }", _doc(flag=None), True),
    ("{ $.flag IS NULL }", _doc(other=None), False),
    ("{ $.x EXISTS }", _doc(x=None), True),
    ("{ $.x EXISTS }", _doc(y=1), False),
    ("{ $.x NOT EXISTS }", _doc(y=1), True),
    ("{ $.x NOT EXISTS }", _doc(x=0), False),
    # nesting and arrays
    ('{ $.a.b.c = "x" }', json.dumps({"a": {"b": {"c": "x"}}}), True),
    ('{ $.a.b.c = "x" }', json.dumps({"a": {"b": "c"}}), False),
    ('{ $.items[0].sku = "x" }', json.dumps({"items": [{"sku": "x"}]}), True),
    ('{ $.items[1].sku = "x" }', json.dumps({"items": [{"sku": "x"}]}), False),
    ("{ $.items[*].qty > 5 }", json.dumps({"items": [{"qty": 1}, {"qty": 6}]}), True),
    ("{ $.items[*].qty > 5 }", json.dumps({"items": [{"qty": 1}, {"qty": 5}]}), False),
    ('{ $[0] = "first" }', json.dumps(["first"]), True),
    # && binds tighter than ||; parentheses override
    ("{ $.a = 1 || $.b = 2 && $.c = 3 }", _doc(a=1), True),
    ("{ $.a = 1 || $.b = 2 && $.c = 3 }", _doc(b=2, c=4), False),
    ("{ $.a = 1 || $.b = 2 && $.c = 3 }", _doc(b=2, c=3), True),
    ("{ ($.a = 1 || $.b = 2) && $.c = 3 }", _doc(a=1), False),
    ("{ ($.a = 1 || $.b = 2) && $.c = 3 }", _doc(a=1, c=3), True),
    ('{ $.type = "capture" && $.latency > 100 }', _doc(type="capture", latency=101), True),
    ('{ $.type = "capture" && $.latency > 100 }', _doc(type="capture", latency=100), False),
    # only JSON events can match a JSON pattern
    ('{ $.type = "capture" }', 'INFO {"type": "capture"}', False),
    ('{ $.type = "capture" }', '{"type": "capture"', False),
    ("{ $.x NOT EXISTS }", "plain text", False),
]


@pytest.mark.parametrize(("pattern", "message", "expected"), JSON_TABLE)
def test_json_patterns(pattern: str, message: str, expected: bool) -> None:
    assert matches(pattern, message) is expected


TERM_TABLE = [
    ("", "anything at all", True),
    ("   ", "", True),
    ("ERROR", "[ERROR] boom", True),
    ("ERROR", "[error] boom", False),
    ("ERROR Exception", "ERROR in Exception", True),
    ("ERROR Exception", "ERROR only", False),
    ('"ERROR Exception"', "an ERROR Exception here", True),
    ('"ERROR Exception"', "ERROR x Exception", False),
    ("?ERROR ?WARN", "WARN disk", True),
    ("?ERROR ?WARN", "INFO fine", False),
    ("ERROR -Retry", "ERROR final", True),
    ("ERROR -Retry", "ERROR Retry 2", False),
    ('-"health check" GET', "GET /health-check", True),
    ('-"health check" GET', "GET health check", False),
    ("%ERR[0-9]+%", "code ERR42", True),
    ("%ERR[0-9]+%", "code ERR", False),
]


@pytest.mark.parametrize(("pattern", "message", "expected"), TERM_TABLE)
def test_term_patterns(pattern: str, message: str, expected: bool) -> None:
    assert matches(pattern, message) is expected


@pytest.mark.parametrize(
    ("pattern", "problem"),
    [
        ("[ip, user, status]", "space-delimited"),
        ("{ $.a = }", "expected a value"),
        ("{ a = 1 }", "expected a selector"),
        ('{ $.a < "x" }', "compares numbers only"),
        ("{ $.a = 1", "must end with"),
        ("{ ($.a = 1 }", r"expected '\)'"),
        ("{ $.a IS MAYBE }", "TRUE, FALSE or NULL"),
        ("{ $.a NOT THERE }", "NOT EXISTS"),
        ("{ $.a ~ 1 }", "unknown operator"),
        ("{ $.a = 1 $.b = 2 }", "unexpected"),
        ("{ }", "empty JSON pattern"),
        ('"unterminated', "unterminated"),
        ("%(%", "bad regex"),
    ],
)
def test_malformed_patterns_are_config_errors(pattern: str, problem: str) -> None:
    with pytest.raises(ConfigError, match=problem):
        FilterPattern.compile(pattern)


def test_a_compiled_pattern_is_reusable() -> None:
    pattern = FilterPattern.compile('{ $.type = "capture" }')
    assert [pattern.matches(_doc(type=t)) for t in ("capture", "metric", "capture")] == [
        True,
        False,
        True,
    ]
