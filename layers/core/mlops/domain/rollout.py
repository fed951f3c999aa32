"""Judging a live rollout (shadow or canary): promote the candidate, roll it back, or wait.

The rules are ``RolloutConfig``'s (its docstring is the spec); ``judge`` applies them to each
version's serving digest since the rollout began (``domain.serving``: counts, failures, samples
of latencies and answers) and its labeled predictions; ``judge_rollout`` does the same from raw
capture rows (their digests built as the logger builds them).

- Breach, at any time, on enough evidence: the candidate's error rate above ``max_error_rate``
  (attempts: candidate rows and production rows carrying ``candidate_error``; errors: the
  latter and candidate rows without a usable prediction, as a NaN output is captured null;
  judged from ``min_requests`` attempts, or at once when the errors alone exceed
  ``max_error_rate * min_requests``); its p95 latency (one value per request) above
  ``max(max_latency_ratio * production p95, production p95 + latency_slack_ms)`` (from
  ``min_requests`` candidate rows); live quality worse than production's by more than
  ``max_quality_degradation`` (relative, in the metric's direction) across the whole confidence
  interval (from ``min_labels`` labeled predictions per variant); disagreement (shadow) or
  prediction PSI above their bars when set (from ``min_requests`` pairs / candidate rows).
- Promote: no breach, ``min_bake_minutes`` elapsed, ``min_requests`` candidate rows and, unless
  ``require_labels`` is false, live quality *shown* within the tolerance: the upper end of the
  interval of the relative degradation at most ``max_quality_degradation``.
- After ``max_bake_hours`` with neither: ``on_inconclusive``, except that a candidate with
  fewer than ``min_requests`` rows is never promoted (one that fails to load has none).
  Otherwise wait, saying for what.

Statistics (``domain.comparison``): a percentile bootstrap interval of the relative change of
the metric, ``(candidate - production) / |production|``. Shadow: both variants scored the same
requests, so labels are joined to both by prediction id and the same ids are resampled for both
(paired: the noise of the requests cancels, a small consistent improvement shows at a size where
independent samples cannot show it). Canary: each prediction was answered by one variant, so
the two samples are resampled independently. Judging a 10 % canary after a day at 1M
predictions, 10 % labeled (~10,000 labels a variant), takes 1.3 s from the digests, most of
it the bootstrap (``benchmarks/monitoring_cost.py``).

A small window never decides by noise: no rule is judged before its minimum evidence, and a
breach or a promotion needs the whole interval on one side of the tolerance. Measured on
identical models (canary, 100-200 labels per variant, no tolerance at all): 2-4 % of windows
roll back, the one-sided 2.5 % the 95 % interval implies.

numpy only and pure: it runs in the evaluator Lambda, without scipy or scikit-learn.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from mlops.domain import serving
from mlops.domain.comparison import Comparison, Sample, compare
from mlops.domain.comparison import finite_or_none as _finite
from mlops.domain.config import RolloutConfig
from mlops.domain.drift_statistics import psi
from mlops.domain.quality import show_metric
from mlops.domain.serving import Serving, is_number, usable_prediction

FloatArray = npt.NDArray[np.float64]

METRICS = {
    "regression": frozenset({"rmse", "mae", "r2", "mape"}),
    "classification": frozenset({"accuracy", "f1_macro", "log_loss", "roc_auc"}),
}
PSI_BINS = 10  # prediction PSI: on production's deciles
MIN_PSI_ROWS = 100  # per variant; fewer and the PSI is noise (9 bins x (1/n + 1/m))
DISAGREEMENT_RTOL = 0.01  # regression: |c - p| > 1% of max(|p|, median |p|)
_FLOAT = frozenset({float})


@dataclass(frozen=True)
class Check:
    """One rule: ``status`` is "pass", "breach", "pending" (not enough evidence yet) or
    "off" (not configured, or not measurable in this mode)."""

    name: str
    status: str
    value: float | None
    threshold: float | None
    detail: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status,
            "value": _finite(self.value),
            "threshold": _finite(self.threshold),
            "detail": self.detail,
        }


@dataclass(frozen=True)
class VariantSummary:
    """One variant's traffic. ``rows``: capture rows; ``predictions``: those with a usable
    prediction; ``attempts``/``errors``/``error_rate``: the candidate's only (production's
    failures are not captured). Latency per request (a request's rows share it)."""

    rows: int
    predictions: int
    attempts: int | None
    errors: int | None
    error_rate: float | None
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    labels: int  # labeled predictions with a usable prediction and label
    metric_value: float | None  # on the sample the comparison uses

    def as_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "predictions": self.predictions,
            "attempts": self.attempts,
            "errors": self.errors,
            "error_rate": _finite(self.error_rate),
            "latency_p50_ms": _finite(self.latency_p50_ms),
            "latency_p95_ms": _finite(self.latency_p95_ms),
            "labels": self.labels,
            "metric_value": _finite(self.metric_value),
        }


