"""ONNX input names derived from the user's column names, and the names that cannot work.

Users keep their own column names everywhere they see them (config, API, captures, reports,
feedback). Only the ONNX graph gets derived names: skl2onnx rewrites a name with a space or a
``/`` in its own way, so we rename the graph's inputs to names we derive here and the serving
side feeds them through the same function. Two columns whose derived names collide are refused
when the config is read, naming both, instead of after a fit.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable

from mlops.errors import Problem

MAX_NAME_CHARS = 128  # a column name, not a paragraph: keeps keys, reports and metrics bounded
_UNSAFE = re.compile(r"[^0-9A-Za-z_]")


def input_name(name: str) -> str:
    """The ONNX input name for column ``name``: ASCII letters, digits and ``_``, never starting
    with a digit; accents are dropped (``catégorie`` -> ``categorie``), other characters become
    ``_``. A name with no ASCII letter or digit at all (``価格``) gets a stable digest."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    derived = _UNSAFE.sub("_", ascii_name)
    if not any(c.isalnum() for c in derived):
        return "c_" + hashlib.blake2b(name.encode(), digest_size=6).hexdigest()
    return "_" + derived if derived[0].isdigit() else derived


def metric_dimension(name: str) -> str:
    """``name`` as a CloudWatch dimension value, which must be ASCII (else the whole EMF
    document is dropped): the name itself when it is, its input name otherwise."""
    return name if name.isascii() else input_name(name)


def name_problem(name: str) -> str | None:
    """Why ``name`` cannot be a column name, or None. A CSV header can hold anything, but a
    name that is blank, padded, multi-line or unbounded is a mistake, not a column."""
    if not name.strip():
        return "expected a non-empty name"
    if name != name.strip():
        return f"{name!r} starts or ends with whitespace (CSV headers are matched exactly)"
    if any(unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") for c in name):
        return f"{name!r} holds a control character"
    if len(name) > MAX_NAME_CHARS:
        return f"{len(name)} characters; at most {MAX_NAME_CHARS}"
    return None


def collisions(names: Iterable[tuple[str, str]]) -> list[Problem]:
    """One problem per ``(where, name)`` whose derived input name another name already has."""
    first: dict[str, str] = {}
    problems: list[Problem] = []
    for where, name in names:
        derived = input_name(name)
        other = first.setdefault(derived, name)
        if other != name:
            problems.append(
                Problem(
                    where,
                    f"{name!r} and {other!r} both become the model input {derived!r}: "
                    "rename one of the two columns",
                )
            )
    return problems
