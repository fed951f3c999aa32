"""Judging a live rollout (shadow or canary): promote the candidate, roll it back, or wait.

The rules are ``RolloutConfig``'s (its docstring is the spec); ``judge_rollout`` applies them to
the capture rows of both versions since the rollout began and the labels that came back.

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

Statistics. A percentile bootstrap interval of the relative change of the metric,
``(candidate - production) / |production|``. Shadow: both variants scored the same requests,
so labels are joined to both by prediction id and the same ids are resampled for both (paired:
the noise of the requests cancels, a small consistent improvement shows at a size where
independent samples cannot show it). Canary: each prediction was answered by one variant, so
the two samples are resampled independently. Every metric but ROC-AUC is a function of means
of per-row values (squared and absolute errors, correct answers, log losses, per-class
true/false positive and false negative indicators for macro F1, and the target's first two
moments for R²), so a resample is a vector of draw counts and its means one matrix product
(2,000 resamples). Over ``MAX_BOOTSTRAP_UNITS`` labels, rows are summed into that many random
groups first and the groups resampled: every label still counts, the interval is that of the
mean of iid groups, and the cost is bounded (100k labels per variant: 0.2-0.35 s of one core;
the whole call, reading 200k capture rows and their labels, 0.7-1.2 s). ROC-AUC needs ranks:
rows are sorted by score once and each resample's Mann-Whitney U is sums over runs of equal
scores; its resamples are drawn from a random ``RANKED_MAX_ROWS`` labels per variant (the
point value uses all), which the verdict says (0.6-0.8 s).

A small window never decides by noise: no rule is judged before its minimum evidence, and a
breach or a promotion needs the whole interval on one side of the tolerance. Measured on
identical models (canary, 100-200 labels per variant, no tolerance at all): 2-4 % of windows
roll back, the one-sided 2.5 % the 95 % interval implies.

numpy only and pure: it runs in the evaluator Lambda, without scipy or scikit-learn.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import numpy.typing as npt

from mlops.domain.config import RolloutConfig
from mlops.domain.drift import psi
from mlops.domain.metrics import EPSILON
from mlops.domain.quality import show_metric

FloatArray = npt.NDArray[np.float64]

METRICS = {
    "regression": frozenset({"rmse", "mae", "r2", "mape"}),
    "classification": frozenset({"accuracy", "f1_macro", "log_loss", "roc_auc"}),
}
RESAMPLES = 2_000
MAX_BOOTSTRAP_UNITS = 5_000  # beyond, labels are summed into this many random groups
RANKED_MAX_ROWS = 5_000  # ROC-AUC resamples: from a random subsample this big per variant
RANKED_BUDGET = 10_000_000  # ROC-AUC: resamples x rows x curves (binary: 1; else a class each)
MIN_RESAMPLES = 200  # many classes (macro F1): fewer resamples, not fewer than this
COST_BUDGET = 4e8  # resamples x units x columns, ~0.5 s of matrix products
_CHUNK = 128  # resamples drawn at once: a chunk's weights hold _CHUNK x units floats
MAX_RELATIVE = 1e3  # a relative change is capped here (production's metric at or near 0)
PSI_BINS = 10  # prediction PSI: on production's deciles
MIN_PSI_ROWS = 100  # per variant; fewer and the PSI is noise (9 bins x (1/n + 1/m))
DISAGREEMENT_RTOL = 0.01  # regression: |c - p| > 1% of max(|p|, median |p|)
_FLOAT_MAX = float(np.finfo(np.float64).max)
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
class LiveQuality:
    """Candidate against production on labeled live traffic. ``relative_change`` is
    ``(candidate - production) / |production|`` (negative is better for rmse, positive for
    accuracy); ``ci_low``/``ci_high`` its bootstrap interval at ``confidence``. ``paired``:
    the same predictions for both (shadow). ``sampling`` says what was resampled."""

    metric: str
    greater_is_better: bool
    production: float | None
    candidate: float | None
    relative_change: float | None
    ci_low: float | None
    ci_high: float | None
    confidence: float
    paired: bool
    production_labels: int
    candidate_labels: int
    tolerance: float
    resamples: int
    sampling: str

    @property
    def degradation(self) -> tuple[float | None, float | None, float | None]:
        """(point, low, high) of the relative change in the metric's bad direction."""
        if self.greater_is_better:
            return _negate(self.relative_change), _negate(self.ci_high), _negate(self.ci_low)
        return self.relative_change, self.ci_low, self.ci_high

    def as_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "greater_is_better": self.greater_is_better,
            "production": _finite(self.production),
            "candidate": _finite(self.candidate),
            "relative_change": _finite(self.relative_change),
            "ci_low": _finite(self.ci_low),
            "ci_high": _finite(self.ci_high),
            "confidence": _finite(self.confidence),
            "paired": self.paired,
            "labels": {"production": self.production_labels, "candidate": self.candidate_labels},
            "tolerance": _finite(self.tolerance),
            "resamples": self.resamples,
            "sampling": self.sampling,
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
    quality: LiveQuality
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
    (``capture.feedback_rows``) for them. Deterministic for a ``seed``."""
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
    prod, cand = (
        _read(
            rows,
            labels,
            task=task,
            scores=scores,
            keep_answers=paired or task == "regression",
            delay_ms=label_delay_ms,
        )
        for rows in (production_rows, candidate_rows)
    )
    # A candidate row without a usable prediction (a NaN or infinite output is captured as
    # null) failed too: counted as an error, not silently left out of the quality sample.
    attempts = cand.rows + prod.failed
    errors = prod.failed + (cand.rows - cand.predictions)
    quality = _compare(
        *(_pair(prod.sample, cand.sample) if paired else (prod.sample, cand.sample)),
        task=task,
        classes=classes,
        metric=metric,
        greater_is_better=greater_is_better,
        paired=paired,
        config=config,
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


def _quality_check(quality: LiveQuality, config: RolloutConfig) -> Check:
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
class _Sample:
    """Labeled predictions whose prediction and label are usable, with the probabilities the
    metric needs (``_score_reader``)."""

    ids: list[str]
    predictions: list[Any]
    actuals: list[Any]
    scores: list[Any]

    def take(self, index: Sequence[int]) -> _Sample:
        return _Sample(
            [self.ids[i] for i in index],
            [self.predictions[i] for i in index],
            [self.actuals[i] for i in index],
            [self.scores[i] for i in index],
        )


@dataclass(frozen=True)
class _Traffic:
    """One variant's capture rows, read in one pass."""

    rows: int
    predictions: int  # rows with a usable prediction
    failed: int  # production rows whose candidate failed
    answers: dict[str, Any]  # usable prediction by prediction id (the first)
    latency: FloatArray  # one per request
    sample: _Sample


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