@dataclass(frozen=True)
class RolloutVerdict:
    """Promote, roll back or wait, with the reasons an operator reads and every check behind
    them. ``as_dict`` is strict JSON: NaN and infinities are None."""

    decision: str  # "wait" | "promote" | "rollback"
    reasons: tuple[str, ...]
    checks: tuple[Check, ...]
    mode: str
    production: VariantSummary
    candidate: VariantSummary
    quality: Comparison
    disagreement: float | None  # shadow: share of paired predictions that differ
    prediction_psi: float | None
    elapsed_seconds: float

    def check(self, name: str) -> Check:
        return next(c for c in self.checks if c.name == name)

    def as_dict(self) -> dict[str, Any]:
        return {
            "decision": self.decision,
            "reasons": list(self.reasons),
            "checks": [c.as_dict() for c in self.checks],
            "mode": self.mode,
            "variants": {
                "production": self.production.as_dict(),
                "candidate": self.candidate.as_dict(),
            },
            "quality": self.quality.as_dict(),
            "disagreement": _finite(self.disagreement),
            "prediction_psi": _finite(self.prediction_psi),
            "elapsed_seconds": _finite(self.elapsed_seconds),
        }


def judge_rollout(
    *,
    mode: str,
    task: str,
    classes: Sequence[Any],
    metric: str,
    greater_is_better: bool,
    production_rows: Sequence[Mapping[str, Any]],
    candidate_rows: Sequence[Mapping[str, Any]],
    feedback_rows: Sequence[Mapping[str, Any]],
    label_delay_ms: int,
    elapsed_seconds: float,
    config: RolloutConfig,
    seed: int = 0,
) -> RolloutVerdict:
    """Promote, roll back or wait, from the capture rows (``capture.capture_rows``) of the
    production and candidate versions since the rollout began and the feedback rows
    (``capture.feedback_rows``) for them: ``judge`` on the rows' serving digests (as the
    logger builds them) and on the rows themselves as the labeled ones. Every failure that
    production's rows carry counts. Deterministic for a ``seed``."""
    return judge(
        mode=mode,
        task=task,
        classes=classes,
        metric=metric,
        greater_is_better=greater_is_better,
        production=_digest(production_rows, task),
        candidate=_digest(candidate_rows, task),
        candidate_version=None,
        labeled_production=production_rows,
        labeled_candidate=candidate_rows,
        feedback_rows=feedback_rows,
        label_delay_ms=label_delay_ms,
        elapsed_seconds=elapsed_seconds,
        config=config,
        seed=seed,
    )


