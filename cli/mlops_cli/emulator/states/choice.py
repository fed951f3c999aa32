"""Choice rules: the comparison operators of the Amazon States Language, compiled once.

A rule that names an operator this module does not know is refused when the definition is
loaded. As on AWS, a comparison whose ``Variable`` is missing raises ``States.Runtime`` (use
``IsPresent`` first); a value of the wrong type compares false.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from typing import Any, Final

from mlops_cli.emulator.states.paths import Path, PathError, parse_path, read

Predicate = Callable[[Any, Any], bool]  # (input, context) -> bool


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def timestamp(value: Any) -> datetime | None:
    """An RFC 3339 timestamp as Step Functions accepts it (``Z`` or an offset), else None."""
    if not isinstance(value, str) or "T" not in value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def _matches(value: Any, pattern: str) -> bool:
    """``StringMatches``: ``*`` is any run of characters; ``\\*`` a literal star."""
    if not isinstance(value, str):
        return False
    parts = re.split(r"(?<!\\)\*", pattern)
    regex = ".*".join(re.escape(part.replace("\\*", "*").replace("\\\\", "\\")) for part in parts)
    return re.fullmatch(regex, value, flags=re.DOTALL) is not None


_COMPARE: Final[dict[str, Callable[[Any, Any], bool]]] = {
    "Equals": lambda a, b: a == b,
    "LessThan": lambda a, b: a < b,
    "GreaterThan": lambda a, b: a > b,
    "LessThanEquals": lambda a, b: a <= b,
    "GreaterThanEquals": lambda a, b: a >= b,
}
_KINDS: Final[dict[str, Callable[[Any], Any]]] = {
    "String": lambda v: v if isinstance(v, str) else None,
    "Numeric": lambda v: v if _number(v) else None,
    "Boolean": lambda v: v if isinstance(v, bool) else None,
    "Timestamp": timestamp,
}
_TESTS: Final[dict[str, Callable[[Any], bool]]] = {
    "IsNumeric": _number,
    "IsString": lambda v: isinstance(v, str),
    "IsBoolean": lambda v: isinstance(v, bool),
    "IsTimestamp": lambda v: timestamp(v) is not None,
    "IsNull": lambda v: v is None,
}
OPERATORS: Final = frozenset(
    [
        f"{kind}{op}"
        for kind in _KINDS
        for op in _COMPARE
        if not (kind == "Boolean" and op != "Equals")
    ]
    + [
        f"{kind}{op}Path"
        for kind in _KINDS
        for op in _COMPARE
        if not (kind == "Boolean" and op != "Equals")
    ]
    + [*_TESTS, "IsPresent", "StringMatches"]
)


def compile_rule(rule: Any, where: str) -> Predicate:
    """A Choice rule (without its ``Next``); ValueError names ``where`` and the field."""
    if not isinstance(rule, dict):
        raise ValueError(f"{where}: a choice rule must be an object")
    combinators = [key for key in ("And", "Or", "Not") if key in rule]
    if combinators:
        key = combinators[0]
        if key == "Not":
            inner = compile_rule(rule["Not"], f"{where}.Not")
            return lambda data, ctx: not inner(data, ctx)
        if not isinstance(rule[key], list) or not rule[key]:
            raise ValueError(f"{where}.{key}: a non-empty list of rules")
        rules = [compile_rule(r, f"{where}.{key}[{i}]") for i, r in enumerate(rule[key])]
        if key == "And":
            return lambda data, ctx: all(r(data, ctx) for r in rules)
        return lambda data, ctx: any(r(data, ctx) for r in rules)
    operators = [key for key in rule if key not in ("Variable", "Next", "Comment")]
    if len(operators) != 1:
        raise ValueError(f"{where}: exactly one comparison operator, got {sorted(operators)}")
    (operator,) = operators
    if operator not in OPERATORS:
        raise ValueError(f"{where}: comparison operator {operator!r} is not supported locally")
    if "Variable" not in rule:
        raise ValueError(f"{where}: a comparison needs a Variable")
    variable = parse_path(rule["Variable"])
    operand = rule[operator]
    if operator == "IsPresent":
        return lambda data, ctx: _present(variable, data, ctx) == bool(operand)
    if operator in _TESTS:
        test = _TESTS[operator]
        return lambda data, ctx: (
            _present(variable, data, ctx) and test(read(variable, data, ctx)) == bool(operand)
        )
    if operator == "StringMatches":
        return lambda data, ctx: _matches(_value(variable, data, ctx, where), operand)
    by_path = operator.endswith("Path")
    base = operator[:-4] if by_path else operator
    kind = next(k for k in _KINDS if base.startswith(k))
    cast, compare = _KINDS[kind], _COMPARE[base[len(kind) :]]
    if by_path:
        other = parse_path(operand)

        def right(data: Any, ctx: Any) -> Any:
            return cast(_value(other, data, ctx, where))

    else:
        constant = cast(operand)
        if constant is None:
            raise ValueError(f"{where}.{operator}: {operand!r} is not a {kind.lower()}")

        def right(data: Any, ctx: Any) -> Any:
            return constant

    def predicate(data: Any, ctx: Any) -> bool:
        left = cast(_value(variable, data, ctx, where))
        value = right(data, ctx)
        if left is None or value is None:
            return False
        return bool(compare(left, value))

    return predicate


def _present(path: Path, data: Any, ctx: Any) -> bool:
    try:
        read(path, data, ctx)
    except PathError:
        return False
    return True


def _value(path: Path, data: Any, ctx: Any, where: str) -> Any:
    try:
        return read(path, data, ctx)
    except PathError as exc:
        raise PathError(f"{where}: Invalid path '{path.text}': {exc}") from None


__all__ = ["OPERATORS", "compile_rule", "timestamp"]