def _read(
    rows: Sequence[Mapping[str, Any]],
    labels: Mapping[str, tuple[int, Any]],
    *,
    task: str,
    scores: Callable[[Any, Any], Any] | None,
    keep_answers: bool,
    delay_ms: int,
) -> _Traffic:
    """Counts, latencies, answers and the labeled sample of one variant, in one pass over its
    rows (a rollout's window holds every request since it began). Labels are joined by
    ``quality.join``'s rule: a label counts only if it came within ``delay_ms`` after the
    prediction, and a prediction is counted once (``quality.join`` itself would rebuild the
    labels per variant and read the rows again)."""
    usable = _usable_prediction(task)
    answers: dict[str, Any] = {}
    latency: list[float] = []
    requests: set[str] = set()
    joined: set[str] = set()
    sample = _Sample([], [], [], [])
    predictions = failed = 0
    for row in rows:
        if "candidate_error" in row and isinstance(row["candidate_error"], str):
            failed += 1
        ms: Any = row.get("latency_ms")
        if _is_number(ms):
            request = row.get("request_id")
            if not isinstance(request, str):
                latency.append(float(ms))
            elif request not in requests:  # a request's rows (one per instance) share it
                requests.add(request)
                latency.append(float(ms))
        pid, prediction = row.get("prediction_id"), row.get("prediction")
        good = usable(prediction)
        predictions += good
        if not isinstance(pid, str):
            continue
        if good and keep_answers:
            answers.setdefault(pid, prediction)
        label = labels.get(pid)
        if label is None or pid in joined:
            continue
        ts = row.get("ts")
        if not isinstance(ts, int) or not 0 <= label[0] - ts <= delay_ms:
            continue
        joined.add(pid)
        actual = label[1]
        if not good or not usable(actual):
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
    return _Traffic(
        rows=len(rows),
        predictions=predictions,
        failed=failed,
        answers=answers,
        latency=np.asarray(latency, dtype=np.float64),
        sample=sample,
    )