def judge(
    *,
    mode: str,
    task: str,
    classes: Sequence[Any],
    metric: str,
    greater_is_better: bool,
    production: Serving,
    candidate: Serving,
    candidate_version: str | None,
    labeled_production: Sequence[Mapping[str, Any]],
    labeled_candidate: Sequence[Mapping[str, Any]],
    feedback_rows: Sequence[Mapping[str, Any]],
    label_delay_ms: int,
    elapsed_seconds: float,
    config: RolloutConfig,
    seed: int = 0,
) -> RolloutVerdict:
    """The verdict from each variant's serving digest since the rollout began
    (``domain.serving``: counts, failures, latencies, answers) and its labeled capture rows
    with the feedback for them. Failures production's digest holds count against
    ``candidate_version`` (None: all of them). Deterministic for a ``seed``."""
    if mode not in ("shadow", "canary"):
        raise ValueError(f"a rollout is judged in shadow or canary mode, not {mode!r}")
    if task not in METRICS:
        raise ValueError(f"unknown task {task!r}")
    if metric not in METRICS[task]:
        raise ValueError(f"{metric!r} is not a {task} metric")
    rng = np.random.default_rng(seed)
    labels = _latest_labels(feedback_rows)
    scores = _score_reader(metric, [str(c) for c in classes])
    paired = mode == "shadow"
    failed = (
        sum(production.failed.values())
        if candidate_version is None
        else production.failed_for(candidate_version)
    )
    prod, cand = (
        _Traffic(
            rows=digest.rows,
            predictions=digest.predictions,
            failed=count,
            answers=dict(digest.answers),
            latency=np.fromiter((ms for _, ms in digest.latencies), dtype=np.float64),
            sample=_labeled_sample(rows, labels, task=task, scores=scores, delay_ms=label_delay_ms),
        )
        for digest, rows, count in (
            (production, labeled_production, failed),
            (candidate, labeled_candidate, 0),
        )
    )
    # A candidate row without a usable prediction (a NaN or infinite output is captured as
    # null) failed too: counted as an error, not silently left out of the quality sample.
    attempts = cand.rows + prod.failed
    errors = prod.failed + (cand.rows - cand.predictions)
    quality = compare(
        *(_pair(prod.sample, cand.sample) if paired else (prod.sample, cand.sample)),
        task=task,
        classes=classes,
        metric=metric,
        greater_is_better=greater_is_better,
        paired=paired,
        confidence=config.confidence,
        tolerance=config.max_quality_degradation,
        rng=rng,
    )
    disagreement, pairs = _disagreement(task, prod, cand) if paired else (None, 0)
    prediction_psi = _prediction_psi(task, prod, cand)

    checks = (
        _bake_check(elapsed_seconds, config),
        _requests_check(cand.rows, config),
        _error_check(prod.failed, cand.rows - cand.predictions, attempts, config),
        _latency_check(prod.latency, cand.latency, cand.rows, config),
        _quality_check(quality, config),
        _disagreement_check(mode, disagreement, pairs, config),
        _psi_check(task, prediction_psi, cand.rows, config),
    )
    decision, reasons = _decide(checks, elapsed_seconds, config)
    if decision == "promote" and cand.rows < config.min_requests:
        # on_inconclusive = promote after max_bake_hours: never for a candidate that barely
        # served (one that fails to load in every container has no rows at all).
        decision = "rollback"
        reasons.append(
            f"not promoted on inconclusive: {cand.rows:,} candidate requests, fewer than the "
            f"{config.min_requests:,} needed; the candidate may not be serving"
        )
    return RolloutVerdict(
        decision=decision,
        reasons=tuple(reasons),
        checks=checks,
        mode=mode,
        production=VariantSummary(
            rows=prod.rows,
            predictions=prod.predictions,
            attempts=None,
            errors=None,
            error_rate=None,
            latency_p50_ms=_percentile(prod.latency, 50),
            latency_p95_ms=_percentile(prod.latency, 95),
            labels=len(prod.sample.ids),
            metric_value=quality.production,
        ),
        candidate=VariantSummary(
            rows=cand.rows,
            predictions=cand.predictions,
            attempts=attempts,
            errors=errors,
            error_rate=errors / attempts if attempts else None,
            latency_p50_ms=_percentile(cand.latency, 50),
            latency_p95_ms=_percentile(cand.latency, 95),
            labels=len(cand.sample.ids),
            metric_value=quality.candidate,
        ),
        quality=quality,
        disagreement=disagreement,
        prediction_psi=prediction_psi,
        elapsed_seconds=float(elapsed_seconds),
    )


# --- the decision -----------------------------------------------------------------------------


def _decide(
    checks: tuple[Check, ...], elapsed: float, config: RolloutConfig
) -> tuple[str, list[str]]:
    """Roll back on any breach; promote when nothing needed is missing; after
    ``max_bake_hours``, ``on_inconclusive``; else wait, saying for what."""
    by_name = {c.name: c for c in checks}
    breaches = [c.detail for c in checks if c.status == "breach"]
    if breaches:
        return "rollback", breaches
    missing = [by_name[n].detail for n in ("bake", "requests") if by_name[n].status != "pass"]
    quality_check = by_name["quality"]
    if config.require_labels and quality_check.status != "pass":
        missing.append(quality_check.detail)
    if not missing:
        reasons = [
            f"no breach after {_duration(elapsed)} and {by_name['requests'].detail}",
            quality_check.detail
            if config.require_labels
            else f"live quality not required (require_labels = false): {quality_check.detail}",
        ]
        reasons += [by_name[n].detail for n in ("error_rate", "latency_p95")]
        return "promote", reasons
    if elapsed >= config.max_bake_hours * 3600:
        return config.on_inconclusive, [
            f"inconclusive after {_duration(elapsed)} (max_bake_hours {config.max_bake_hours:g}): "
            + "; ".join(missing),
            f"on_inconclusive = {config.on_inconclusive}",
        ]
    return "wait", [f"waiting: {m}" for m in missing]


