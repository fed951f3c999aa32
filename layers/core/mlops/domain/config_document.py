"""The model config as a TOML document: read strictly, and written back as the mapping read.

Parsed strictly: an unknown key or a wrong type fails with a ``ConfigError`` naming it, because a
typo in a config silently falling back to a default is how models get trained wrong.
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Mapping
from dataclasses import replace
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

from mlops.domain.config import (
    ESTIMATORS,
    MAX_UNSEEN_CATEGORIES,
    METRICS,
    DriftConfig,
    EstimatorConfig,
    ModelConfig,
    ParityConfig,
    PromotionConfig,
    RetrainingConfig,
    RolloutConfig,
    TrainingConfig,
    ValidationConfig,
)
from mlops.domain.input_names import collisions, name_problem
from mlops.domain.keys import MODEL_NAME
from mlops.domain.schema import Feature
from mlops.errors import ConfigError, Problem

T = TypeVar("T")


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


SECTIONS = {
    "name",
    "task",
    "target",
    "features",
    "estimator",
    "training",
    "parity",
    "validation",
    "promotion",
    "retraining",
    "drift",
    "rollout",
}


def parse_config(raw: Mapping[str, Any]) -> ModelConfig:
    problems: list[Problem] = []
    _unknown(raw, SECTIONS, "", problems)
    name = _required(raw, "name", str, problems)
    if name is not None and not MODEL_NAME.fullmatch(name):  # it becomes part of S3 keys
        problems.append(Problem("name", "2-63 of a-z, 0-9, '-', not '-' first (ModelName's rule)"))
    task = _required(raw, "task", str, problems)
    if task is not None and task not in ESTIMATORS:
        problems.append(Problem("task", f"must be regression or classification, got {task!r}"))
    target = _required(raw, "target", str, problems)
    features = _features(raw.get("features"), problems)
    if isinstance(target, str) and (problem := name_problem(target)):
        problems.append(Problem("target", problem))
    if target and any(f.name == target for f in features):
        problems.append(Problem("target", f"{target!r} is also listed as a feature"))

    estimator = _estimator(raw, task, problems)

    training = _section(raw, "training", TrainingConfig, problems)
    parity = _section(raw, "parity", ParityConfig, problems)
    if not 0.05 <= training.holdout_fraction <= 0.5:
        problems.append(Problem("training.holdout_fraction", "must be between 0.05 and 0.5"))
    if training.baseline_bins < 20:
        problems.append(Problem("training.baseline_bins", "must be at least 20"))
    if training.engine not in ("auto", "lambda", "sagemaker"):
        problems.append(Problem("training.engine", "must be auto, lambda or sagemaker"))
    for limit in ("max_lambda_bytes", "max_job_bytes"):
        if getattr(training, limit) < 1:
            problems.append(Problem(f"training.{limit}", "must be at least 1"))
    validation, promotion, retraining, drift = _policies(raw, task, problems)
    for name in sorted(set(drift.features) - {f.name for f in features}):
        problems.append(Problem(f"drift.features.{name}", "not a feature of this model"))
    rollout = _rollout(raw, problems)

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
        validation=validation,
        promotion=promotion,
        retraining=retraining,
        drift=drift,
        rollout=rollout,
    )


FACTORY = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*")


def _estimator(raw: Mapping[str, Any], task: Any, problems: list[Problem]) -> EstimatorConfig:
    """Ours (``type``) or the user's (``factory`` in the folder ``code``), never both."""
    est_raw = _table(raw, "estimator", problems)
    _unknown(est_raw, {"type", "params", "factory", "code"}, "estimator.", problems)
    for key in ("type", "factory", "code"):
        if key in est_raw and not isinstance(est_raw[key], str):
            problems.append(Problem(f"estimator.{key}", "expected a string"))
    params = est_raw.get("params", {})
    if not isinstance(params, dict):
        problems.append(Problem("estimator.params", "expected a table"))
        params = {}
    factory, code = str(est_raw.get("factory", "")), str(est_raw.get("code", ""))
    estimator = EstimatorConfig(
        type=str(est_raw.get("type", EstimatorConfig.type)),
        params=dict(params),
        factory=factory,
        code=code,
    )
    if "factory" in est_raw:
        if not FACTORY.fullmatch(factory):
            problems.append(Problem("estimator.factory", 'expected "module:function"'))
        if "type" in est_raw:
            problems.append(Problem("estimator.type", "not with factory: the factory's model"))
        if not code.strip():
            problems.append(
                Problem("estimator.code", "required with factory: the folder of its module")
            )
        return estimator
    if "code" in est_raw:
        problems.append(Problem("estimator.code", "only with factory"))
    if task in ESTIMATORS and estimator.type not in ESTIMATORS[task]:
        allowed = ", ".join(sorted(ESTIMATORS[task]))
        problems.append(Problem("estimator.type", f"{estimator.type!r} is not one of: {allowed}"))
    return estimator


