"""CloudWatch Logs filter patterns, evaluated locally for subscription filters.

A subscription filter forwards a log event when its ``FilterPattern`` matches. The local stack
evaluates patterns itself because moto cannot deliver subscriptions to a Lambda function.

Faithful to CloudWatch Logs (the "Filter pattern syntax" page):

* an empty pattern matches every event;
* term patterns: every plain term or ``"quoted phrase"`` must occur (case-sensitive), ``?term``
  terms match when any of them occurs, ``-term`` excludes, ``%regex%`` matches a regular
  expression;
* JSON patterns ``{ ... }`` on events that are JSON documents: selectors ``$.a.b``, ``$.a[0]``,
  ``$.a[*]`` (any element); ``=`` and ``!=`` on strings (``*`` is a wildcard, quoted or bare)
  and numbers; ``<``, ``<=``, ``>``, ``>=`` on numbers; ``IS TRUE``, ``IS FALSE``, ``IS NULL``,
  ``EXISTS``, ``NOT EXISTS``; ``&&``, ``||`` and parentheses.

Not faithful, by choice:

* space-delimited patterns (``[ip, user, ...]``) are refused with a ConfigError at load time
  rather than mis-evaluated;
* ``&&`` binds tighter than ``||`` (the usual precedence; AWS documents no other);
* a number never equals a quoted string and a string never equals a number (no coercion);
* when plain, ``?`` and ``-`` terms are mixed, all three conditions must hold;
* ``%regex%`` uses Python's ``re`` (CloudWatch supports a subset of that syntax).
"""

from __future__ import annotations

import json
import math
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from mlops.errors import ConfigError

__all__ = ["FilterPattern", "compile_pattern", "matches"]

_MISSING: Final = object()