def _bake_check(elapsed: float, config: RolloutConfig) -> Check:
    needed = config.min_bake_minutes * 60
    done = elapsed >= needed
    return Check(
        "bake",
        "pass" if done else "pending",
        float(elapsed),
        needed,
        f"baked {_duration(elapsed)} of the {_duration(needed)} required",
    )


def _requests_check(rows: int, config: RolloutConfig) -> Check:
    done = rows >= config.min_requests
    return Check(
        "requests",
        "pass" if done else "pending",
        float(rows),
        float(config.min_requests),
        f"{rows:,} candidate requests ({config.min_requests:,} needed)",
    )


def _error_check(failed: int, unusable: int, attempts: int, config: RolloutConfig) -> Check:
    """Errors: requests the candidate failed (production answered) and candidate rows
    without a usable prediction."""
    limit = config.max_error_rate
    errors = failed + unusable
    rate = errors / attempts if attempts else None
    shown = f"candidate error rate {_share(rate)} ({errors:,} of {attempts:,} attempts"
    shown += f": {failed:,} failed, {unusable:,} without a prediction)" if unusable else ")"
    # Comparing quotients, not products: 2/200 is exactly the double nearest 0.01.
    enough = (
        attempts >= config.min_requests
        or config.min_requests <= 0
        or errors / config.min_requests > limit
    )
    if rate is not None and rate > limit and enough:
        status, detail = "breach", f"{shown} is above the {_share(limit)} allowed"
    elif attempts < config.min_requests:
        status, detail = "pending", f"{shown}; judged from {config.min_requests:,} attempts"
    else:
        status, detail = "pass", f"{shown}, within the {_share(limit)} allowed"
    return Check("error_rate", status, rate, limit, detail)


def _latency_check(
    production: FloatArray, candidate: FloatArray, candidate_rows: int, config: RolloutConfig
) -> Check:
    prod_p95, cand_p95 = _percentile(production, 95), _percentile(candidate, 95)
    if prod_p95 is None or cand_p95 is None:
        return Check("latency_p95", "pending", cand_p95, None, "no latency measured yet")
    # A NaN setting must not disable the check (NaN compares false): its term is dropped.
    terms = [config.max_latency_ratio * prod_p95, prod_p95 + config.latency_slack_ms]
    bound = max([t for t in terms if math.isfinite(t)], default=prod_p95)
    shown = f"candidate p95 latency {cand_p95:,.4g} ms vs production {prod_p95:,.4g} ms"
    if candidate_rows < config.min_requests:
        status, detail = "pending", f"{shown}; judged from {config.min_requests:,} requests"
    elif cand_p95 > bound:
        status, detail = "breach", f"{shown} is above the {bound:,.4g} ms allowed"
    else:
        status, detail = "pass", f"{shown}, within the {bound:,.4g} ms allowed"
    return Check("latency_p95", status, cand_p95, bound, detail)


def _quality_check(quality: Comparison, config: RolloutConfig) -> Check:
    metric, tolerance = quality.metric, quality.tolerance
    n_prod, n_cand = quality.production_labels, quality.candidate_labels
    counted = (
        f"{n_cand:,} paired labels"
        if quality.paired
        else f"{n_prod:,} + {n_cand:,} labels (production + candidate)"
    )
    point, low, high = quality.degradation
    if min(n_prod, n_cand) < config.min_labels:
        return Check(
            "quality",
            "pending",
            point,
            tolerance,
            f"live {metric}: {counted}, {config.min_labels:,} needed per variant",
        )
    if (
        quality.production is None
        or quality.candidate is None
        or point is None
        or low is None
        or high is None
    ):
        return Check("quality", "pending", None, tolerance, f"live {metric} not measurable yet")
    change = quality.relative_change or 0.0
    if change == 0:
        direction = "no change"
    else:
        better = (change < 0) != quality.greater_is_better
        direction = f"{abs(change):.1%} {'better' if better else 'worse'}"
    shown = (
        f"live {metric} {show_metric(metric, quality.candidate)} vs production "
        f"{show_metric(metric, quality.production)}: "
        f"{direction} "
        f"({quality.confidence:.0%} interval {quality.ci_low:+.1%} to {quality.ci_high:+.1%}, "
        f"{counted})"
    )
    if low > tolerance:
        return Check(
            "quality",
            "breach",
            point,
            tolerance,
            f"{shown}: worse than the {tolerance:.1%} tolerance across the whole interval",
        )
    if high <= tolerance:
        return Check(
            "quality", "pass", point, tolerance, f"{shown}: within the {tolerance:.1%} tolerance"
        )
    return Check(
        "quality",
        "pending",
        point,
        tolerance,
        f"{shown}: not yet shown within the {tolerance:.1%} tolerance",
    )


