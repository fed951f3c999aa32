"""Intrinsic functions (``States.Format('{}', $.a)`` ...) as Step Functions evaluates them.

``compile_intrinsic`` parses a call once (when the definition is loaded) and returns a function
of (input, context). A function this module does not know is refused there, naming the field;
a call that fails at run time raises ``IntrinsicFailureError`` (``States.IntrinsicFailure``).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import uuid
from collections.abc import Callable
from typing import Any, Final

from mlops_cli.emulator.states.paths import PathError, parse_path, read

Evaluated = Callable[[Any, Any], Any]


class IntrinsicFailureError(ValueError):
    """A call that cannot be evaluated (``States.IntrinsicFailure``)."""


_NUMBER = re.compile(r"-?\d+(\.\d+)?([eE][-+]?\d+)?")
_NAME = re.compile(r"States\.[A-Za-z0-9]+")


def _format(template: str, *args: Any) -> str:
    pieces = re.split(r"(?<!\\)\{\}", template)
    if len(pieces) - 1 != len(args):
        raise IntrinsicFailureError(
            f"States.Format: {len(pieces) - 1} placeholders for {len(args)} arguments"
        )
    out = [pieces[0]]
    for arg, piece in zip(args, pieces[1:], strict=True):
        if isinstance(arg, dict | list):
            raise IntrinsicFailureError(
                "States.Format: arguments must be strings, numbers or booleans"
            )
        out.append(arg if isinstance(arg, str) else json.dumps(arg))
        out.append(piece)
    return "".join(out).replace("\\{", "{").replace("\\}", "}")


def _string_to_json(text: Any) -> Any:
    if not isinstance(text, str):
        raise IntrinsicFailureError("States.StringToJson: the argument must be a string")
    try:
        return json.loads(text)
    except ValueError as exc:
        raise IntrinsicFailureError(f"States.StringToJson: {exc}") from None


def _array_partition(items: Any, size: Any) -> list[Any]:
    if not isinstance(items, list) or not isinstance(size, int) or size <= 0:
        raise IntrinsicFailureError("States.ArrayPartition: an array and a positive integer")
    return [items[i : i + size] for i in range(0, len(items), size)]


def _array_range(start: Any, end: Any, step: Any) -> list[int]:
    if not all(isinstance(x, int) for x in (start, end, step)) or step == 0:
        raise IntrinsicFailureError("States.ArrayRange: three integers, step not 0")
    values = list(range(start, end + (1 if step > 0 else -1), step))
    if len(values) > 1000:
        raise IntrinsicFailureError("States.ArrayRange: more than 1000 items")
    return values


def _array_get_item(items: Any, index: Any) -> Any:
    if not isinstance(items, list) or not isinstance(index, int) or not 0 <= index < len(items):
        raise IntrinsicFailureError("States.ArrayGetItem: index out of range")
    return items[index]


def _hash(data: Any, algorithm: Any) -> str:
    names = {"MD5": "md5", "SHA-1": "sha1", "SHA-256": "sha256", "SHA-384": "sha384"}
    names["SHA-512"] = "sha512"
    if algorithm not in names:
        raise IntrinsicFailureError(f"States.Hash: unknown algorithm {algorithm!r}")
    text = data if isinstance(data, str) else json.dumps(data)
    return hashlib.new(names[algorithm], text.encode()).hexdigest()


def _json_merge(left: Any, right: Any, deep: Any) -> Any:
    if not isinstance(left, dict) or not isinstance(right, dict):
        raise IntrinsicFailureError("States.JsonMerge: two objects")
    if deep is not False:
        raise IntrinsicFailureError("States.JsonMerge: only shallow merges (false) are supported")
    return {**left, **right}


def _length(items: Any) -> int:
    if not isinstance(items, list):
        raise IntrinsicFailureError("States.ArrayLength: the argument must be an array")
    return len(items)


def _unique(items: Any) -> list[Any]:
    if not isinstance(items, list):
        raise IntrinsicFailureError("States.ArrayUnique: the argument must be an array")
    seen: list[Any] = []
    for item in items:
        if item not in seen:
            seen.append(item)
    return seen


def _add(a: Any, b: Any) -> Any:
    if not all(isinstance(x, int | float) and not isinstance(x, bool) for x in (a, b)):
        raise IntrinsicFailureError("States.MathAdd: two numbers")
    return a + b


def _split(text: Any, separators: Any) -> list[str]:
    if not isinstance(text, str) or not isinstance(separators, str):
        raise IntrinsicFailureError("States.StringSplit: two strings")
    return [part for part in re.split("|".join(map(re.escape, separators)), text) if part]


FUNCTIONS: Final[dict[str, Callable[..., Any]]] = {
    "States.Format": _format,
    "States.StringToJson": _string_to_json,
    "States.JsonToString": lambda value: json.dumps(value, separators=(",", ":")),
    "States.Array": lambda *items: list(items),
    "States.ArrayLength": _length,
    "States.ArrayGetItem": _array_get_item,
    "States.ArrayContains": lambda items, value: isinstance(items, list) and value in items,
    "States.ArrayPartition": _array_partition,
    "States.ArrayRange": _array_range,
    "States.ArrayUnique": _unique,
    "States.MathAdd": _add,
    "States.StringSplit": _split,
    "States.UUID": lambda: str(uuid.uuid4()),
    "States.Base64Encode": lambda text: base64.b64encode(str(text).encode()).decode(),
    "States.Base64Decode": lambda text: base64.b64decode(str(text)).decode(),
    "States.Hash": _hash,
    "States.JsonMerge": _json_merge,
}


def compile_intrinsic(text: str, where: str) -> Evaluated:
    """The call in ``text`` (the value of a ``.$`` field at ``where``), compiled; ValueError
    names the field and what is not supported."""
    parser = _Parser(text, where)
    call = parser.call()
    parser.skip_space()
    if parser.position != len(text):
        raise ValueError(f"{where}: unexpected {text[parser.position :]!r} after the call")
    return call


class _Parser:
    def __init__(self, text: str, where: str) -> None:
        self.text = text
        self.where = where
        self.position = 0

    def fail(self, problem: str) -> ValueError:
        return ValueError(f"{self.where}: {problem} in {self.text!r}")

    def skip_space(self) -> None:
        while self.position < len(self.text) and self.text[self.position] == " ":
            self.position += 1

    def call(self) -> Evaluated:
        self.skip_space()
        match = _NAME.match(self.text, self.position)
        if match is None:
            raise self.fail("expected an intrinsic function States.Name(...)")
        name = match.group()
        if name not in FUNCTIONS:
            raise self.fail(f"intrinsic function {name} is not supported locally")
        self.position = match.end()
        if self.text[self.position : self.position + 1] != "(":
            raise self.fail(f"expected ( after {name}")
        self.position += 1
        args: list[Evaluated] = []
        self.skip_space()
        if self.text[self.position : self.position + 1] == ")":
            self.position += 1
        else:
            while True:
                args.append(self.argument())
                self.skip_space()
                separator = self.text[self.position : self.position + 1]
                self.position += 1
                if separator == ")":
                    break
                if separator != ",":
                    raise self.fail("expected , or )")
        function = FUNCTIONS[name]

        def evaluate(data: Any, context: Any) -> Any:
            values = [arg(data, context) for arg in args]
            try:
                return function(*values)
            except IntrinsicFailureError:
                raise
            except (TypeError, ValueError) as exc:
                raise IntrinsicFailureError(f"{name}: {exc}") from None

        return evaluate

    def argument(self) -> Evaluated:
        self.skip_space()
        rest = self.text[self.position :]
        if rest.startswith("'"):
            return self.string()
        if rest.startswith("States."):
            return self.call()
        if rest.startswith("$"):
            return self.path()
        for word, value in (("true", True), ("false", False), ("null", None)):
            if rest.startswith(word):
                self.position += len(word)
                return _constant(value)
        match = _NUMBER.match(self.text, self.position)
        if match:
            self.position = match.end()
            return _constant(json.loads(match.group()))
        raise self.fail("expected a string, number, boolean, null, path or call")

    def string(self) -> Evaluated:
        out = []
        self.position += 1
        while self.position < len(self.text):
            char = self.text[self.position]
            if char == "\\" and self.position + 1 < len(self.text):
                following = self.text[self.position + 1]
                # \{ and \} stay escaped for States.Format; \' and \\ are plain characters.
                out.append(following if following in "'\\" else char + following)
                self.position += 2
                continue
            if char == "'":
                self.position += 1
                return _constant("".join(out))
            out.append(char)
            self.position += 1
        raise self.fail("unterminated string")

    def path(self) -> Evaluated:
        start = self.position
        depth = 0
        quoted = False
        while self.position < len(self.text):
            char = self.text[self.position]
            if char == "'" and depth:
                quoted = not quoted
            elif not quoted and char == "[":
                depth += 1
            elif not quoted and char == "]":
                depth -= 1
            elif not quoted and depth == 0 and char in ",)":
                break
            self.position += 1
        text = self.text[start : self.position].strip()
        try:
            path = parse_path(text)
        except ValueError as exc:
            raise self.fail(str(exc)) from None

        def get(data: Any, context: Any) -> Any:
            try:
                return read(path, data, context)
            except PathError as exc:
                raise IntrinsicFailureError(f"{self.where}: {exc}") from None

        return get


def _constant(value: Any) -> Evaluated:
    def evaluate(data: Any, context: Any) -> Any:
        return value

    return evaluate