def _pair(production: _Sample, candidate: _Sample) -> tuple[_Sample, _Sample]:
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


def _usable_prediction(task: str) -> Callable[[Any], bool]:
    if task == "regression":
        return _is_number
    return lambda value: value is not None and not isinstance(value, dict | list)


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
            return float(value) if _is_number(value) else None

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
            if all(map(_is_number, values)):
                return tuple(float(v) for v in values)
            return None

        return of_classes
    return None


def _is_number(value: Any) -> bool:
    """A finite int or float, not a bool. Exact types first: this runs on every row."""
    kind = type(value)
    if kind is float:
        return bool(value - value == 0.0)  # NaN and infinities give NaN
    if kind is int:
        return bool(-_FLOAT_MAX <= value <= _FLOAT_MAX)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # an int beyond float64
        return False


# --- statistics -------------------------------------------------------------------------------


def _compare(
    production: _Sample,
    candidate: _Sample,
    *,
    task: str,
    classes: Sequence[Any],
    metric: str,
    greater_is_better: bool,
    paired: bool,
    config: RolloutConfig,
    rng: np.random.Generator,
) -> LiveQuality:
    n_prod, n_cand = len(production.ids), len(candidate.ids)
    empty = LiveQuality(
        metric=metric,
        greater_is_better=greater_is_better,
        production=None,
        candidate=None,
        relative_change=None,
        ci_low=None,
        ci_high=None,
        confidence=config.confidence,
        paired=paired,
        production_labels=n_prod,
        candidate_labels=n_cand,
        tolerance=config.max_quality_degradation,
        resamples=0,
        sampling="no labeled predictions on one side" if min(n_prod, n_cand) == 0 else "",
    )
    if min(n_prod, n_cand) == 0:
        return empty
    if metric == "roc_auc":
        prod_stats, cand_stats, resamples, sampling = _bootstrap_ranked(
            classes, production, candidate, paired, rng
        )
    else:
        prod_stats, cand_stats, resamples, sampling = _bootstrap_means(
            production, candidate, task=task, metric=metric, paired=paired, rng=rng
        )
    prod_value, cand_value = prod_stats[0], cand_stats[0]  # row 0: the whole sample
    if not (math.isfinite(prod_value) and math.isfinite(cand_value)):
        return replace(
            empty, sampling=f"{metric} undefined on this sample (e.g. a class never labeled)"
        )
    change = _relative(np.asarray([cand_value]), np.asarray([prod_value]))[0]
    ci_low = ci_high = None
    if min(n_prod, n_cand) >= 2 and resamples:
        changes = _relative(cand_stats[1:], prod_stats[1:])
        changes = changes[np.isfinite(changes)]
        if changes.size >= resamples // 2:  # else too many resamples had no value
            tail = (1 - config.confidence) / 2
            ci_low, ci_high = (float(q) for q in np.quantile(changes, [tail, 1 - tail]))
    return replace(
        empty,
        production=float(prod_value),
        candidate=float(cand_value),
        relative_change=float(change),
        ci_low=ci_low,
        ci_high=ci_high,
        resamples=resamples,
        sampling=sampling,
    )


