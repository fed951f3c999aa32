"""JSONPath as the Amazon States Language uses it: reference paths (``InputPath``,
``OutputPath``, ``ItemsPath``, ``Variable``, ``*Path`` comparisons), ``ResultPath`` (where a result
goes) and payload templates (``Parameters``, ``ItemSelector``, ``ResultSelector``, ``BatchInput``:
keys ending in ``.$`` take a path or an intrinsic function).

Supported path steps: ``.name``, ``['name']``, ``[n]`` and ``[*]``, from ``$`` (the input) or ``$$``
(the context object). Anything else (filters, slices, ``..``) is refused by ``parse_path`` so
the definition is refused when the stack starts, never evaluated half-way.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

WILDCARD: Final = object()
_STEP = re.compile(r"\.([^.\[\]'\s]+)|\['((?:[^'\\]|\\.)*)'\]|\[(\d+)\]|\[(\*)\]")


class PathError(ValueError):
    """A path that does not match the data (``States.Runtime`` where ASL says so)."""


@dataclass(frozen=True)
class Path:
    text: str
    context: bool  # "$$": the context object
    steps: tuple[Any, ...]  # str, int or WILDCARD

    @property
    def definite(self) -> bool:
        return WILDCARD not in self.steps


def parse_path(text: str) -> Path:
    """A path of the supported subset; ValueError names what is not supported."""
    if not isinstance(text, str) or not text.startswith("$"):
        raise ValueError(f"{text!r} is not a JSONPath (it must start with $)")
    context = text.startswith("$$")
    rest = text[2:] if context else text[1:]
    steps: list[Any] = []
    position = 0
    while position < len(rest):
        match = _STEP.match(rest, position)
        if match is None:
            raise ValueError(
                f"JSONPath {text!r}: {rest[position:]!r} is not supported locally "
                "(supported: .name, ['name'], [n], [*])"
            )
        name, quoted, index, _star = match.groups()
        if name is not None:
            steps.append(name)
        elif quoted is not None:
            steps.append(re.sub(r"\\(.)", r"\1", quoted))
        elif index is not None:
            steps.append(int(index))
        else:
            steps.append(WILDCARD)
        position = match.end()
    return Path(text, context, tuple(steps))


def read(path: Path, data: Any, context: Any = None) -> Any:
    """The value at ``path``; PathError when it is missing (a wildcard gives a list)."""
    return _read(path, path.steps, context if path.context else data)


def _read(path: Path, steps: tuple[Any, ...], value: Any) -> Any:
    for position, step in enumerate(steps):
        if step is WILDCARD:
            if isinstance(value, Mapping):
                items = list(value.values())
            elif isinstance(value, list):
                items = value
            else:
                raise PathError(f"{path.text}: [*] applied to a {type(value).__name__}")
            rest = steps[position + 1 :]
            out = []
            for item in items:
                try:
                    out.append(_read(path, rest, item))
                except PathError:
                    continue  # JSONPath: a wildcard keeps the branches that match
            return out
        if isinstance(step, int):
            if not isinstance(value, list) or step >= len(value):
                raise PathError(f"{path.text}: no item [{step}]")
            value = value[step]
        elif isinstance(value, dict) and step in value:  # the common case, before Mapping's ABC
            value = value[step]
        else:
            if not isinstance(value, Mapping) or step not in value:
                raise PathError(f"{path.text}: no field {step!r}")
            value = value[step]
    return value


def parse_result_path(text: str | None) -> Path | None:
    """``ResultPath``: null (discard the result), ``$``, or a definite path of names/indexes."""
    if text is None:
        return None
    path = parse_path(text)
    if path.context or not path.definite:
        raise ValueError(f"ResultPath {text!r} must be a definite path from $")
    return path


def place(path: Path | None, data: Any, result: Any) -> Any:
    """``ResultPath``: ``data`` with ``result`` at ``path`` (a copy: the state's input is not
    changed); ``None`` keeps ``data``. PathError when the path runs into a non-object."""
    if path is None:
        return data
    if not path.steps:
        return result
    if not isinstance(data, dict):
        raise PathError(f"ResultPath {path.text}: the state's input is not an object")
    root = copy.copy(data)
    node: Any = root
    for position, step in enumerate(path.steps):
        last = position == len(path.steps) - 1
        if isinstance(step, int):
            if not isinstance(node, list) or step >= len(node):
                raise PathError(f"ResultPath {path.text}: no item [{step}]")
        elif not isinstance(node, dict):
            raise PathError(f"ResultPath {path.text}: {step!r} is not in an object")
        if last:
            node[step] = result
            break
        child = node[step] if (isinstance(step, int) or step in node) else {}
        child = copy.copy(child) if isinstance(child, dict | list) else child
        if not isinstance(child, dict | list):
            raise PathError(f"ResultPath {path.text}: {step!r} holds a {type(child).__name__}")
        node[step] = child
        node = child
    return root


# ------------------------------------------------------------------ payload templates

Intrinsic = Callable[[Any, Any], Any]  # (input, context) -> value


@dataclass(frozen=True)
class Template:
    """A compiled payload template: static values, paths and intrinsic calls."""

    build: Callable[[Any, Any], Any]

    def __call__(self, data: Any, context: Any = None) -> Any:
        return self.build(data, context)


def compile_template(
    value: Any, field: str, compile_intrinsic: Callable[[str, str], Intrinsic]
) -> Template:
    """``Parameters``-like objects: keys ending in ``.$`` are paths or intrinsic functions.
    ValueError (naming ``field`` and the key) for anything not supported."""
    return Template(_compile(value, field, compile_intrinsic))


def _compile(
    value: Any, where: str, compile_intrinsic: Callable[[str, str], Intrinsic]
) -> Callable[[Any, Any], Any]:
    if isinstance(value, dict):
        parts: list[tuple[str, Callable[[Any, Any], Any]]] = []
        for key, item in value.items():
            if key.endswith(".$"):
                name = key[:-2]
                if not isinstance(item, str):
                    raise ValueError(f"{where}.{key}: a .$ field takes a path or function")
                if item.startswith("$"):
                    path = parse_path(item)
                    parts.append((name, _path_getter(path, f"{where}.{key}")))
                else:
                    parts.append((name, compile_intrinsic(item, f"{where}.{key}")))
            else:
                parts.append((key, _compile(item, f"{where}.{key}", compile_intrinsic)))
        return lambda data, ctx: {key: get(data, ctx) for key, get in parts}
    if isinstance(value, list):
        items = [_compile(v, f"{where}[{i}]", compile_intrinsic) for i, v in enumerate(value)]
        return lambda data, ctx: [get(data, ctx) for get in items]
    constant = value
    return lambda data, ctx: (
        copy.deepcopy(constant) if isinstance(constant, dict | list) else constant
    )


def _path_getter(path: Path, where: str) -> Callable[[Any, Any], Any]:
    def get(data: Any, context: Any) -> Any:
        try:
            return read(path, data, context)
        except PathError as exc:
            shown = json.dumps(context if path.context else data)[:1000]
            raise PathError(
                f"The JSONPath '{path.text}' specified for the field '{where}' could not be "
                f"found in the input '{shown}' ({exc})"
            ) from None

    return get
