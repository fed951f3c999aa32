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
  ``max_quality_degradation`` (relative, in the metric's direction) by the always-valid
  sequential test (``domain.rollout_sequential``, from ``min_labels`` labeled predictions per
  variant); disagreement (shadow) or
  prediction PSI above their bars when set (from ``min_requests`` pairs / candidate rows).
- Promote: no breach, ``min_bake_minutes`` elapsed, ``min_requests`` candidate rows and, unless
  ``require_labels`` is false, live quality *shown* within the tolerance by the sequential
  test. On a ramp (``canary_steps``) that pass is ``step_up`` until the last step, and the
  step's own bake and labels count.
- After ``max_bake_hours`` with neither: ``on_inconclusive``, except that a candidate with
  fewer than ``min_requests`` rows is never promoted (one that fails to load has none).
  Otherwise wait, saying for what.

Statistics: the sequential test decides (its error rate holds however often the evaluator
looks). Beside it, for reading (deciding only for ROC-AUC, which has no sequential form),
``domain.comparison``'s percentile bootstrap interval of the relative change of the metric,
``(candidate - production) / |production|``. Shadow: both variants scored the same requests,
so labels are joined to both by prediction id and the same ids are resampled for both
(paired: the noise of the requests cancels, a small consistent improvement shows at a size where
independent samples cannot show it). Canary: each prediction was answered by one variant, so
the two samples are resampled independently. Judging a 10 % canary after a day at 1M
predictions, 10 % labeled (~10,000 labels a variant), takes 1.3 s from the digests, most of
it the bootstrap (``benchmarks/monitoring_cost.py``).

A small window never decides by noise: no rule is judged before its minimum evidence, and a
breach or a promotion needs the whole always-valid interval on one side of the tolerance.
Under a week of hourly looks its false promotions and rollbacks stay under the nominal level
(``benchmarks/foresight_rollouts.py``; the bootstrap looked at as often: up to ~20 %).

The measurements are ``domain.rollout_statistics``'s, the checks and the decision
``domain.rollout_policy``'s; this module puts them together into the verdict.

numpy only and pure: it runs in the evaluator Lambda, without scipy or scikit-learn.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from mlops.domain import rollout_statistics as stats
from mlops.domain.comparison import Comparison, compare
from mlops.domain.comparison import finite_or_none as _finite
from mlops.domain.config import METRICS, RolloutConfig
from mlops.domain.rollout_policy import (
    Check,
    Ramp,
    bake_check,
    decide,
    disagreement_check,
    error_check,
    latency_check,
    psi_check,
    quality_check,
    requests_check,
)
from mlops.domain.rollout_sequential import SequentialTest, sequential_test
from mlops.domain.serving import Serving


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

    decision: str  # "wait" | "promote" | "step_up" | "rollback"
    reasons: tuple[str, ...]
    checks: tuple[Check, ...]
    mode: str
    production: VariantSummary
    candidate: VariantSummary
    quality: Comparison  # the bootstrap interval: for reading (decides only for ROC-AUC)
    sequential: SequentialTest  # what decides on live quality
    disagreement: float | None  # shadow: share of paired predictions that differ
    prediction_psi: float | None
    elapsed_seconds: float
    ramp: Ramp | None = None

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
            "quality": self.quality.as_dict()
            | {"interval_kind": "fixed-sample bootstrap, for reading"},
            "sequential": self.sequential.as_dict(),
            "ramp": None if self.ramp is None else self.ramp.as_dict(),
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
    ramp: Ramp | None = None,
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
        production=stats.digest(production_rows, task),
        candidate=stats.digest(candidate_rows, task),
        candidate_version=None,
        labeled_production=production_rows,
        labeled_candidate=candidate_rows,
        feedback_rows=feedback_rows,
        label_delay_ms=label_delay_ms,
        elapsed_seconds=elapsed_seconds,
        config=config,
        seed=seed,
        ramp=ramp,
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
    ramp: Ramp | None = None,
) -> RolloutVerdict:
    """The verdict from each variant's serving digest since the rollout began
    (``domain.serving``: counts, failures, latencies, answers) and its labeled capture rows
    with the feedback for them. Failures production's digest holds count against
    ``candidate_version`` (None: all of them). On a ``ramp``, the bake and the candidate's
    labels count from the step's start, and a pass before the last step is ``step_up``.
    Deterministic for a ``seed``."""
    if mode not in ("shadow", "canary"):
        raise ValueError(f"a rollout is judged in shadow or canary mode, not {mode!r}")
    if task not in METRICS:
        raise ValueError(f"unknown task {task!r}")
    if metric not in METRICS[task]:
        raise ValueError(f"{metric!r} is not a {task} metric")
    rng = np.random.default_rng(seed)
    labels = stats.latest_labels(feedback_rows)
    scores = stats.score_reader(metric, [str(c) for c in classes])
    paired = mode == "shadow"
    failed = (
        sum(production.failed.values())
        if candidate_version is None
        else production.failed_for(candidate_version)
    )
    prod, cand = (
        stats.Traffic(
            rows=digest.rows,
            predictions=digest.predictions,
            failed=count,
            answers=dict(digest.answers),
            latency=np.fromiter((ms for _, ms in digest.latencies), dtype=np.float64),
            sample=stats.labeled_sample(
                rows, labels, task=task, scores=scores, delay_ms=label_delay_ms
            ),
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
    samples = stats.pair(prod.sample, cand.sample) if paired else (prod.sample, cand.sample)
    sequential = sequential_test(
        *samples,
        task=task,
        metric=metric,
        greater_is_better=greater_is_better,
        paired=paired,
        confidence=config.confidence,
        tolerance=config.max_quality_degradation,
    )
    quality = compare(
        *samples,
        task=task,
        classes=classes,
        metric=metric,
        greater_is_better=greater_is_better,
        paired=paired,
        confidence=config.confidence,
        tolerance=config.max_quality_degradation,
        rng=rng,
    )
    disagreement, pairs = stats.disagreement(task, prod, cand) if paired else (None, 0)
    prediction_psi = stats.prediction_psi(task, prod, cand)

    step_labels = (
        None
        if ramp is None
        else stats.labels_since(cand.sample.ids, labeled_candidate, ramp.started_ms)
    )
    checks = (
        # A step's bake from its start (the first step's, as the rollout's, from the first answer)
        bake_check(
            elapsed_seconds if ramp is None else min(elapsed_seconds, ramp.elapsed_seconds),
            config,
        ),
        requests_check(cand.rows, config),
        error_check(prod.failed, cand.rows - cand.predictions, attempts, config),
        latency_check(prod.latency, cand.latency, cand.rows, config),
        quality_check(quality, sequential, config, step_labels),
        disagreement_check(mode, disagreement, pairs, config),
        psi_check(task, prediction_psi, cand.rows, config),
    )
    decision, reasons = decide(checks, elapsed_seconds, config)
    if decision == "promote" and cand.rows < config.min_requests:
        # on_inconclusive = promote after max_bake_hours: never for a candidate that barely
        # served (one that fails to load in every container has no rows at all).
        decision = "rollback"
        reasons.append(
            f"not promoted on inconclusive: {cand.rows:,} candidate requests, fewer than the "
            f"{config.min_requests:,} needed; the candidate may not be serving"
        )
    if decision == "promote" and ramp is not None and ramp.next_percent is not None:
        decision = "step_up"
        reasons.insert(
            0,
            f"{ramp.describe()} passed: the share moves to {ramp.next_percent:g} % "
            "(a new step: its own bake and labels)",
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
            latency_p50_ms=stats.percentile(prod.latency, 50),
            latency_p95_ms=stats.percentile(prod.latency, 95),
            labels=len(prod.sample.ids),
            metric_value=quality.production,
        ),
        candidate=VariantSummary(
            rows=cand.rows,
            predictions=cand.predictions,
            attempts=attempts,
            errors=errors,
            error_rate=errors / attempts if attempts else None,
            latency_p50_ms=stats.percentile(cand.latency, 50),
            latency_p95_ms=stats.percentile(cand.latency, 95),
            labels=len(cand.sample.ids),
            metric_value=quality.candidate,
        ),
        quality=quality,
        sequential=sequential,
        disagreement=disagreement,
        prediction_psi=prediction_psi,
        elapsed_seconds=float(elapsed_seconds),
        ramp=ramp,
    )