def _bootstrap_means(
    production: _Sample,
    candidate: _Sample,
    *,
    task: str,
    metric: str,
    paired: bool,
    rng: np.random.Generator,
) -> tuple[FloatArray, FloatArray, int, str]:
    """The metric of each variant on the whole sample (index 0) and on each resample."""
    prod_values = _row_values(task, metric, production)
    cand_values = _row_values(task, metric, candidate)
    statistic = _STATISTICS[metric]
    n_prod, n_cand = len(prod_values), len(cand_values)
    units = min(max(n_prod, n_cand), MAX_BOOTSTRAP_UNITS)
    columns = prod_values.shape[1] + cand_values.shape[1]
    resamples = max(MIN_RESAMPLES, min(RESAMPLES, int(COST_BUDGET / (units * columns))))
    if paired:
        means = _resampled_means(np.hstack([prod_values, cand_values]), resamples, rng)
        split = prod_values.shape[1]
        prod_means, cand_means = means[:, :split], means[:, split:]
    else:
        prod_means = _resampled_means(prod_values, resamples, rng)
        cand_means = _resampled_means(cand_values, resamples, rng)
    sizes = f"{n_cand:,} paired labels" if paired else f"{n_prod:,} + {n_cand:,} labels"
    sampling = f"{'paired' if paired else 'independent'} bootstrap of {sizes}"
    if max(n_prod, n_cand) > MAX_BOOTSTRAP_UNITS:
        sampling += (
            f", summed into {MAX_BOOTSTRAP_UNITS:,} random groups per variant (every label counts)"
        )
    return statistic(prod_means), statistic(cand_means), resamples, sampling


def _resampled_means(values: FloatArray, resamples: int, rng: np.random.Generator) -> FloatArray:
    """Column means of ``values`` (rows x columns): the whole sample's, then ``resamples``
    bootstrap resamples' ((1 + resamples) x columns). A resample is a vector of draw counts,
    so its means are one matrix product; over ``MAX_BOOTSTRAP_UNITS`` rows, random groups of
    rows are the units drawn (their sums and sizes), which bounds the cost."""
    n, width = values.shape
    if n > MAX_BOOTSTRAP_UNITS:
        group = rng.permutation(n) % MAX_BOOTSTRAP_UNITS
        sums: FloatArray = np.column_stack(
            [
                np.bincount(group, weights=values[:, j], minlength=MAX_BOOTSTRAP_UNITS)
                for j in range(width)
            ]
        )
        sizes: FloatArray = np.bincount(group, minlength=MAX_BOOTSTRAP_UNITS).astype(np.float64)
    else:
        sums, sizes = values, np.ones(n)
    units = len(sizes)
    out = np.empty((resamples + 1, width))
    out[0] = values.mean(axis=0)
    for start in range(0, resamples, _CHUNK):
        weights = _draw_counts(rng, min(_CHUNK, resamples - start), units)
        out[1 + start : 1 + start + len(weights)] = (weights @ sums) / (weights @ sizes)[:, None]
    return out


def _draw_counts(rng: np.random.Generator, resamples: int, units: int) -> FloatArray:
    """How many times each unit is drawn in each of ``resamples`` bootstrap resamples."""
    # int32 draws: a third faster than int64, and the bulk of the cost
    draws = rng.integers(0, units, size=(resamples, units), dtype=np.int32)
    draws += (units * np.arange(resamples, dtype=np.int32))[:, None]  # one bincount for all
    counts = np.bincount(draws.ravel(), minlength=resamples * units)
    return counts.reshape(resamples, units).astype(np.float64)


def _row_values(task: str, metric: str, sample: _Sample) -> FloatArray:
    """Per-row values whose means the metric is a function of (``_STATISTICS``), so it agrees
    with ``metrics.regression_metrics``/``classification_metrics`` on the whole sample."""
    if task == "regression":
        y = np.asarray(sample.actuals, dtype=np.float64)
        error = np.asarray(sample.predictions, dtype=np.float64) - y
        if metric == "rmse":
            return (error**2)[:, None]
        if metric == "mae":
            return np.abs(error)[:, None]
        if metric == "mape":
            return (np.abs(error) / np.maximum(np.abs(y), EPSILON))[:, None]
        centred = y - y.mean()  # R² from moments: centred once, so no cancellation
        moments: FloatArray = np.column_stack([error**2, centred, centred**2])
        return moments
    actual = np.asarray([str(v) for v in sample.actuals])
    predicted = np.asarray([str(v) for v in sample.predictions])
    if metric == "accuracy":
        correct: FloatArray = (actual == predicted).astype(np.float64)
        return correct[:, None]
    if metric == "log_loss":
        picked = np.asarray(sample.scores, dtype=np.float64)  # the label's probability
        return (-np.log(np.clip(picked, EPSILON, 1.0 - EPSILON)))[:, None]
    labels = np.union1d(actual, predicted)  # f1_macro: tp, fp, fn indicators per label
    is_actual = actual[:, None] == labels[None, :]
    is_predicted = predicted[:, None] == labels[None, :]
    return np.hstack(
        [is_actual & is_predicted, is_predicted & ~is_actual, is_actual & ~is_predicted]
    ).astype(np.float64)


