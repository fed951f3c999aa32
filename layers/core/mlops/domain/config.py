"""The user-owned model config: features, target, task, estimator, and the options of every
stage of the lifecycle, one frozen dataclass per TOML section.

``mlops.domain.config_document`` reads a TOML file into these, strictly, and writes them back.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from mlops.domain.schema import Feature

Task = Literal["regression", "classification"]
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
    """Our pipeline (``type``), or the user's: ``factory`` (``"module:function"``) in the
    folder ``code`` (relative to the config file; on AWS the template's ``ModelCodeLayer``
    holds it). ``params`` go to the estimator, or to the factory as keyword arguments."""

    type: str = "hist_gradient_boosting"
    params: Mapping[str, Any] = field(default_factory=dict)
    factory: str = ""
    code: str = ""


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