# One token of a JSON pattern body. Order matters: two-character operators before one.
_JSON_TOKEN = re.compile(
    r"""\s*(
        \(|\)|&&|\|\||!=|<=|>=|=|<|>
        |"(?:[^"\\]|\\.)*"
        |\$(?:\.[^\s.\[\]()=!<>&|"]+|\[(?:\d+|\*)\])*
        |[^\s()=!<>&|"]+
    )""",
    re.VERBOSE,
)
_SELECTOR_PART = re.compile(r"\.([^.\[\]]+)|\[(\d+|\*)\]")
_NUMBER = re.compile(r"-?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
_TERM = re.compile(r'[?-]?(?:"(?:[^"\\]|\\.)*"|%[^%]+%|[^\s"]+)')
_NUMERIC_OPS: Final[dict[str, Callable[[float, float], bool]]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "=": operator.eq,
    "!=": operator.ne,
}

Predicate = Callable[[Any], bool]


@dataclass(frozen=True)
class FilterPattern:
    """A compiled pattern: ``FilterPattern.compile(text).matches(message)``."""

    text: str
    _predicate: Callable[[str], bool]

    @classmethod
    def compile(cls, text: str | None) -> FilterPattern:
        pattern = (text or "").strip()
        if not pattern:
            return cls("", lambda _message: True)
        if pattern.startswith("{"):
            if not pattern.endswith("}"):
                raise ConfigError(f"filter pattern {text!r}: a JSON pattern must end with '}}'")
            return cls(pattern, _json_predicate(pattern, _compile_json(pattern[1:-1], text)))
        if pattern.startswith("["):
            raise ConfigError(
                f"filter pattern {text!r}: space-delimited patterns ([w1, w2, ...]) are not "
                "supported by the local stack; use a JSON or term pattern"
            )
        return cls(pattern, _compile_terms(pattern, text))

    def matches(self, message: str) -> bool:
        return self._predicate(message)


def compile_pattern(text: str | None) -> FilterPattern:
    return FilterPattern.compile(text)


def matches(pattern: str | None, message: str) -> bool:
    """One-off match; compile once with ``compile_pattern`` for repeated use."""
    return FilterPattern.compile(pattern).matches(message)


# ------------------------------------------------------------------ term patterns


def _compile_terms(pattern: str, original: str | None) -> Callable[[str], bool]:
    required: list[Callable[[str], bool]] = []
    any_of: list[Callable[[str], bool]] = []
    excluded: list[Callable[[str], bool]] = []
    position = 0
    for match in _TERM.finditer(pattern):
        if pattern[position : match.start()].strip():
            raise ConfigError(f"filter pattern {original!r}: cannot read {pattern[position:]!r}")
        position = match.end()
        token = match.group(0)
        bucket = required
        if token[0] in "?-" and len(token) > 1:
            bucket = any_of if token[0] == "?" else excluded
            token = token[1:]
        bucket.append(_term_predicate(token, original))
    if pattern[position:].strip():
        raise ConfigError(f"filter pattern {original!r}: unterminated quote or regex")

    def predicate(message: str) -> bool:
        return (
            all(term(message) for term in required)
            and (not any_of or any(term(message) for term in any_of))
            and not any(term(message) for term in excluded)
        )

    return predicate


def _term_predicate(token: str, original: str | None) -> Callable[[str], bool]:
    if token.startswith('"'):
        phrase = _json_string(token, original)
        return lambda message: phrase in message
    if len(token) > 2 and token.startswith("%") and token.endswith("%"):
        try:
            regex = re.compile(token[1:-1])
        except re.error as exc:
            raise ConfigError(f"filter pattern {original!r}: bad regex {token}: {exc}") from None
        return lambda message: regex.search(message) is not None
    return lambda message: token in message


# ------------------------------------------------------------------ JSON patterns


def _json_predicate(pattern: str, predicate: Predicate) -> Callable[[str], bool]:
    def evaluate(message: str) -> bool:
        text = message.strip()
        # Only events that are JSON documents can match; skip the parse for everything else.
        if not text.startswith(("{", "[")):
            return False
        try:
            doc = json.loads(text)
        except ValueError:
            return False
        return predicate(doc)

    return evaluate


def _compile_json(body: str, original: str | None) -> Predicate:
    tokens: list[str] = []
    position = 0
    while position < len(body):
        match = _JSON_TOKEN.match(body, position)
        if match is None:
            if not body[position:].strip():
                break
            raise ConfigError(f"filter pattern {original!r}: cannot read {body[position:]!r}")
        tokens.append(match.group(1))
        position = match.end()
    if not tokens:
        raise ConfigError(f"filter pattern {original!r}: empty JSON pattern")
    parser = _JsonParser(tokens, original)
    predicate = parser.disjunction()
    if parser.peek() is not None:
        raise ConfigError(f"filter pattern {original!r}: unexpected {parser.peek()!r}")
    return predicate


class _JsonParser:
    """Recursive descent: disjunction := conjunction ('||' conjunction)*, and so on."""

    def __init__(self, tokens: list[str], original: str | None) -> None:
        self.tokens = tokens
        self.index = 0
        self.original = original

    def peek(self) -> str | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def take(self, what: str) -> str:
        token = self.peek()
        if token is None:
            raise ConfigError(f"filter pattern {self.original!r}: expected {what}, got the end")
        self.index += 1
        return token

    def disjunction(self) -> Predicate:
        terms = [self.conjunction()]
        while self.peek() == "||":
            self.index += 1
            terms.append(self.conjunction())
        return terms[0] if len(terms) == 1 else lambda doc: any(t(doc) for t in terms)

    def conjunction(self) -> Predicate:
        factors = [self.factor()]
        while self.peek() == "&&":
            self.index += 1
            factors.append(self.factor())
        return factors[0] if len(factors) == 1 else lambda doc: all(f(doc) for f in factors)

    def factor(self) -> Predicate:
        if self.peek() == "(":
            self.index += 1
            inner = self.disjunction()
            if self.take("')'") != ")":
                raise ConfigError(f"filter pattern {self.original!r}: expected ')'")
            return inner
        selector = self.take("a selector like $.field")
        if not selector.startswith("$"):
            raise ConfigError(
                f"filter pattern {self.original!r}: expected a selector like $.field, "
                f"got {selector!r}"
            )
        path = _parse_selector(selector, self.original)
        op = self.take("an operator")
        keyword = op.upper()
        if keyword == "IS":
            return _is_check(path, self.take("TRUE, FALSE or NULL").upper(), self.original)
        if keyword == "EXISTS":
            return lambda doc: bool(_values(doc, path))
        if keyword == "NOT":
            if self.take("EXISTS").upper() != "EXISTS":
                raise ConfigError(f"filter pattern {self.original!r}: expected NOT EXISTS")
            return lambda doc: not _values(doc, path)
        if op not in _NUMERIC_OPS:
            raise ConfigError(f"filter pattern {self.original!r}: unknown operator {op!r}")
        return _comparison(path, op, self.take("a value"), self.original)


def _parse_selector(selector: str, original: str | None) -> list[str | int | None]:
    """``$.a[0].b[*]`` → ["a", 0, "b", None]; None stands for "any element"."""
    parts: list[str | int | None] = []
    position = 1
    for match in _SELECTOR_PART.finditer(selector, 1):
        if match.start() != position:
            break
        key, index = match.groups()
        parts.append(key if key is not None else (None if index == "*" else int(index)))
        position = match.end()
    if position != len(selector):
        raise ConfigError(f"filter pattern {original!r}: bad selector {selector!r}")
    return parts


def _values(doc: Any, path: list[str | int | None]) -> list[Any]:
    """Every value the selector reaches (several through ``[*]``, none when missing)."""
    current = [doc]
    for part in path:
        following: list[Any] = []
        for value in current:
            if part is None:
                if isinstance(value, list):
                    following.extend(value)
            elif isinstance(part, str):
                if isinstance(value, dict) and part in value:
                    following.append(value[part])
            elif isinstance(value, list) and part < len(value):
                following.append(value[part])
        current = following
    return current


def _is_check(path: list[str | int | None], what: str, original: str | None) -> Predicate:
    expected = {"TRUE": True, "FALSE": False, "NULL": None}
    if what not in expected:
        raise ConfigError(f"filter pattern {original!r}: IS needs TRUE, FALSE or NULL")
    target = expected[what]
    return lambda doc: any(value is target for value in _values(doc, path))


def _comparison(
    path: list[str | int | None], operator: str, literal: str, original: str | None
) -> Predicate:
    if literal.startswith('"'):
        return _string_comparison(path, operator, _json_string(literal, original), original)
    if _NUMBER.fullmatch(literal):
        number = float(literal)
        compare = _NUMERIC_OPS[operator]

        def numeric(doc: Any) -> bool:
            return any(
                isinstance(value, int | float)
                and not isinstance(value, bool)
                and math.isfinite(value)
                and compare(value, number)
                for value in _values(doc, path)
            )

        return numeric
    # A bare word is a string: `{ $.ip != 10.0.* }` is how the AWS examples write it.
    return _string_comparison(path, operator, literal, original)


def _string_comparison(
    path: list[str | int | None], operator: str, literal: str, original: str | None
) -> Predicate:
    if operator not in ("=", "!="):
        raise ConfigError(f"filter pattern {original!r}: {operator} compares numbers only")
    if "*" in literal:
        regex = re.compile(".*".join(re.escape(piece) for piece in literal.split("*")), re.DOTALL)

        def equal(value: str) -> bool:
            return regex.fullmatch(value) is not None
    else:

        def equal(value: str) -> bool:
            return value == literal

    want = operator == "="
    return lambda doc: any(
        isinstance(value, str) and equal(value) == want for value in _values(doc, path)
    )


def _json_string(token: str, original: str | None) -> str:
    try:
        value = json.loads(token)
    except ValueError:
        raise ConfigError(f"filter pattern {original!r}: bad quoted string {token}") from None
    return str(value)
