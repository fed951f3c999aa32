"""The user-owned model config: strict parsing with every problem named."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

import pytest

from mlops.domain.config_document import load_config, parse_config
from mlops.errors import ConfigError

MINIMAL: dict[str, Any] = {
    "name": "mm",
    "task": "regression",
    "target": "y",
    "features": [{"name": "a", "type": "numeric"}, {"name": "c", "type": "categorical"}],
}


def fields(raw: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(raw)
    return [p.field for p in caught.value.details]


def test_the_shipped_default_config_loads() -> None:
    config = load_config()
    assert config.name == "house-prices"
    assert config.task == "regression"
    assert config.target == "price"
    assert "location" in config.feature_names
    sqft = next(f for f in config.features if f.name == "sqft")
    assert (sqft.min, sqft.max) == (200.0, 20000.0)


def test_a_config_file_is_read_from_disk(tmp_path: Path) -> None:
    path = tmp_path / "model.toml"
    path.write_text(
        'name = "churn"\ntask = "classification"\ntarget = "churned"\n'
        '[[features]]\nname = "tenure"\ntype = "numeric"\nmin = 0\n'
    )
    config = load_config(path)
    assert config.task == "classification"
    assert config.features[0].min == 0.0


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"task": "ranking"}, "task"),
        ({"target": ""}, "target"),
        ({"features": []}, "features"),
        ({"colour": "red"}, "colour"),
        ({"estimator": {"type": "svm"}}, "estimator.type"),
        ({"estimator": {"type": "ridge", "param": {}}}, "estimator.param"),
        ({"training": {"holdout_fraction": 0.9}}, "training.holdout_fraction"),
        ({"training": {"seed": "zero"}}, "training.seed"),
        ({"training": {"baseline_bins": 10}}, "training.baseline_bins"),
        ({"parity": {"rtol": "tight"}}, "parity.rtol"),
        ({"features": [{"name": "a", "type": "text"}]}, "features[0].type"),
        ({"features": [{"name": "a", "type": "numeric", "min": 5, "max": 1}]}, "features[0].min"),
        ({"features": [{"name": "c", "type": "categorical", "min": 0}]}, "features[0].min"),
        ({"features": [{"name": "a", "type": "numeric"}] * 2}, "features[1].name"),
        ({"features": [{"name": "y", "type": "numeric"}]}, "target"),
        ({"validation": {"max_category_ratio": 0}}, "validation.max_category_ratio"),
        ({"validation": {"max_category_ratio": -0.5}}, "validation.max_category_ratio"),
        ({"validation": {"max_category_ratio": 1.01}}, "validation.max_category_ratio"),
        ({"validation": {"max_category_ratio": "half"}}, "validation.max_category_ratio"),
        ({"validation": {"max_categories": 1}}, "validation.max_categories"),
        ({"validation": {"max_categories": 100.5}}, "validation.max_categories"),
    ],
)
def test_config_problems_name_the_key(change: dict[str, Any], field: str) -> None:
    assert field in fields({**MINIMAL, **change})


def test_the_category_limits_accept_their_bounds_and_default_to_the_shipped_values() -> None:
    # Given the widest allowed values, When parsed, Then they are kept
    raw = {**MINIMAL, "validation": {"max_category_ratio": 1.0, "max_categories": 2}}
    validation = parse_config(raw).validation
    assert (validation.max_category_ratio, validation.max_categories) == (1.0, 2)
    # And without them the defaults are the shipped config's
    default = parse_config(MINIMAL).validation
    shipped = load_config().validation
    assert (default.max_category_ratio, default.max_categories) == (0.5, 1000)
    assert (shipped.max_category_ratio, shipped.max_categories) == (0.5, 1000)


def test_classification_rejects_a_regression_only_estimator() -> None:
    raw = {**MINIMAL, "task": "classification", "estimator": {"type": "ridge"}}
    assert "estimator.type" in fields(raw)


def test_invalid_toml_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("name = ")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(path)


def test_the_default_file_is_valid_toml_with_only_known_keys() -> None:
    text = (Path(__file__).parents[2] / "layers/core/mlops/defaults/house_prices.toml").read_text()
    config = parse_config(tomllib.loads(text))  # raises on any unknown key
    assert config == load_config()
    assert config.name == "house-prices"
    assert config.feature_names[:2] == ["sqft", "bedrooms"]


def test_drift_thresholds_can_be_set_per_feature() -> None:
    raw = {
        "name": "mm",
        "task": "regression",
        "target": "y",
        "features": [{"name": "a", "type": "numeric"}, {"name": "b", "type": "categorical"}],
        "drift": {"psi_threshold": 0.3, "features": {"a": {"psi_threshold": 0.5}}},
    }
    drift = parse_config(raw).drift
    assert drift.for_feature("a").psi_threshold == 0.5
    assert drift.for_feature("b").psi_threshold == 0.3  # the model-wide value
    assert drift.for_feature("a").js_threshold == drift.js_threshold


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"zzz": {"psi_threshold": 0.5}}, "drift.features.zzz"),
        ({"a": {"min_rows": 10}}, "drift.features.a.min_rows"),
        ({"a": {"psi_threshold": 0}}, "drift.features.a.psi_threshold"),
        ({"a": {"psi_threshold": True}}, "drift.features.a.psi_threshold"),
        ({"a": 0.5}, "drift.features.a"),
    ],
)
def test_a_bad_per_feature_drift_override_is_named(overrides: dict[str, Any], field: str) -> None:
    raw = {
        "name": "mm",
        "task": "regression",
        "target": "y",
        "features": [{"name": "a", "type": "numeric"}],
        "drift": {"features": overrides},
    }
    with pytest.raises(ConfigError) as caught:
        parse_config(raw)
    assert field in [p.field for p in caught.value.details]


@pytest.mark.parametrize(("value", "ok"), [(0, True), (1024, True), (-1, False), (1025, False)])
def test_max_unseen_categories_is_read_from_0_to_1024(value: int, ok: bool) -> None:
    raw = {**MINIMAL, "drift": {"max_unseen_categories": value}}
    if ok:
        assert parse_config(raw).drift.max_unseen_categories == value
    else:
        assert "drift.max_unseen_categories" in fields(raw)
    assert parse_config(MINIMAL).drift.max_unseen_categories == 64  # the default K


def test_column_names_a_csv_can_hold_are_kept_as_written() -> None:
    names = ["mean radius", "od280/od315_of_diluted_wines", "1st floor", "prix (€)", "価格"]
    raw = MINIMAL | {
        "features": [{"name": n, "type": "numeric"} for n in names],
        "target": "class label",
    }
    config = parse_config(raw)
    assert config.feature_names == names
    assert config.target == "class label"


def test_two_columns_that_become_one_model_input_are_refused_naming_both() -> None:
    raw = MINIMAL | {
        "features": [
            {"name": "mean radius", "type": "numeric"},
            {"name": "area", "type": "numeric"},
            {"name": "mean-radius", "type": "numeric"},
        ]
    }
    with pytest.raises(ConfigError) as caught:
        parse_config(raw)
    (problem,) = caught.value.details
    assert problem.field == "features[2].name"
    assert "'mean-radius' and 'mean radius'" in problem.problem


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"features": [{"name": " a", "type": "numeric"}]}, "features[0].name"),
        ({"features": [{"name": "a\tb", "type": "numeric"}]}, "features[0].name"),
        ({"features": [{"name": "", "type": "numeric"}]}, "features[0].name"),
        ({"features": [{"name": "x" * 129, "type": "numeric"}]}, "features[0].name"),
        ({"target": "price "}, "target"),
    ],
)
def test_names_that_cannot_work_are_refused_when_the_config_is_read(
    change: dict[str, Any], field: str
) -> None:
    assert fields(MINIMAL | change) == [field]


def test_a_config_with_canary_steps_survives_its_document_round_trip() -> None:
    # The staged candidate carries to_document(config) to the gate, which parses it back
    from mlops.domain.config_document import load_config, parse_config, to_document

    config = load_config()
    stepped = parse_config(to_document(config) | {"rollout": {"canary_steps": [5, 25, 50]}})
    document = to_document(stepped)
    assert document["rollout"]["canary_steps"] == [5, 25, 50]
    assert parse_config(document) == stepped
    assert parse_config(json.loads(json.dumps(document))) == stepped