def _rmse(means: FloatArray) -> FloatArray:
    return np.sqrt(means[:, 0])


def _mean(means: FloatArray) -> FloatArray:
    return means[:, 0]


def _r2(means: FloatArray) -> FloatArray:
    residual, centred, square = means[:, 0], means[:, 1], means[:, 2]
    total = square - centred**2
    # scikit-learn: a constant target scores 1 if predicted exactly, else 0.
    constant = total <= 1e-12 * square
    exact = np.where(residual == 0, 1.0, 0.0)
    return np.where(constant, exact, 1.0 - residual / np.where(constant, 1.0, total))


def _f1_macro(means: FloatArray) -> FloatArray:
    tp, fp, fn = np.split(means, 3, axis=1)
    denominator = 2 * tp + fp + fn
    present = denominator > 0  # labels seen in the (re)sample, as metrics._f1_macro
    scores = np.divide(2 * tp, denominator, out=np.zeros_like(tp), where=present)
    counted: FloatArray = np.sum(scores, axis=1) / np.maximum(np.sum(present, axis=1), 1)
    return counted


_STATISTICS: dict[str, Callable[[FloatArray], FloatArray]] = {
    "rmse": _rmse,
    "mae": _mean,
    "mape": _mean,
    "r2": _r2,
    "accuracy": _mean,
    "log_loss": _mean,
    "f1_macro": _f1_macro,
}


