"""The user-owned model config (TOML): features, target, task, estimator, training options.

Parsed strictly: an unknown key or a wrong type fails with a ``ConfigError`` naming it, because a
typo in a config silently falling back to a default is how models get trained wrong.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any, Literal, TypeVar

from mlops.domain.keys import MODEL_NAME
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

    Regression: ``|onnx - sklearn| <= atol + rtol * max(|sklearn|, median |sklearn|)`` for
    every row (the median over the rows of the case: float32 sums err in proportion to the
    model's output range, not to a prediction near zero). Trees compare
    in float32 inside ONNX Runtime, so values within float32 rounding of a split threshold can
    take the other branch; ``max_mismatch_fraction`` bounds how many rows may do so.
    Classification: labels equal and probabilities within ``prob_atol``, same fraction rule.
    """

    rtol: float = 1e-4
    atol: float = 1e-6
    prob_atol: float = 1e-4
    max_mismatch_fraction: float = 0.0


@dataclass(frozen=True)
class ValidationConfig:
    """What training data must look like before anything is trained on it.

    ``max_bytes`` bounds the object as stored and its decompressed size (a gzip bomb is
    refused). A row with an empty cell is dropped and counted while every column's missing
    rate stays within ``max_missing_rate``; above it the file is rejected. Exact duplicate
    rows above ``max_duplicate_rate`` reject the file (below, they are reported): by default
    only reported, because rows of a few discrete features repeat by nature; a config whose
    rows are unique by nature sets a bar (the shipped one: 0.5, a file pasted twice). A class
    with fewer than ``min_class_rows`` rows rejects a classification file: it cannot be both
    learned and measured. A categorical feature with more distinct values than
    ``max_category_ratio`` of the rows used rejects the file: with fewer rows per value than
    1 / ratio on average (2 at 0.5) it identifies rows rather than describing them. So does one
    with more than ``max_categories`` values: one-hot encoding adds a column per value, and the
    fit's time and memory grow with rows x columns (a value per row made fits of 1,500 to 3,000
    rows take minutes).
    """

    max_bytes: int = 256 * 1024 * 1024
    max_missing_rate: float = 0.05
    max_duplicate_rate: float = 1.0
    min_class_rows: int = 5
    max_category_ratio: float = 0.5
    max_categories: int = 1000


# Metrics where a smaller value is better; every other metric is better when greater.
LOWER_IS_BETTER = frozenset({"rmse", "mae", "mape", "log_loss"})
DEFAULT_METRIC: dict[Task, str] = {"regression": "rmse", "classification": "f1_macro"}
METRICS: dict[Task, frozenset[str]] = {
    "regression": frozenset({"rmse", "mae", "r2", "mape"}),
    "classification": frozenset({"accuracy", "f1_macro", "log_loss", "roc_auc"}),
}


