"""How a config key documents itself: the meaning, unit and allowed values of a dataclass field,
kept in its ``metadata`` next to its default.

``field(default=0.2, metadata=doc("Share of ...", unit="fraction"))``. The configuration
reference (``mlops_cli.config_reference``) is rendered from these, and a test fails for a field
without one, so the reference cannot drift from the code.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import Field, dataclass
from typing import Any

DOC = "doc"  # the metadata key


@dataclass(frozen=True)
class FieldDoc:
    """What the reference says about one key.

    ``unit`` spells out what a number counts (``percent``, ``minutes``, ``fraction``...).
    ``choices``: the allowed values by task (keyed by ``Task``), for a string whose type cannot
    say them (a ``Literal`` type says its own). ``default_by_task``: the default when the
    declared one is empty and the task decides. ``per_feature``: may be overridden in
    ``[drift.features.<name>]``. ``in_config``: False for a field learned from the data, not
    written in the TOML.
    """

    text: str
    unit: str = ""
    choices: Mapping[Any, frozenset[str]] | None = None
    default_by_task: Mapping[Any, str] | None = None
    per_feature: bool = False
    in_config: bool = True


def doc(
    text: str,
    *,
    unit: str = "",
    choices: Mapping[Any, frozenset[str]] | None = None,
    default_by_task: Mapping[Any, str] | None = None,
    per_feature: bool = False,
    in_config: bool = True,
) -> dict[str, FieldDoc]:
    """The ``metadata`` of a documented field."""
    return {
        DOC: FieldDoc(text, unit, choices, default_by_task, per_feature, in_config),
    }


def field_doc(item: Field[Any]) -> FieldDoc | None:
    """The documentation of a dataclass field, or None when it has none."""
    value = item.metadata.get(DOC)
    return value if isinstance(value, FieldDoc) else None