def _rollout(raw: Mapping[str, Any], problems: list[Problem]) -> RolloutConfig:
    rollout = _section(raw, "rollout", RolloutConfig, problems)
    if rollout.mode not in ("direct", "shadow", "canary"):
        problems.append(Problem("rollout.mode", "must be direct, shadow or canary"))
    if not 0.01 <= rollout.canary_percent <= 100.0:  # below one request in 10,000: none
        problems.append(Problem("rollout.canary_percent", "must be from 0.01 to 100"))
    _canary_steps(rollout.canary_steps, problems)
    if rollout.on_inconclusive not in ("rollback", "promote"):
        problems.append(Problem("rollout.on_inconclusive", "must be rollback or promote"))
    if not 0.5 <= rollout.confidence < 1.0:
        problems.append(Problem("rollout.confidence", "must be from 0.5 to below 1"))
    if not 0.0 <= rollout.max_error_rate <= 1.0:
        problems.append(Problem("rollout.max_error_rate", "must be from 0 to 1"))
    if rollout.max_latency_ratio < 1.0:
        problems.append(Problem("rollout.max_latency_ratio", "must be at least 1"))
    for name in ("min_bake_minutes", "latency_slack_ms", "max_quality_degradation"):
        if getattr(rollout, name) < 0:
            problems.append(Problem(f"rollout.{name}", "must not be negative"))
    if rollout.max_bake_hours * 60 < rollout.min_bake_minutes or rollout.max_bake_hours <= 0:
        problems.append(
            Problem("rollout.max_bake_hours", "must be positive and at least min_bake_minutes")
        )
    for name in ("min_requests", "min_labels"):
        if getattr(rollout, name) < 1:
            problems.append(Problem(f"rollout.{name}", "must be at least 1"))
    for name in ("max_disagreement", "max_prediction_psi"):
        value = getattr(rollout, name)
        if value is not None and value < 0:
            problems.append(Problem(f"rollout.{name}", "must not be negative"))
    return rollout


def _canary_steps(steps: tuple[float, ...], problems: list[Problem]) -> None:
    """A ramp's shares: each in (0, 100] (from 0.01, as a canary's share), strictly rising."""
    for i, step in enumerate(steps):
        if not 0.01 <= step <= 100.0:
            problems.append(
                Problem(
                    f"rollout.canary_steps[{i}]", f"must be from 0.01 to 100 percent, got {step:g}"
                )
            )
        if i and step <= steps[i - 1]:
            problems.append(
                Problem(
                    f"rollout.canary_steps[{i}]",
                    f"must be above the step before ({steps[i - 1]:g}): steps rise, got {step:g}",
                )
            )


