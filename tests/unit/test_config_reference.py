"""The configuration reference is rendered from the config schema: every key documented, with
the default parse_config gives it, so the docs cannot drift from the code."""

from __future__ import annotations

import importlib.util
import re
import tomllib
from dataclasses import Field, dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any, Literal, get_args, get_origin, get_type_hints

import pytest

from mlops.domain.config import ModelConfig
from mlops.domain.config_document import SECTIONS, parse_config
from mlops.domain.field_doc import doc, field_doc
from mlops.domain.schema import Feature
from mlops.errors import ConfigError
from mlops_cli.config_reference import BEGIN, END, documented, render, splice

ROOT = Path(__file__).resolve().parents[2]
TASKS = ("regression", "classification")


def minimal(task: str = "regression", **extra: Any) -> dict[str, Any]:
    return {
        "name": "mm",
        "task": task,
        "target": "y",
        "features": [{"name": "a", "type": "numeric"}],
        **extra,
    }


def schema_classes() -> list[type]:
    """Every dataclass a config is made of, found from ModelConfig's type hints (a new section
    is covered without touching this test)."""
    hints = get_type_hints(ModelConfig)
    sections = [k for k in hints.values() if isinstance(k, type) and is_dataclass(k)]
    return [ModelConfig, Feature, *sections]


SCHEMA_FIELDS = [
    pytest.param(cls, item, id=f"{cls.__name__}.{item.name}")
    for cls in schema_classes()
    for item in fields(cls)
]


def section_classes() -> dict[str, type]:
    hints = get_type_hints(ModelConfig)
    return {
        name: kind for name, kind in hints.items() if isinstance(kind, type) and is_dataclass(kind)
    }


def tables(markdown: str) -> dict[str, dict[str, list[str]]]:
    """The rendered reference read back: heading -> key -> its cells."""
    out: dict[str, dict[str, list[str]]] = {}
    heading = ""
    for line in markdown.splitlines():
        if line.startswith("## "):
            heading = line[3:].strip("`")
            out[heading] = {}
        elif line.startswith("| `"):
            cells = [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]
            out[heading][cells[0].strip("`")] = cells
    return out


def value_of(cell: str) -> Any:
    """A default cell as the value it shows (TOML in code, or ``unset``)."""
    if cell == "unset":
        return None
    return tomllib.loads(f"v = {cell.strip('`')}")["v"]


@pytest.fixture(scope="module")
def reference() -> str:
    return render()


@pytest.mark.parametrize(("cls", "item"), SCHEMA_FIELDS)
def test_every_config_field_says_what_it_means(cls: type, item: Field[Any]) -> None:
    # Given a field of the config schema / Then its metadata documents it
    info = field_doc(item)
    assert info is not None, f"{cls.__name__}.{item.name}: add metadata=doc(...)"
    assert info.text.strip()


@pytest.mark.parametrize(("cls", "item"), SCHEMA_FIELDS)
def test_every_number_says_its_unit(cls: type, item: Field[Any]) -> None:
    kind = get_type_hints(cls)[item.name]
    numeric = {int, float} & {kind, *get_args(kind)}
    info = field_doc(item)
    if numeric and info is not None and info.in_config:
        assert info.unit.strip(), f"{cls.__name__}.{item.name}: say its unit (percent? hours?)"


def test_a_field_without_a_doc_is_refused() -> None:
    # Given a config section whose new field was added without a doc
    @dataclass(frozen=True)
    class Section:
        documented_one: int = field(default=1, metadata=doc("Fine.", unit="rows"))
        forgotten: int = 2

    kept, forgotten = fields(Section)
    assert documented(kept).unit == "rows"
    # When the reference reads it / Then it refuses, naming the field
    with pytest.raises(ValueError, match="forgotten"):
        documented(forgotten)


@pytest.mark.parametrize("task", TASKS)
def test_every_key_shows_the_default_parse_config_gives(task: str, reference: str) -> None:
    # Given a config with only the required keys
    config = parse_config(minimal(task))
    shown = tables(reference)
    # Then every key of every section is in the reference with the value it parsed to
    for section, cls in section_classes().items():
        for item in fields(cls):
            if section == "drift" and item.name == "features":
                assert "[drift.features.<name>]" in shown
                continue
            cells = shown[f"[{section}]"][item.name]
            parsed = getattr(getattr(config, section), item.name)
            if section == "promotion" and item.name == "metric":
                metric = config.promotion.metric_for(task)
                assert f'`"{metric}"` ({task})' in cells[3]
                continue
            if isinstance(parsed, tuple):  # a TOML array (canary_steps)
                parsed = list(parsed)
            assert value_of(cells[3]) == parsed, f"[{section}] {item.name}"