def _disagreement_check(mode: str, value: float | None, pairs: int, config: RolloutConfig) -> Check:
    limit = config.max_disagreement
    if mode != "shadow":
        return Check("disagreement", "off", None, limit, "canary: no paired predictions")
    shown = f"disagreement {_share(value)} of {pairs:,} paired predictions"
    if limit is None:
        return Check("disagreement", "off", value, None, f"{shown} (no bar set)")
    if value is None or pairs < config.min_requests:
        return Check(
            "disagreement",
            "pending",
            value,
            limit,
            f"{shown}; judged from {config.min_requests:,} pairs",
        )
    if value > limit:
        return Check("disagreement", "breach", value, limit, f"{shown} is above {_share(limit)}")
    return Check("disagreement", "pass", value, limit, f"{shown}, within {_share(limit)}")


def _psi_check(task: str, value: float | None, rows: int, config: RolloutConfig) -> Check:
    limit = config.max_prediction_psi
    if task != "regression":
        return Check("prediction_psi", "off", None, limit, "predictions are not numeric")
    shown = "prediction PSI " + ("n/a" if value is None else f"{value:.3f}")
    if limit is None:
        return Check("prediction_psi", "off", value, None, f"{shown} (no bar set)")
    if value is None or rows < config.min_requests:
        return Check(
            "prediction_psi",
            "pending",
            value,
            limit,
            f"{shown}; judged from {max(config.min_requests, MIN_PSI_ROWS):,} rows per variant",
        )
    if value > limit:
        return Check("prediction_psi", "breach", value, limit, f"{shown} is above {limit:g}")
    return Check("prediction_psi", "pass", value, limit, f"{shown}, within {limit:g}")


# --- traffic --------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Traffic:
    """One variant's capture rows, read in one pass."""

    rows: int
    predictions: int  # rows with a usable prediction
    failed: int  # production rows whose candidate failed
    answers: dict[int, Any]  # usable predictions by prediction id hash (a bottom-K sample)
    latency: FloatArray  # one per request (a bottom-K sample)
    sample: Sample


def _latest_labels(feedback: Sequence[Mapping[str, Any]]) -> dict[str, tuple[int, Any]]:
    """The last label per prediction id (feedback can be corrected), as ``quality.join``."""
    labels: dict[str, tuple[int, Any]] = {}
    for row in feedback:
        pid, ts = row.get("prediction_id"), row.get("ts")
        if not isinstance(pid, str) or not isinstance(ts, int):
            continue
        if pid not in labels or ts >= labels[pid][0]:
            labels[pid] = (ts, row.get("actual"))
    return labels


def _labeled_sample(
    rows: Sequence[Mapping[str, Any]],
    labels: Mapping[str, tuple[int, Any]],
    *,
    task: str,
    scores: Callable[[Any, Any], Any] | None,
    delay_ms: int,
) -> Sample:
    """One variant's labeled predictions, in one pass over its rows. Labels are joined by
    ``quality.join``'s rule: a label counts only if it came within ``delay_ms`` after the
    prediction, and a prediction is counted once (``quality.join`` itself would rebuild the
    labels per variant and read the rows again)."""
    usable = usable_prediction(task)
    joined: set[str] = set()
    sample = Sample([], [], [], [])
    for row in rows:
        pid, prediction = row.get("prediction_id"), row.get("prediction")
        if not isinstance(pid, str):
            continue
        label = labels.get(pid)
        if label is None or pid in joined:
            continue
        ts = row.get("ts")
        if not isinstance(ts, int) or not 0 <= label[0] - ts <= delay_ms:
            continue
        joined.add(pid)
        actual = label[1]
        if not usable(prediction) or not usable(actual):
            continue
        score = None if scores is None else scores(row.get("probabilities"), actual)
        if scores is not None and score is None:
            continue
        sample.ids.append(pid)
        sample.predictions.append(prediction)
        sample.actuals.append(actual)
        sample.scores.append(score)
    if scores is not None and sample.ids:
        finite = np.isfinite(np.asarray(sample.scores, dtype=np.float64))
        keep = finite if finite.ndim == 1 else np.all(finite, axis=1)
        if not np.all(keep):
            sample = sample.take(np.flatnonzero(keep).tolist())
    return sample


