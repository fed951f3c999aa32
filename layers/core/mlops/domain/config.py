"""The user-owned model config (TOML): features, target, task, estimator, training options.

Parsed strictly: an unknown key or a wrong type fails with a ``ConfigError`` naming it, because a
typo in a config silently falling back to a default is how models get trained wrong.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal, TypeVar

from mlops.domain.schema import Feature
from mlops.errors import ConfigError, Problem

Task = Literal["regression", "classification"]
T = TypeVar("T")
ESTIMATORS: dict[Task, frozenset[str]] = {
    "regression": frozenset(
        {"hist_gradient_boosting", "random_forest", "gradient_boosting", "ridge"}
    ),
    "classification": frozenset(
        {"hist_gradient_boosting", "random_forest", "gradient_boosting", "logistic_regression"}
    ),
}


@dataclass(frozen=True)
class EstimatorConfig:
    type: str = "hist_gradient_boosting"
    params: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TrainingConfig:
    holdout_fraction: float = 0.2
    seed: int = 0
    min_rows: int = 50
    baseline_bins: int = 20


@dataclass(frozen=True)
class ParityConfig:
    """How close onnxruntime must be to scikit-learn for an export to be registered.

    Regression: ``|onnx - sklearn| <= atol + rtol * |sklearn|`` for every row. Trees compare
    in float32 inside ONNX Runtime, so values within float32 rounding of a split threshold can
    take the other branch; ``max_mismatch_fraction`` bounds how many rows may do so.
    Classification: labels equal and probabilities within ``prob_atol``, same fraction rule.
    """

    rtol: float = 1e-4
    atol: float = 1e-6
    prob_atol: float = 1e-4
    max_mismatch_fraction: float = 0.0


@dataclass(frozen=True)
class ModelConfig:
    name: str
    task: Task
    target: str
    features: tuple[Feature, ...]
    estimator: EstimatorConfig = field(default_factory=EstimatorConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    parity: ParityConfig = field(default_factory=ParityConfig)

    @property
    def feature_names(self) -> list[str]:
        return [f.name for f in self.features]


def load_config(path: str | Path | None = None) -> ModelConfig:
    """Read a config file, or the shipped default (house prices) when ``path`` is None."""
    if path is None:
        text = resources.files("mlops.defaults").joinpath("house_prices.toml").read_text()
        source = "default config"
    else:
        try:
            text = Path(path).read_text()
        except OSError as exc:
            raise ConfigError(f"cannot read config {path}: {exc.strerror}") from exc
        source = str(path)
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source} is not valid TOML: {exc}") from exc
    return parse_config(raw)


def parse_config(raw: Mapping[str, Any]) -> ModelConfig:
    problems: list[Problem] = []
    _unknown(
        raw, {"name", "task", "target", "features", "estimator", "training", "parity"}, "", problems
    )
    name = _required(raw, "name", str, problems)
    task = _required(raw, "task", str, problems)
    if task is not None and task not in ESTIMATORS:
        problems.append(Problem("task", f"must be regression or classification, got {task!r}"))
    target = _required(raw, "target", str, problems)
    features = _features(raw.get("features"), problems)
    if target and any(f.name == target for f in features):
        problems.append(Problem("target", f"{target!r} is also listed as a feature"))

    est_raw = _table(raw, "estimator", problems)
    _unknown(est_raw, {"type", "params"}, "estimator.", problems)
    estimator = EstimatorConfig(
        type=str(est_raw.get("type", EstimatorConfig.type)),
        params=dict(est_raw.get("params", {})),
    )
    if task in ESTIMATORS and estimator.type not in ESTIMATORS[task]:
        allowed = ", ".join(sorted(ESTIMATORS[task]))
        problems.append(Problem("estimator.type", f"{estimator.type!r} is not one of: {allowed}"))

    training = _section(raw, "training", TrainingConfig, problems)
    parity = _section(raw, "parity", ParityConfig, problems)
    if not 0.05 <= training.holdout_fraction <= 0.5:
        problems.append(Problem("training.holdout_fraction", "must be between 0.05 and 0.5"))
    if training.baseline_bins < 20:
        problems.append(Problem("training.baseline_bins", "must be at least 20"))

    if problems:
        raise ConfigError(f"{len(problems)} problem(s) in the model config", problems)
    return ModelConfig(
        name=str(name),
        task=task,
        target=str(target),
        features=features,
        estimator=estimator,
        training=training,
        parity=parity,
    )


def _features(raw: Any, problems: list[Problem]) -> tuple[Feature, ...]:
    if not isinstance(raw, list) or not raw:
        problems.append(Problem("features", "expected a non-empty list of [[features]] tables"))
        return ()
    out: list[Feature] = []
    seen: set[str] = set()
    for i, item in enumerate(raw):
        where = f"features[{i}]"
        if not isinstance(item, dict):
            problems.append(Problem(where, "expected a table"))
            continue
        _unknown(item, {"name", "type", "min", "max"}, f"{where}.", problems)
        name, kind = item.get("name"), item.get("type")
        if not isinstance(name, str) or not name:
            problems.append(Problem(f"{where}.name", "expected a non-empty string"))
            continue
        if name in seen:
            problems.append(Problem(f"{where}.name", f"duplicate feature {name!r}"))
        seen.add(name)
        if kind not in ("numeric", "categorical"):
            problems.append(Problem(f"{where}.type", "must be numeric or categorical"))
            continue
        bounds = {k: item.get(k) for k in ("min", "max")}
        for k, v in bounds.items():
            if v is not None and (
                kind != "numeric" or isinstance(v, bool) or not isinstance(v, int | float)
            ):
                problems.append(
                    Problem(f"{where}.{k}", "bounds are numbers, numeric features only")
                )
                bounds[k] = None
        lo, hi = bounds["min"], bounds["max"]
        if lo is not None and hi is not None and lo >= hi:
            problems.append(Problem(f"{where}.min", "must be smaller than max"))
        out.append(
            Feature(
                name=name,
                type=kind,
                min=None if lo is None else float(lo),
                max=None if hi is None else float(hi),
            )
        )
    return tuple(out)


def _section(raw: Mapping[str, Any], key: str, cls: type[T], problems: list[Problem]) -> T:
    table = _table(raw, key, problems)
    defaults = cls()
    fields = {name: getattr(defaults, name) for name in vars(defaults)}
    _unknown(table, set(fields), f"{key}.", problems)
    values: dict[str, Any] = {}
    for name, default in fields.items():
        if name not in table:
            continue
        value = table[name]
        if isinstance(value, bool) or not isinstance(value, type(default) | int):
            problems.append(Problem(f"{key}.{name}", f"expected a {type(default).__name__}"))
            continue
        values[name] = type(default)(value)
    return cls(**values)


def _table(raw: Mapping[str, Any], key: str, problems: list[Problem]) -> Mapping[str, Any]:
    value = raw.get(key, {})
    if not isinstance(value, dict):
        problems.append(Problem(key, "expected a table"))
        return {}
    return value


def _required(raw: Mapping[str, Any], key: str, kind: type, problems: list[Problem]) -> Any:
    value = raw.get(key)
    if not isinstance(value, kind) or (isinstance(value, str) and not value):
        problems.append(Problem(key, f"required, expected a {kind.__name__}"))
        return None
    return value


def _unknown(
    raw: Mapping[str, Any], allowed: set[str], prefix: str, problems: list[Problem]
) -> None:
    problems.extend(Problem(f"{prefix}{k}", "unknown key") for k in sorted(raw.keys() - allowed))