def _policies(
    raw: Mapping[str, Any], task: Any, problems: list[Problem]
) -> tuple[ValidationConfig, PromotionConfig, RetrainingConfig, DriftConfig]:
    """The lifecycle sections: data validation, promotion gate, training set, drift."""
    validation = _section(raw, "validation", ValidationConfig, problems)
    for rate in ("max_missing_rate", "max_duplicate_rate"):
        if not 0.0 <= getattr(validation, rate) <= 1.0:
            problems.append(Problem(f"validation.{rate}", "must be from 0 to 1"))
    if validation.max_bytes < 1:
        problems.append(Problem("validation.max_bytes", "must be positive"))
    if not 0.0 < validation.max_category_ratio <= 1.0:
        problems.append(Problem("validation.max_category_ratio", "must be above 0 and at most 1"))
    if validation.max_categories < 2:
        problems.append(Problem("validation.max_categories", "must be at least 2"))
    promotion = _promotion(raw, task, problems)
    retraining = _section(raw, "retraining", RetrainingConfig, problems)
    if retraining.training_set not in ("new_object", "window"):
        problems.append(Problem("retraining.training_set", "must be new_object or window"))
    if retraining.window_objects < 1:
        problems.append(Problem("retraining.window_objects", "must be at least 1"))
    if retraining.feedback_days < 1:
        problems.append(Problem("retraining.feedback_days", "must be at least 1"))
    drift_raw = dict(_table(raw, "drift", problems))
    per_feature = drift_raw.pop("features", {})
    drift = _section({"drift": drift_raw}, "drift", DriftConfig, problems)
    drift = replace(drift, features=_drift_overrides(per_feature, drift, problems))
    for share in ("ks_pvalue", "js_threshold", "unseen_threshold", "missing_rate_threshold"):
        if not 0.0 < getattr(drift, share) <= 1.0:
            problems.append(Problem(f"drift.{share}", "must be above 0 and at most 1"))
    if not 0.0 < drift.drift_share <= 1.0:
        problems.append(Problem("drift.drift_share", "must be above 0 and at most 1"))
    if not 0 < drift.psi_warn <= drift.psi_threshold:
        problems.append(Problem("drift.psi_warn", "must be positive and at most psi_threshold"))
    for positive in ("wasserstein_threshold", "quality_tolerance", "label_delay_hours"):
        if getattr(drift, positive) <= 0:
            problems.append(Problem(f"drift.{positive}", "must be positive"))
    for count in ("small_sample_rows", "min_rows", "min_labels"):
        if getattr(drift, count) < 1:
            problems.append(Problem(f"drift.{count}", "must be at least 1"))
    if drift.cooldown_hours < 0:
        problems.append(Problem("drift.cooldown_hours", "must not be negative"))
    if not 0 <= drift.max_unseen_categories <= MAX_UNSEEN_CATEGORIES:
        problems.append(Problem("drift.max_unseen_categories", "must be from 0 to 1,024"))
    return validation, promotion, retraining, drift


def _promotion(raw: Mapping[str, Any], task: Any, problems: list[Problem]) -> PromotionConfig:
    promotion = _section(raw, "promotion", PromotionConfig, problems)
    if task in METRICS and promotion.metric and promotion.metric not in METRICS[task]:
        allowed = ", ".join(sorted(METRICS[task]))
        problems.append(
            Problem("promotion.metric", f"{promotion.metric!r} is not one of: {allowed}")
        )
    if promotion.mode not in ("auto", "manual"):
        problems.append(Problem("promotion.mode", "must be auto or manual"))
    if promotion.on_inconclusive not in ("shadow", "canary", "manual"):
        problems.append(Problem("promotion.on_inconclusive", "must be shadow, canary or manual"))
    if not 0.5 <= promotion.confidence < 1.0:
        problems.append(Problem("promotion.confidence", "must be from 0.5 to below 1"))
    for name in ("reference_days", "reference_rows", "min_reference_rows"):
        if getattr(promotion, name) < 1:
            problems.append(Problem(f"promotion.{name}", "must be at least 1"))
    if promotion.min_reference_rows > promotion.reference_rows:
        problems.append(Problem("promotion.min_reference_rows", "must be at most reference_rows"))
    if promotion.max_reference_degradation < 0:
        problems.append(Problem("promotion.max_reference_degradation", "must not be negative"))
    if promotion.max_label_error_ratio <= 1:
        problems.append(Problem("promotion.max_label_error_ratio", "must be above 1"))
    return promotion


def _drift_overrides(
    raw: Any, defaults: DriftConfig, problems: list[Problem]
) -> dict[str, dict[str, float]]:
    """``[drift.features.<name>]`` tables: per-feature thresholds (the per-feature ones only;
    window, cool-down and quality settings are for the whole model)."""
    per_feature = {
        "psi_warn", "psi_threshold", "wasserstein_threshold", "ks_pvalue", "js_threshold",
        "unseen_threshold", "missing_rate_threshold",
    }  # fmt: skip
    if not isinstance(raw, dict):
        problems.append(Problem("drift.features", "expected a table of tables"))
        return {}
    out: dict[str, dict[str, float]] = {}
    for name, table in raw.items():
        where = f"drift.features.{name}"
        if not isinstance(table, dict):
            problems.append(Problem(where, "expected a table"))
            continue
        _unknown(table, per_feature, f"{where}.", problems)
        values = {}
        for key, value in table.items():
            if key not in per_feature:
                continue
            if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
                problems.append(Problem(f"{where}.{key}", "expected a positive number"))
                continue
            values[key] = float(value)
        out[str(name)] = values
    return out