@dataclass(frozen=True)
class PromotionConfig:
    """The champion/challenger gate (DESIGN §6): evidence the uploader does not control, a
    paired test, and MLflow ``MetricThreshold`` conditions on top.

    Both models are scored on the same rows of up to three sets: the **holdout** drawn from
    the new data; recent **traffic** (labeled production captures from the last
    ``reference_days``, the newest ``reference_rows``, never trained on); the **golden** set
    pinned with the production version (its own holdout, at most ``reference_rows``). A set of
    fewer than ``min_reference_rows`` rows is not used, and the report says so. On each set the
    per-row losses of both models are compared by a paired bootstrap at ``confidence``: the
    relative change of the metric and its interval.

    - **rejected**: on the holdout the whole interval is worse, or on the traffic set it is
      worse than ``max_reference_degradation`` (relative); or ``threshold`` (an absolute bound
      every model must meet, ``>=`` or ``<=`` by the metric's direction) is not met.
    - **held** (registered, may only run as a shadow until live labels clear it): the labels
      disagree with production (``max_label_error_ratio``: production's error on the new rows
      over its error on its own holdout; MAE for regression, error rate for classification,
      whose bar is never below a 5 % error), or with no traffic set the golden set shows the
      challenger worse than ``max_reference_degradation`` (the world may have moved since the
      golden set was drawn: live labels decide).
    - **passed**: the whole holdout interval is better, and the improvement (point values)
      reaches ``min_absolute_change`` and ``min_relative_change`` (MLflow semantics).
    - **inconclusive** otherwise (equivalent, or too few rows to tell): started as
      ``on_inconclusive`` (``shadow``, ``canary``, or ``manual``: registered as a candidate
      for ``mlops promote V --rollout ...``).

    A first model (no champion) must beat the no-skill model (the mean or the majority class)
    on the whole interval and by the margins, else it is rejected. ``mode = "manual"``
    registers a passing challenger as a candidate and leaves the promotion to an operator.
    """

    metric: str = ""
    min_relative_change: float = 0.01
    min_absolute_change: float = 0.0
    threshold: float | None = None
    mode: Literal["auto", "manual"] = "auto"
    confidence: float = 0.95
    on_inconclusive: Literal["shadow", "canary", "manual"] = "shadow"
    reference_days: int = 3
    reference_rows: int = 5000
    min_reference_rows: int = 100
    max_reference_degradation: float = 0.05
    max_label_error_ratio: float = 5.0

    def metric_for(self, task: Task) -> str:
        return self.metric or DEFAULT_METRIC[task]

    def greater_is_better(self, task: Task) -> bool:
        return self.metric_for(task) not in LOWER_IS_BETTER


@dataclass(frozen=True)
class RetrainingConfig:
    """Which rows the retrainer trains on (the holdout always comes from the new data).

    ``training_set``: ``new_object`` (the uploaded object alone) or ``window`` (it and the
    ``window_objects - 1`` most recent other valid objects under the training prefix).
    ``include_feedback`` adds labeled production traffic: captures joined with their feedback
    over the last ``feedback_days`` days.
    """

    training_set: Literal["new_object", "window"] = "new_object"
    window_objects: int = 3
    include_feedback: bool = False
    feedback_days: int = 30


MAX_UNSEEN_CATEGORIES = 1024  # the largest [drift] max_unseen_categories


@dataclass(frozen=True)
class DriftConfig:
    """When live traffic has moved away from the training data (DESIGN §5; Evidently's rules).

    Numeric features: PSI on the baseline's bins (``psi_warn`` / ``psi_threshold``) and the
    Wasserstein distance winsorised at the baseline's outer edges, over the training standard
    deviation (``wasserstein_threshold``). Categorical features: Jensen-Shannon distance
    (``js_threshold``) or a share of categories never seen in training above
    ``unseen_threshold``. PSI, the distance and JS count only when the test on the same counts
    (chi-square; KS for the distance) gives a p-value under ``ks_pvalue``: a change too small
    for the window's size to tell from sampling noise is no drift. A window of at most
    ``small_sample_rows`` rows is read from the raw captures. Any feature: a missing-rate increase
    above ``missing_rate_threshold``. The dataset drifts when at least ``drift_share`` of the
    features drift. Below ``min_rows`` rows a window is not judged; after a retrain request
    another waits ``cooldown_hours``. Live quality breaches when the gate metric is worse than
    the version's holdout value by more than ``quality_tolerance`` (relative), over at least
    ``min_labels`` labels joined within ``label_delay_hours`` of their prediction. Sketches
    keep at most ``max_unseen_categories`` unseen categories by name per feature (the rest as
    one count, so their size does not follow what clients send; 0 to 1,024).
    """

    psi_warn: float = 0.1
    psi_threshold: float = 0.25
    wasserstein_threshold: float = 0.1
    ks_pvalue: float = 0.05
    small_sample_rows: int = 1000
    js_threshold: float = 0.1
    unseen_threshold: float = 0.05
    missing_rate_threshold: float = 0.05
    drift_share: float = 0.5
    min_rows: int = 200
    cooldown_hours: float = 6.0
    quality_tolerance: float = 0.2
    min_labels: int = 50
    label_delay_hours: float = 72.0
    max_unseen_categories: int = 64
    # Per-feature thresholds: ``[drift.features.sqft] psi_threshold = 0.4`` (TOML).
    features: Mapping[str, Mapping[str, float]] = field(default_factory=dict)

    def for_feature(self, name: str) -> DriftConfig:
        """The thresholds that judge ``name``: the defaults with its overrides."""
        changes: dict[str, Any] = dict(self.features.get(name) or {})
        return replace(self, **changes) if changes else self


