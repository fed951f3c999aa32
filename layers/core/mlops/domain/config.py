"""The user-owned model config: features, target, task, estimator, and the options of every
stage of the lifecycle, one frozen dataclass per TOML section.

``mlops.domain.config_document`` reads a TOML file into these, strictly, and writes them back.
Every field says what it means in its ``metadata`` (``mlops.domain.field_doc``): the
configuration reference is rendered from it. Over 600 lines for that reason: one idea (the
config's shape), each key documented where it is declared.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from mlops.domain.field_doc import doc
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

    type: str = field(
        default="hist_gradient_boosting",
        metadata=doc("The scikit-learn estimator the pipeline ends with.", choices=ESTIMATORS),
    )
    params: Mapping[str, Any] = field(
        default_factory=dict,
        metadata=doc(
            "Keyword arguments of the scikit-learn estimator, passed as they are, e.g. "
            "`{ max_iter = 200, learning_rate = 0.08 }`; with `factory`, the factory's."
        ),
    )
    factory: str = field(
        default="",
        metadata=doc(
            'Your own scikit-learn pipeline instead of `type`: `"module:function"` in the '
            "`code` folder, called as `function(config, **params)`; it returns an unfitted "
            "estimator or `Pipeline` taking the config's columns by position "
            "(`mlops.domain.model_code.columns`). Empty: our pipeline."
        ),
    )
    code: str = field(
        default="",
        metadata=doc(
            "The folder holding the `factory`'s module, relative to the config file (on AWS the "
            "template's `ModelCodeLayer` is built from it: `make build MODEL_CODE=path`). "
            "Required with `factory`."
        ),
    )


@dataclass(frozen=True)
class TrainingConfig:
    holdout_fraction: float = field(
        default=0.2,
        metadata=doc(
            "Share of the new data held out from training; both models are scored on it "
            "(0.05 to 0.5).",
            unit="fraction (0.2 = 20 %)",
        ),
    )
    seed: int = field(default=0, metadata=doc("Seed of the train/holdout split.", unit="seed"))
    min_rows: int = field(
        default=50, metadata=doc("A training file with fewer rows is rejected.", unit="rows")
    )
    baseline_bins: int = field(
        default=20,
        metadata=doc(
            "Quantile bins per numeric feature in the training baseline, the reference drift "
            "is measured against (at least 20).",
            unit="bins",
        ),
    )
    engine: Literal["auto", "lambda", "sagemaker"] = field(
        default="auto",
        metadata=doc(
            "Where a retrain trains: `lambda` in the retrainer function; `sagemaker` in a "
            "SageMaker training job started by the retrainer (AWS's scikit-learn image, our "
            "entry point); `auto`: SageMaker when the uploaded object is larger than "
            "`max_lambda_bytes`, else Lambda."
        ),
    )
    max_lambda_bytes: int = field(
        default=100 * 1024 * 1024,
        metadata=doc(
            "With `engine = auto`: the largest upload trained in the retrainer function (its "
            "3,008 MB trains about 2.4M rows, about 118 MB of CSV); one byte more goes to "
            "SageMaker.",
            unit="bytes (104857600 = 100 MiB)",
        ),
    )
    max_job_bytes: int = field(
        default=20 * 1024 * 1024 * 1024,
        metadata=doc(
            "Largest training file a SageMaker training job accepts, as stored and "
            "decompressed (`validation.max_bytes` bounds the Lambda path).",
            unit="bytes (21474836480 = 20 GiB)",
        ),
    )


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

    rtol: float = field(
        default=1e-4,
        metadata=doc(
            "Regression: relative tolerance, against the larger of the row's scikit-learn "
            "prediction and the median magnitude of the case's predictions.",
            unit="relative (1e-4 = 0.01 %)",
        ),
    )
    atol: float = field(
        default=1e-6,
        metadata=doc("Regression: absolute tolerance.", unit="the target's units"),
    )
    prob_atol: float = field(
        default=1e-4,
        metadata=doc(
            "Classification: every class probability within this of scikit-learn's "
            "(and the labels equal).",
            unit="probability",
        ),
    )
    max_mismatch_fraction: float = field(
        default=0.0,
        metadata=doc(
            "Share of a case's rows allowed outside the tolerance (a tree's float32 threshold "
            "can send a value on a split to the other branch).",
            unit="fraction (0.01 = 1 %)",
        ),
    )


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

    max_bytes: int = field(
        default=256 * 1024 * 1024,
        metadata=doc(
            "Largest training file, both as stored and decompressed (a gzip bomb is refused).",
            unit="bytes (268435456 = 256 MiB)",
        ),
    )
    max_missing_rate: float = field(
        default=0.05,
        metadata=doc(
            "Per column: rows with an empty cell are dropped and counted up to this rate; "
            "above it the file is rejected.",
            unit="fraction (0.05 = 5 %)",
        ),
    )
    max_duplicate_rate: float = field(
        default=1.0,
        metadata=doc(
            "Exact duplicate rows above this share reject the file; below it they are reported. "
            "1.0: reported only (rows of a few discrete features repeat by nature).",
            unit="fraction (0.5 = 50 %)",
        ),
    )
    min_class_rows: int = field(
        default=5,
        metadata=doc(
            "Classification: a class with fewer rows rejects the file (it cannot be both "
            "learned and measured).",
            unit="rows",
        ),
    )
    max_category_ratio: float = field(
        default=0.5,
        metadata=doc(
            "A categorical feature with more distinct values than this share of the rows "
            "rejects the file: it identifies rows rather than describing them.",
            unit="fraction of the rows",
        ),
    )
    max_categories: int = field(
        default=1000,
        metadata=doc(
            "A categorical feature with more distinct values rejects the file (one-hot "
            "encoding adds a column per value).",
            unit="values",
        ),
    )


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

    metric: str = field(
        default="",
        metadata=doc(
            "The metric the gate compares; live quality and canaries judge it too.",
            choices=METRICS,
            default_by_task=DEFAULT_METRIC,
        ),
    )
    min_relative_change: float = field(
        default=0.01,
        metadata=doc(
            "A passing challenger is at least this much better than production, relative to "
            "production's value.",
            unit="fraction (0.01 = 1 %)",
        ),
    )
    min_absolute_change: float = field(
        default=0.0,
        metadata=doc(
            "... and at least this much better in absolute terms.", unit="the metric's units"
        ),
    )
    threshold: float | None = field(
        default=None,
        metadata=doc(
            "An absolute bar every model must meet (`>=` or `<=` by the metric's direction); "
            "unset: none.",
            unit="the metric's units",
        ),
    )
    mode: Literal["auto", "manual"] = field(
        default="auto",
        metadata=doc(
            "`auto`: a passing challenger goes on through `[rollout]`; `manual`: it is "
            "registered as a candidate and an operator promotes it."
        ),
    )
    confidence: float = field(
        default=0.95,
        metadata=doc(
            "Confidence of the paired bootstrap interval (0.5 to below 1).",
            unit="probability (0.95 = 95 %)",
        ),
    )
    on_inconclusive: Literal["shadow", "canary", "manual"] = field(
        default="shadow",
        metadata=doc(
            "What a tie or too few rows to tell starts: a shadow, a canary, or `manual` "
            "(registered as a candidate for `mlops promote V --rollout ...`)."
        ),
    )
    reference_days: int = field(
        default=3,
        metadata=doc(
            "The traffic set: labeled production captures from this many recent days ...",
            unit="days",
        ),
    )
    reference_rows: int = field(
        default=5000,
        metadata=doc(
            "... the newest this many of them; also the size of the golden set pinned with the "
            "production version.",
            unit="rows",
        ),
    )
    min_reference_rows: int = field(
        default=100,
        metadata=doc(
            "A traffic or golden set with fewer rows is not used (the report says so); at most "
            "`reference_rows`.",
            unit="rows",
        ),
    )
    max_reference_degradation: float = field(
        default=0.05,
        metadata=doc(
            "A challenger worse than this on the traffic set is rejected; on the golden set "
            "(with no traffic set), held.",
            unit="fraction, relative (0.05 = 5 %)",
        ),
    )
    max_label_error_ratio: float = field(
        default=5.0,
        metadata=doc(
            "Production's error on the new rows over its error on its own holdout (MAE; error "
            "rate for classification); above it the new labels are suspect and the challenger "
            "is held.",
            unit="ratio (above 1)",
        ),
    )

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

    training_set: Literal["new_object", "window"] = field(
        default="new_object",
        metadata=doc(
            "`new_object`: the uploaded object alone; `window`: it and the most recent other "
            "valid objects under the training prefix."
        ),
    )
    window_objects: int = field(
        default=3,
        metadata=doc(
            "With `window`: the new object and the `window_objects - 1` most recent others.",
            unit="objects",
        ),
    )
    include_feedback: bool = field(
        default=False,
        metadata=doc("Add labeled production traffic: captures joined with their feedback."),
    )
    feedback_days: int = field(
        default=30,
        metadata=doc("With `include_feedback`: traffic of this many recent days.", unit="days"),
    )


MAX_UNSEEN_CATEGORIES = 1024  # the largest [drift] max_unseen_categories


@dataclass(frozen=True)
class DriftConfig:
    """When live traffic has moved away from the training data (DESIGN §5; Evidently's rules).

    Numeric features: PSI on the baseline's bins (``psi_warn`` / ``psi_threshold``) and the
    Wasserstein distance winsorised at the baseline's outer edges, over the training standard
    deviation (``wasserstein_threshold``). Categorical features: Jensen-Shannon distance
    (``js_threshold``) or a share of values never seen in training at or above
    ``unseen_threshold``. PSI, the distance and JS count only when the test on the same counts
    (chi-square; KS for the distance) gives a p-value under ``ks_pvalue``: a change too small
    for the window's size to tell from sampling noise is no drift. A window of at most
    ``small_sample_rows`` rows is read from the raw captures. Any feature: a missing-rate increase
    of ``missing_rate_threshold`` or more. The dataset drifts when at least ``drift_share`` of the
    features drift. Below ``min_rows`` rows a window is not judged; after a retrain request
    another waits ``cooldown_hours``. Live quality breaches when the gate metric is worse than
    the version's holdout value by more than ``quality_tolerance`` (relative), over at least
    ``min_labels`` labels joined within ``label_delay_hours`` of their prediction. Sketches
    keep at most ``max_unseen_categories`` unseen categories by name per feature (the rest as
    one count, so their size does not follow what clients send; 0 to 1,024). With
    ``estimate_retrain``, a breach of the quality estimated before labels requests retraining.
    """

    psi_warn: float = field(
        default=0.1,
        metadata=doc(
            "Numeric features: PSI at or above this is a warning (at most `psi_threshold`).",
            unit="PSI",
            per_feature=True,
        ),
    )
    psi_threshold: float = field(
        default=0.25,
        metadata=doc(
            "Numeric features: PSI on the baseline's bins at or above this is drift.",
            unit="PSI",
            per_feature=True,
        ),
    )
    wasserstein_threshold: float = field(
        default=0.1,
        metadata=doc(
            "Numeric features: the Wasserstein distance, winsorised at the baseline's outer "
            "edges, at or above this is drift.",
            unit="training standard deviations",
            per_feature=True,
        ),
    )
    ks_pvalue: float = field(
        default=0.05,
        metadata=doc(
            "PSI, the distance and JS count only when the test on the same counts (chi-square; "
            "KS for the distance) gives a p-value under this: a change the window is too small "
            "to tell from sampling noise is no drift.",
            unit="p-value",
            per_feature=True,
        ),
    )
    small_sample_rows: int = field(
        default=1000,
        metadata=doc(
            "A window of at most this many rows is judged exactly, from the raw captures.",
            unit="rows",
        ),
    )
    js_threshold: float = field(
        default=0.1,
        metadata=doc(
            "Categorical features: Jensen-Shannon distance at or above this is drift.",
            unit="JS distance (0 to 1)",
            per_feature=True,
        ),
    )
    unseen_threshold: float = field(
        default=0.05,
        metadata=doc(
            "Categorical features: a share of the window's values never seen in training at "
            "or above this is drift.",
            unit="fraction (0.05 = 5 %)",
            per_feature=True,
        ),
    )
    missing_rate_threshold: float = field(
        default=0.05,
        metadata=doc(
            "Any feature: a missing rate that rises over training's by this or more is drift.",
            unit="fraction, absolute (0.05 = 5 points)",
            per_feature=True,
        ),
    )
    drift_share: float = field(
        default=0.5,
        metadata=doc(
            "The dataset drifts when at least this share of its features drift.",
            unit="fraction of the features",
        ),
    )
    min_rows: int = field(
        default=200, metadata=doc("A window with fewer rows is not judged.", unit="rows")
    )
    cooldown_hours: float = field(
        default=6.0,
        metadata=doc(
            "After a retrain request, the next one waits this long (0: no wait).", unit="hours"
        ),
    )
    quality_tolerance: float = field(
        default=0.2,
        metadata=doc(
            "Live quality breaches when the gate metric is worse than the version's holdout "
            "value by more than this.",
            unit="fraction, relative (0.2 = 20 %)",
        ),
    )
    min_labels: int = field(
        default=50,
        metadata=doc("Live quality is judged over at least this many labels.", unit="labels"),
    )
    label_delay_hours: float = field(
        default=72.0,
        metadata=doc(
            "A label joins its prediction when it arrives within this of it.", unit="hours"
        ),
    )
    max_unseen_categories: int = field(
        default=64,
        metadata=doc(
            "Unseen categories a sketch keeps by name per feature; the rest as one count, so a "
            "sketch's size does not follow what clients send (0 to 1,024).",
            unit="categories",
        ),
    )
    estimate_retrain: bool = field(
        default=False,
        metadata=doc(
            "Request retraining when quality ESTIMATED before labels (CBPE for classifiers, "
            "DLE for regressors) is worse than the holdout by more than `quality_tolerance`, "
            "with 95 % confidence, over at least `min_rows` scored rows. Off: the estimate is "
            "reported and alarmed on, never acted on. Estimates are blind to pure concept "
            "drift (docs/estimates.md)."
        ),
    )
    features: Mapping[str, Mapping[str, float]] = field(
        default_factory=dict,
        metadata=doc(
            "Per-feature thresholds: a `[drift.features.<name>]` table per feature overrides "
            "the keys above that judge one feature, e.g. `[drift.features.sqft]` with "
            "`psi_threshold = 0.4`."
        ),
    )

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
      with confidence ``confidence`` (an always-valid sequential test, from ``min_labels``
      labeled predictions per variant); optionally prediction disagreement (shadow) above
      ``max_disagreement`` or prediction PSI between the variants above ``max_prediction_psi``.
    - promote: no breach after ``min_bake_minutes`` and ``min_requests`` candidate requests,
      and live quality shown not worse than the tolerance (unless ``require_labels = false``);
      with ``canary_steps``, such a pass moves the share up one step and only the last step's
      pass promotes.
    - after ``max_bake_hours`` without a verdict: ``on_inconclusive`` (rollback or promote).
    """

    mode: Literal["direct", "shadow", "canary"] = field(
        default="canary",
        metadata=doc(
            "`canary`: the candidate answers a share of requests; `shadow`: it scores every "
            "request, its answers captured, never returned; `direct`: production moves at once "
            "on the gate's evidence alone (no live check before every user sees it)."
        ),
    )
    canary_percent: float = field(
        default=10.0,
        metadata=doc(
            "Canary: the share of requests the candidate answers, sticky per `request_id` "
            "(0.01 to 100).",
            unit="percent (10.0 = 10 %)",
        ),
    )
    canary_steps: tuple[float, ...] = field(
        default=(),
        metadata=doc(
            "Canary: a stepped ramp, e.g. `[5, 25, 50]`: the canary starts at the first share "
            "(instead of `canary_percent`) and moves up one step when live traffic shows it "
            "not worse, each step with its own `min_bake_minutes` and `min_labels`; it is "
            "promoted after the last step and rolled back (share 0) at any step that shows it "
            "worse. Strictly increasing, each above 0 and at most 100; empty: no ramp.",
            unit="percent of requests (5 = 5 %)",
        ),
    )
    min_bake_minutes: float = field(
        default=60.0,
        metadata=doc(
            "No promotion before the rollout has baked this long (a breach rolls back at once).",
            unit="minutes",
        ),
    )
    max_bake_hours: float = field(
        default=24.0,
        metadata=doc(
            "No verdict after this long: `on_inconclusive` decides (at least `min_bake_minutes`).",
            unit="hours",
        ),
    )
    min_requests: int = field(
        default=200,
        metadata=doc("Candidate requests needed before a promotion.", unit="requests"),
    )
    min_labels: int = field(
        default=30,
        metadata=doc(
            "Labeled predictions per variant before live quality is judged.", unit="labels"
        ),
    )
    require_labels: bool = field(
        default=True,
        metadata=doc(
            "A promotion needs live quality shown within tolerance (forced on for a held version)."
        ),
    )
    confidence: float = field(
        default=0.95,
        metadata=doc(
            "Confidence of the always-valid sequential test on live quality (it holds however "
            "often the verdict is looked at), and of the bootstrap interval shown beside it "
            "(0.5 to below 1).",
            unit="probability (0.95 = 95 %)",
        ),
    )
    max_quality_degradation: float = field(
        default=0.05,
        metadata=doc(
            "Live quality worse than production's by more than this rolls back; a promotion "
            "needs it shown not worse than this.",
            unit="fraction, relative (0.05 = 5 %)",
        ),
    )
    max_error_rate: float = field(
        default=0.01,
        metadata=doc(
            "A candidate scoring error rate above this rolls back.",
            unit="fraction of requests (0.01 = 1 %)",
        ),
    )
    max_latency_ratio: float = field(
        default=2.0,
        metadata=doc(
            "A candidate p95 latency above this times production's ...",
            unit="ratio (at least 1)",
        ),
    )
    latency_slack_ms: float = field(
        default=5.0,
        metadata=doc("... and more than this above it rolls back.", unit="milliseconds"),
    )
    max_disagreement: float | None = field(
        default=None,
        metadata=doc(
            "Shadow: a share of predictions that disagree with production above this rolls "
            "back; unset: not judged.",
            unit="fraction of predictions",
        ),
    )
    max_prediction_psi: float | None = field(
        default=None,
        metadata=doc(
            "Regression: PSI between the two variants' predictions above this rolls back; "
            "unset: not judged.",
            unit="PSI",
        ),
    )
    on_inconclusive: Literal["rollback", "promote"] = field(
        default="rollback",
        metadata=doc("What happens after `max_bake_hours` without a verdict."),
    )

    @property
    def start_percent(self) -> float:
        """A canary's first share: the ramp's first step, else ``canary_percent``."""
        return self.canary_steps[0] if self.canary_steps else self.canary_percent


@dataclass(frozen=True)
class ModelConfig:
    """A model's config: the top-level keys, then one field per TOML section (whose doc is the
    section's introduction in the reference)."""

    name: str = field(
        metadata=doc(
            "The model's name: 2 to 63 of `a-z`, `0-9`, `-`, not starting with `-`. It becomes "
            "the stack's `ModelName` and part of S3 keys."
        )
    )
    task: Task = field(metadata=doc("What the model predicts: a number or a class."))
    target: str = field(metadata=doc("The target column of the training CSV; not also a feature."))
    features: tuple[Feature, ...] = field(
        metadata=doc(
            "One `[[features]]` table per model input, in the order the model takes them "
            "(at least one)."
        )
    )
    estimator: EstimatorConfig = field(
        default_factory=EstimatorConfig, metadata=doc("The scikit-learn model that is trained.")
    )
    training: TrainingConfig = field(
        default_factory=TrainingConfig,
        metadata=doc("How a training file is split and summarised."),
    )
    parity: ParityConfig = field(
        default_factory=ParityConfig,
        metadata=doc(
            "How close ONNX Runtime must be to scikit-learn, on the holdout and edge cases, "
            "for an export to be registered."
        ),
    )
    validation: ValidationConfig = field(
        default_factory=ValidationConfig,
        metadata=doc("What training data must look like before anything is trained on it."),
    )
    promotion: PromotionConfig = field(
        default_factory=PromotionConfig,
        metadata=doc(
            "The champion/challenger gate: both models scored on the same rows of the new "
            "holdout, recent labeled traffic and the golden set, compared by a paired bootstrap."
        ),
    )
    retraining: RetrainingConfig = field(
        default_factory=RetrainingConfig,
        metadata=doc(
            "Which rows a retrain trains on (the holdout always comes from the new data)."
        ),
    )
    drift: DriftConfig = field(
        default_factory=DriftConfig,
        metadata=doc(
            "When live traffic has moved away from the training data, and when live quality "
            "has fallen."
        ),
    )
    rollout: RolloutConfig = field(
        default_factory=RolloutConfig,
        metadata=doc(
            "How a challenger that passed the gate reaches production: the rollout bakes on "
            "live traffic and the evaluator promotes it or rolls it back."
        ),
    )

    @property
    def feature_names(self) -> list[str]:
        return [f.name for f in self.features]