def _features(raw: Any, problems: list[Problem]) -> tuple[Feature, ...]:
    if not isinstance(raw, list) or not raw:
        problems.append(Problem("features", "expected a non-empty list of [[features]] tables"))
        return ()
    out: list[Feature] = []
    seen: set[str] = set()
    named: list[tuple[str, str]] = []
    for i, item in enumerate(raw):
        where = f"features[{i}]"
        if not isinstance(item, dict):
            problems.append(Problem(where, "expected a table"))
            continue
        _unknown(item, {"name", "type", "min", "max"}, f"{where}.", problems)
        name, kind = item.get("name"), item.get("type")
        if not isinstance(name, str):
            problems.append(Problem(f"{where}.name", "expected a non-empty string"))
            continue
        if problem := name_problem(name):
            problems.append(Problem(f"{where}.name", problem))
            continue
        if name in seen:
            problems.append(Problem(f"{where}.name", f"duplicate feature {name!r}"))
        seen.add(name)
        named.append((f"{where}.name", name))
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
    # Any name a CSV can hold works, but two that derive the same model input cannot.
    problems.extend(collisions(named))
    return tuple(out)


def _section(raw: Mapping[str, Any], key: str, cls: type[T], problems: list[Problem]) -> T:
    table = _table(raw, key, problems)
    defaults = cls()
    fields = {
        name: getattr(defaults, name)
        for name in vars(defaults)
        if not isinstance(getattr(defaults, name), Mapping)  # tables are parsed by their owner
    }
    _unknown(table, set(fields), f"{key}.", problems)
    values: dict[str, Any] = {}
    for name, default in fields.items():
        if name not in table:
            continue
        value = table[name]
        if isinstance(default, tuple):  # a list of finite numbers (canary_steps)
            numbers = _numbers(value)
            if numbers is None:
                problems.append(Problem(f"{key}.{name}", "expected a list of finite numbers"))
            else:
                values[name] = numbers
            continue
        # An optional number (default None) takes any number; str and bool fields their own.
        kind: type = float if default is None else type(default)
        if kind in (str, bool):
            ok = isinstance(value, kind)
        else:
            # TOML has nan and inf: a threshold of nan silently disables its check.
            ok = (
                not isinstance(value, bool)
                and isinstance(value, int | float)
                and (kind is float or isinstance(value, kind))
                and math.isfinite(value)
            )
        if not ok:
            what = "a finite number" if kind in (int, float) else f"a {kind.__name__}"
            problems.append(Problem(f"{key}.{name}", f"expected {what}"))
            continue
        values[name] = kind(value)
    return cls(**values)


def _numbers(value: Any) -> tuple[float, ...] | None:
    """A TOML array of finite numbers as floats (None: it is not one)."""
    if not isinstance(value, list):
        return None
    if not all(
        not isinstance(v, bool) and isinstance(v, int | float) and math.isfinite(v) for v in value
    ):
        return None
    return tuple(float(v) for v in value)


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


def to_document(config: ModelConfig) -> dict[str, Any]:
    """The config as the raw mapping ``parse_config`` reads (JSON-safe): how a staged candidate
    carries the exact config it was trained with to the gate, and what lineage hashes."""

    def section(obj: Any) -> dict[str, Any]:
        # Tuples (canary_steps) as lists: what TOML and JSON give parse_config.
        return {
            k: list(v) if isinstance(v, tuple) else v for k, v in vars(obj).items() if v is not None
        }

    features = []
    for f in config.features:
        item: dict[str, Any] = {"name": f.name, "type": f.type}
        item |= {k: v for k, v in (("min", f.min), ("max", f.max)) if v is not None}
        features.append(item)
    return {
        "name": config.name,
        "task": config.task,
        "target": config.target,
        "features": features,
        "estimator": estimator_document(config),
        "training": section(config.training),
        "parity": section(config.parity),
        "validation": section(config.validation),
        "promotion": section(config.promotion),
        "retraining": section(config.retraining),
        "drift": section(config.drift)
        | {"features": {k: dict(v) for k, v in config.drift.features.items()}},
        "rollout": section(config.rollout),
    }


def estimator_document(config: ModelConfig) -> dict[str, Any]:
    """``[estimator]`` as read: ``type`` for ours, ``factory`` and ``code`` for the user's."""
    estimator = config.estimator
    if estimator.factory:
        return {
            "factory": estimator.factory,
            "code": estimator.code,
            "params": dict(estimator.params),
        }
    return {"type": estimator.type, "params": dict(estimator.params)}