def _bootstrap_ranked(
    classes: Sequence[Any],
    production: _Sample,
    candidate: _Sample,
    paired: bool,
    rng: np.random.Generator,
) -> tuple[FloatArray, FloatArray, int, str]:
    """ROC-AUC on the whole sample (index 0) and on resamples: ranks, not means, so no groups;
    the resamples are drawn from a random ``RANKED_MAX_ROWS`` labels per variant at most."""
    labels = [str(c) for c in classes]
    prod_codes, prod_proba = _ranked(production, labels)
    cand_codes, cand_proba = _ranked(candidate, labels)
    n_prod, n_cand = len(prod_codes), len(cand_codes)
    curves = 1 if len(labels) == 2 else len(labels)
    resamples = max(MIN_RESAMPLES, min(RESAMPLES, RANKED_BUDGET // (curves * RANKED_MAX_ROWS)))
    prod_keep = _subsample(rng, n_prod)
    cand_keep = prod_keep if paired else _subsample(rng, n_cand)
    prod_stats = np.empty(resamples + 1)
    cand_stats = np.empty(resamples + 1)
    prod_stats[0] = _weighted_auc(prod_codes, prod_proba, np.ones((1, n_prod)))[0]
    cand_stats[0] = _weighted_auc(cand_codes, cand_proba, np.ones((1, n_cand)))[0]
    prod_codes, prod_proba = prod_codes[prod_keep], prod_proba[prod_keep]
    cand_codes, cand_proba = cand_codes[cand_keep], cand_proba[cand_keep]
    for start in range(0, resamples, _CHUNK):
        size = min(_CHUNK, resamples - start)
        prod_weights = _draw_counts(rng, size, len(prod_codes))
        cand_weights = prod_weights if paired else _draw_counts(rng, size, len(cand_codes))
        done = slice(1 + start, 1 + start + size)
        prod_stats[done] = _weighted_auc(prod_codes, prod_proba, prod_weights)
        cand_stats[done] = _weighted_auc(cand_codes, cand_proba, cand_weights)
    sizes = f"{n_cand:,} paired labels" if paired else f"{n_prod:,} + {n_cand:,} labels"
    sampling = f"{'paired' if paired else 'independent'} bootstrap of {sizes}"
    if max(n_prod, n_cand) > RANKED_MAX_ROWS:
        sampling += f", the interval from a random {RANKED_MAX_ROWS:,} per variant"
    return prod_stats, cand_stats, resamples, sampling


def _subsample(rng: np.random.Generator, n: int) -> npt.NDArray[np.int64]:
    if n <= RANKED_MAX_ROWS:
        return np.arange(n)
    return np.sort(rng.choice(n, RANKED_MAX_ROWS, replace=False))


def _ranked(sample: _Sample, labels: list[str]) -> tuple[npt.NDArray[np.int64], FloatArray]:
    """Label codes (-1: a label not among the classes) and the probability matrix."""
    index = {label: i for i, label in enumerate(labels)}
    codes = np.asarray([index.get(str(a), -1) for a in sample.actuals], dtype=np.int64)
    proba = np.asarray(sample.scores, dtype=np.float64).reshape(len(codes), len(labels))
    return codes, proba


def _weighted_auc(
    codes: npt.NDArray[np.int64], proba: FloatArray, weights: FloatArray
) -> FloatArray:
    """ROC-AUC of each resample (a row of ``weights``: how often each row was drawn), as
    ``metrics.classification_metrics`` computes it: the Mann-Whitney U with ties counted
    half, one-vs-rest macro average beyond two classes, NaN unless every class and only the
    classes are labeled. Rows are sorted by score once; per resample it is sums, not ranks."""
    k = proba.shape[1]
    if k < 2 or len(codes) == 0:
        return np.full(len(weights), math.nan)
    one_hot = (codes[:, None] == np.arange(k)[None, :]).astype(np.float64)
    per_class = weights @ one_hot
    unseen = weights @ (codes < 0).astype(np.float64)
    defined = (unseen == 0) & np.all(per_class > 0, axis=1)
    curves = []
    for c in [1] if k == 2 else range(k):
        order = np.argsort(proba[:, c], kind="mergesort")
        score = proba[order, c]
        starts = np.flatnonzero(np.r_[True, score[1:] != score[:-1]])  # runs of equal scores
        drawn = weights[:, order]
        positive = codes[order] == c
        pos = np.add.reduceat(drawn * positive, starts, axis=1)
        neg = np.add.reduceat(drawn * ~positive, starts, axis=1)
        below = np.cumsum(neg, axis=1) - neg  # negatives scored lower than each run
        u = np.sum(pos * (below + 0.5 * neg), axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            curves.append(u / (np.sum(pos, axis=1) * np.sum(neg, axis=1)))
    auc: FloatArray = np.where(defined, np.mean(curves, axis=0), math.nan)
    return auc


def _relative(candidate: FloatArray, production: FloatArray) -> FloatArray:
    """``(candidate - production) / |production|``, capped at ``MAX_RELATIVE``."""
    with np.errstate(divide="ignore", invalid="ignore"):
        change = (candidate - production) / np.abs(production)
    change = np.where(production == 0, np.sign(candidate - production) * MAX_RELATIVE, change)
    capped: FloatArray = np.clip(change, -MAX_RELATIVE, MAX_RELATIVE)
    return capped


# --- formatting -------------------------------------------------------------------------------


def _finite(value: float | None) -> float | None:
    """JSON holds no NaN or infinity: those are "no value"."""
    if value is None or not math.isfinite(value):
        return None
    return float(value)


def _negate(value: float | None) -> float | None:
    return None if value is None else -value


def _share(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2%}".replace(".00%", "%")


def _duration(seconds: float) -> str:
    """Rounded down, so a wait never reads as the bound it has not reached."""
    if seconds < 120:
        return f"{math.floor(seconds)} s"
    if seconds < 7200:
        return f"{math.floor(seconds / 6) / 10:g} min"
    return f"{math.floor(seconds / 360) / 10:g} h"