@dataclass(frozen=True)
class RolloutConfig:
    """How a promoted challenger reaches production (DESIGN §6).

    ``canary`` (the default): it answers ``canary_percent`` of requests (sticky per
    ``request_id``). ``shadow``: the candidate scores every request, its answers are captured,
    never returned. ``direct``: the gate moves production at once, on the gate's evidence
    alone (the uploaded holdout and the reference sets): an explicit choice, since no live
    label ever checks the candidate before it answers every user. While a rollout bakes, the
    evaluator compares candidate with production on live traffic and promotes or rolls back:

    - breach (roll back at once): candidate scoring error rate above ``max_error_rate``;
      p95 latency above ``max_latency_ratio`` x production's and ``latency_slack_ms`` more;
      live quality worse than production by more than ``max_quality_degradation`` (relative)
      with confidence ``confidence`` (bootstrap interval, at least ``min_labels`` labeled
      predictions per variant); optionally prediction disagreement (shadow) above
      ``max_disagreement`` or prediction PSI between the variants above ``max_prediction_psi``.
    - promote: no breach after ``min_bake_minutes`` and ``min_requests`` candidate requests,
      and live quality shown not worse than the tolerance (unless ``require_labels = false``).
    - after ``max_bake_hours`` without a verdict: ``on_inconclusive`` (rollback or promote).
    """

    mode: Literal["direct", "shadow", "canary"] = "canary"
    canary_percent: float = 10.0
    min_bake_minutes: float = 60.0
    max_bake_hours: float = 24.0
    min_requests: int = 200
    min_labels: int = 30
    require_labels: bool = True
    confidence: float = 0.95
    max_quality_degradation: float = 0.05
    max_error_rate: float = 0.01
    max_latency_ratio: float = 2.0
    latency_slack_ms: float = 5.0
    max_disagreement: float | None = None
    max_prediction_psi: float | None = None
    on_inconclusive: Literal["rollback", "promote"] = "rollback"


@dataclass(frozen=True)
class ModelConfig:
    name: str
    task: Task
    target: str
    features: tuple[Feature, ...]
    estimator: EstimatorConfig = field(default_factory=EstimatorConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    parity: ParityConfig = field(default_factory=ParityConfig)
    validation: ValidationConfig = field(default_factory=ValidationConfig)
    promotion: PromotionConfig = field(default_factory=PromotionConfig)
    retraining: RetrainingConfig = field(default_factory=RetrainingConfig)
    drift: DriftConfig = field(default_factory=DriftConfig)
    rollout: RolloutConfig = field(default_factory=RolloutConfig)

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


def _rollout(raw: Mapping[str, Any], problems: list[Problem]) -> RolloutConfig:
    rollout = _section(raw, "rollout", RolloutConfig, problems)
    if rollout.mode not in ("direct", "shadow", "canary"):
        problems.append(Problem("rollout.mode", "must be direct, shadow or canary"))
    if not 0.01 <= rollout.canary_percent <= 100.0:  # below one request in 10,000: none
        problems.append(Problem("rollout.canary_percent", "must be from 0.01 to 100"))
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
        return {k: v for k, v in vars(obj).items() if v is not None}

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
        "estimator": {"type": config.estimator.type, "params": dict(config.estimator.params)},
        "training": section(config.training),
        "parity": section(config.parity),
        "validation": section(config.validation),
        "promotion": section(config.promotion),
        "retraining": section(config.retraining),
        "drift": section(config.drift)
        | {"features": {k: dict(v) for k, v in config.drift.features.items()}},
        "rollout": section(config.rollout),
    }