def test_the_reference_covers_every_top_level_key_parse_config_accepts(reference: str) -> None:
    shown = tables(reference)
    top = set(shown["Top level"])
    sections = {h.strip("[]") for h in shown if h.startswith("[") and "<name>" not in h}
    assert top | sections == SECTIONS


def test_feature_keys_are_the_ones_parse_config_accepts(reference: str) -> None:
    keys = set(tables(reference)["[[features]]"])
    assert keys == {"name", "type", "min", "max"}
    # Every listed key is accepted, the learned one (categories) is not a config key
    parse_config(minimal(features=[{"name": "a", "type": "numeric", "min": 0, "max": 1}]))
    with pytest.raises(ConfigError, match="problem"):
        parse_config(minimal(features=[{"name": "a", "type": "numeric", "categories": []}]))


def test_per_feature_drift_keys_are_the_ones_parse_config_accepts(reference: str) -> None:
    section = reference.split("## `[drift.features.<name>]`", 1)[1].split("## ", 1)[0]
    drift = section_classes()["drift"]
    for item in fields(drift):
        info = documented(item)
        if get_type_hints(drift)[item.name] not in (int, float):
            continue
        raw = minimal(drift={"features": {"a": {item.name: 0.3}}})
        if info.per_feature:
            parse_config(raw)
            assert f"`{item.name}`" in section
        else:
            with pytest.raises(ConfigError):
                parse_config(raw)
            assert f"`{item.name}`" not in section


def enumerated_keys() -> list[Any]:
    """Every section key with a fixed set of values: a Literal type, or choices by task."""
    return [
        pytest.param(section, cls, item, id=f"{section}.{item.name}")
        for section, cls in section_classes().items()
        for item in fields(cls)
        if get_origin(get_type_hints(cls)[item.name]) is Literal
        or getattr(field_doc(item), "choices", None)
    ]


@pytest.mark.parametrize(("section", "cls", "item"), enumerated_keys())
def test_listed_values_are_the_ones_parse_config_accepts(
    section: str, cls: type, item: Field[Any]
) -> None:
    kind = get_type_hints(cls)[item.name]
    info = documented(item)
    for task in TASKS:
        allowed = set(get_args(kind)) if info.choices is None else set(info.choices[task])
        others = set().union(*info.choices.values()) - allowed if info.choices else set()
        for value in allowed:
            parse_config(minimal(task, **{section: {item.name: value}}))
        for value in others | {"no-such-value"}:
            with pytest.raises(ConfigError):
                parse_config(minimal(task, **{section: {item.name: value}}))


def test_canary_percent_shows_its_default_unit_and_the_demo_value(reference: str) -> None:
    rollout = tables(reference)["[rollout]"]
    _, kind, unit, default, meaning = rollout["canary_percent"]
    assert (kind, default) == ("number", "`10.0`")
    assert unit.startswith("percent")
    assert "`demo_config.toml`: `30.0`" in meaning
    assert rollout["min_bake_minutes"][2] == "minutes"
    assert rollout["max_bake_hours"][2] == "hours"
    assert tables(reference)["[drift]"]["cooldown_hours"][2] == "hours"


def load_hooks() -> Any:
    spec = importlib.util.spec_from_file_location("mkdocs_hooks", ROOT / "scripts/mkdocs_hooks.py")
    assert spec is not None
    assert spec.loader is not None
    hooks = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hooks)
    return hooks


def test_the_docs_build_renders_the_reference_afresh(reference: str) -> None:
    # Given the page with a stale reference between its markers
    hooks = load_hooks()
    stale = f"# Configuration reference\n\n{BEGIN}\n| `canary_percent` | 5.0 |\n{END}\n"

    class Page:
        class file:  # noqa: N801  (the shape of mkdocs' Page.file)
            src_uri = hooks.PAGE

    # When the docs build renders the page
    built = hooks.on_page_markdown(stale, page=Page())
    # Then it holds this checkout's reference, not the stale copy
    assert reference.strip() in built
    assert "5.0 |" not in built


def test_the_reference_in_the_repository_is_current(reference: str) -> None:
    page = (ROOT / "docs" / "reference" / "configuration.md").read_text()
    assert page == splice(page, reference), (
        "stale: python -m mlops_cli.config_reference --update docs/reference/configuration.md"
    )


def test_a_page_without_its_markers_is_refused(reference: str) -> None:
    with pytest.raises(ValueError, match="must hold"):
        splice(f"# Configuration\n{END}\n{BEGIN}\n", reference)