def _digest(rows: Sequence[Mapping[str, Any]], task: str) -> Serving:
    """All of one version's rows as one digest, whatever their variants."""
    return serving.merge(serving.build(rows, task=task).values()) if rows else serving.EMPTY


def _pair(production: Sample, candidate: Sample) -> tuple[Sample, Sample]:
    """The labeled predictions both variants answered, in the same order."""
    position = {pid: i for i, pid in enumerate(candidate.ids)}
    prod_index = [i for i, pid in enumerate(production.ids) if pid in position]
    return production.take(prod_index), candidate.take(
        [position[production.ids[i]] for i in prod_index]
    )


def _percentile(values: FloatArray, q: float) -> float | None:
    return float(np.percentile(values, q)) if values.size else None


def _disagreement(task: str, production: _Traffic, candidate: _Traffic) -> tuple[float | None, int]:
    """Share of the predictions both variants answered (same prediction id) that differ."""
    pairs = [
        (p, candidate.answers[pid])
        for pid, p in production.answers.items()
        if pid in candidate.answers
    ]
    if not pairs:
        return None, 0
    if task == "classification":
        differ = sum(1 for p, c in pairs if str(p) != str(c))
        return differ / len(pairs), len(pairs)
    prod = np.asarray([p for p, _ in pairs], dtype=np.float64)
    cand = np.asarray([c for _, c in pairs], dtype=np.float64)
    # As the export parity rule: relative to the output's scale, not to a prediction near 0.
    scale = np.maximum(np.abs(prod), float(np.median(np.abs(prod))))
    return float(np.mean(np.abs(cand - prod) > DISAGREEMENT_RTOL * scale)), len(pairs)


def _prediction_psi(task: str, production: _Traffic, candidate: _Traffic) -> float | None:
    """PSI of the candidate's predictions against production's, on production's deciles."""
    if task != "regression":
        return None
    prod = np.fromiter(production.answers.values(), dtype=np.float64)
    cand = np.fromiter(candidate.answers.values(), dtype=np.float64)
    if prod.size < MIN_PSI_ROWS or cand.size < MIN_PSI_ROWS:
        return None
    edges = np.unique(np.quantile(prod, np.linspace(0, 1, PSI_BINS + 1)[1:-1]))
    bins = len(edges) + 1
    return psi(
        np.bincount(np.searchsorted(edges, prod, side="right"), minlength=bins),
        np.bincount(np.searchsorted(edges, cand, side="right"), minlength=bins),
    )


def _score_reader(metric: str, keys: list[str]) -> Callable[[Any, Any], Any] | None:
    """What a labeled row's probabilities must give the metric, as ``(probabilities, actual)
    -> floats | None`` (None: the row is not usable): the label's probability for log_loss (0
    for a label the model never saw, as ``metrics``), every class's for roc_auc. Floats pass
    on their type alone, this runs on every labeled row; ``_read`` drops non-finite ones in
    bulk."""
    if metric == "log_loss":
        known = frozenset(keys)

        def of_label(probabilities: Any, actual: Any) -> float | None:
            if not isinstance(probabilities, Mapping):
                return None
            text = str(actual)
            value = probabilities.get(text, 0.0) if text in known else 0.0
            if type(value) is float:
                return value
            return float(value) if is_number(value) else None

        return of_label
    if metric == "roc_auc":
        absent = (0.0,) * len(keys)

        def of_classes(probabilities: Any, actual: Any) -> tuple[float, ...] | None:
            if not isinstance(probabilities, Mapping):
                return None
            # A tuple of floats: the garbage collector stops tracking it (a list it would scan)
            values = tuple(map(probabilities.get, keys, absent))
            if _FLOAT.issuperset(map(type, values)):
                return values
            if all(map(is_number, values)):
                return tuple(float(v) for v in values)
            return None

        return of_classes
    return None


# --- formatting -------------------------------------------------------------------------------


def _share(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2%}".replace(".00%", "%")


def _duration(seconds: float) -> str:
    """Rounded down, so a wait never reads as the bound it has not reached."""
    if seconds < 120:
        return f"{math.floor(seconds)} s"
    if seconds < 7200:
        return f"{math.floor(seconds / 6) / 10:g} min"
    return f"{math.floor(seconds / 360) / 10:g} h"
