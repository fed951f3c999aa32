"""The rollout's rules as checks, and the decision they make: each check is "pass", "breach",
"pending" (not enough evidence yet) or "off"; any breach rolls back, promotion needs every
check it counts to pass, and ``max_bake_hours`` ends an inconclusive wait
(``RolloutConfig``'s docstring is the spec). What the checks read is
``domain.rollout_statistics``'s; ``domain.rollout.judge`` puts the two together.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mlops.domain.comparison import Comparison
from mlops.domain.comparison import finite_or_none as _finite
from mlops.domain.config import RolloutConfig
from mlops.domain.quality import show_metric
from mlops.domain.rollout_sequential import (
    NOT_WORSE,
    UNAVAILABLE,
    WORSE,
    SequentialTest,
    describe,
)
from mlops.domain.rollout_statistics import MIN_PSI_ROWS, FloatArray, percentile


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
class Ramp:
    """Where a stepped canary is (``RolloutConfig.canary_steps``): the share now, the next
    step (None: the last, so a pass promotes), the step's number (1-based; 0 when the share
    is not one of the steps, as after a start by hand) and when it began. Its bake and its
    labels count from that moment; live quality's evidence from the rollout's start."""

    steps: tuple[float, ...]
    percent: float
    started_ms: int
    elapsed_seconds: float

    @property
    def index(self) -> int:
        return self.steps.index(self.percent) + 1 if self.percent in self.steps else 0

    @property
    def next_percent(self) -> float | None:
        return next((p for p in self.steps if p > self.percent), None)

    def as_dict(self) -> dict[str, Any]:
        return {
            "steps": list(self.steps),
            "percent": self.percent,
            "step": self.index,
            "of": len(self.steps),
            "next_percent": self.next_percent,
            "step_started_ms": self.started_ms,
            "step_elapsed_seconds": _finite(self.elapsed_seconds),
        }

    def describe(self) -> str:
        where = f"step {self.index} of {len(self.steps)}" if self.index else "off the steps"
        return f"{where} ({self.percent:g} % of requests)"


def decide(
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


def bake_check(elapsed: float, config: RolloutConfig) -> Check:
    needed = config.min_bake_minutes * 60
    done = elapsed >= needed
    return Check(
        "bake",
        "pass" if done else "pending",
        float(elapsed),
        needed,
        f"baked {_duration(elapsed)} of the {_duration(needed)} required",
    )


def requests_check(rows: int, config: RolloutConfig) -> Check:
    done = rows >= config.min_requests
    return Check(
        "requests",
        "pass" if done else "pending",
        float(rows),
        float(config.min_requests),
        f"{rows:,} candidate requests ({config.min_requests:,} needed)",
    )


def error_check(failed: int, unusable: int, attempts: int, config: RolloutConfig) -> Check:
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


def latency_check(
    production: FloatArray, candidate: FloatArray, candidate_rows: int, config: RolloutConfig
) -> Check:
    prod_p95, cand_p95 = percentile(production, 95), percentile(candidate, 95)
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


def quality_check(
    quality: Comparison,
    sequential: SequentialTest,
    config: RolloutConfig,
    step_labels: int | None = None,
) -> Check:
    """Live quality by the always-valid sequential test (``domain.rollout_sequential``): a
    breach when it says worse than the tolerance, a pass when it says not worse (and, on a
    ramp's step, ``min_labels`` candidate labels came since the step began: ``step_labels``).
    The bootstrap interval is shown for reading; it decides only for ROC-AUC, which has no
    sequential test."""
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
    if sequential.verdict != UNAVAILABLE and sequential.z is not None:
        return _sequential_check(quality, sequential, config, step_labels, counted)
    if (
        quality.production is None
        or quality.candidate is None
        or point is None
        or low is None
        or high is None
    ):
        return Check("quality", "pending", None, tolerance, f"live {metric} not measurable yet")
    shown = (
        f"{_bootstrap_shown(quality, counted)} (fixed-sample bootstrap decides: "
        f"{sequential.detail}; repeated looks raise its error rate)"
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


def _sequential_check(
    quality: Comparison,
    sequential: SequentialTest,
    config: RolloutConfig,
    step_labels: int | None,
    counted: str,
) -> Check:
    tolerance = quality.tolerance
    point = quality.degradation[0]
    if quality.production is None or quality.candidate is None:
        shown = f"live {quality.metric} ({counted})"
    else:
        shown = f"{_bootstrap_shown(quality, counted)}, for reading"
    shown = f"{shown}; {describe(sequential)}"
    if sequential.verdict == WORSE:
        return Check(
            "quality",
            "breach",
            point,
            tolerance,
            f"{shown}: worse than the {tolerance:.1%} tolerance",
        )
    if sequential.verdict == NOT_WORSE:
        if step_labels is not None and step_labels < config.min_labels:
            return Check(
                "quality",
                "pending",
                point,
                tolerance,
                f"{shown}; {step_labels:,} candidate labels since this step began, "
                f"{config.min_labels:,} needed",
            )
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


def _bootstrap_shown(quality: Comparison, counted: str) -> str:
    """The metrics and the bootstrap interval of the relative change, as a reader sees them."""
    metric = quality.metric
    change = quality.relative_change or 0.0
    if change == 0:
        direction = "no change"
    else:
        better = (change < 0) != quality.greater_is_better
        direction = f"{abs(change):.1%} {'better' if better else 'worse'}"
    interval = (
        "no bootstrap interval"
        if quality.ci_low is None or quality.ci_high is None
        else f"bootstrap {quality.confidence:.0%} interval {quality.ci_low:+.1%} to "
        f"{quality.ci_high:+.1%}"
    )
    candidate, production = (
        "n/a" if v is None else show_metric(metric, v)
        for v in (quality.candidate, quality.production)
    )
    return (
        f"live {metric} {candidate} vs production {production}: {direction} ({interval}, {counted})"
    )


def disagreement_check(mode: str, value: float | None, pairs: int, config: RolloutConfig) -> Check:
    limit = config.max_disagreement
    if mode != "shadow":
        return Check("disagreement", "off", None, limit, "canary: no paired predictions")
    return _bar_check(
        "disagreement",
        value,
        limit,
        shown=f"disagreement {_share(value)} of {pairs:,} paired predictions",
        enough=pairs >= config.min_requests,
        needed=f"{config.min_requests:,} pairs",
        show_limit=_share,
    )


def psi_check(task: str, value: float | None, rows: int, config: RolloutConfig) -> Check:
    limit = config.max_prediction_psi
    if task != "regression":
        return Check("prediction_psi", "off", None, limit, "predictions are not numeric")
    return _bar_check(
        "prediction_psi",
        value,
        limit,
        shown="prediction PSI " + ("n/a" if value is None else f"{value:.3f}"),
        enough=rows >= config.min_requests,
        needed=f"{max(config.min_requests, MIN_PSI_ROWS):,} rows per variant",
        show_limit="{:g}".format,
    )


def _bar_check(
    name: str,
    value: float | None,
    limit: float | None,
    *,
    shown: str,
    enough: bool,
    needed: str,
    show_limit: Callable[[float], str],
) -> Check:
    """A measure against an optional upper bar: off without one, pending until there is a
    value and enough evidence (``needed`` says how much), then a breach above the bar."""
    if limit is None:
        return Check(name, "off", value, None, f"{shown} (no bar set)")
    if value is None or not enough:
        return Check(name, "pending", value, limit, f"{shown}; judged from {needed}")
    if value > limit:
        return Check(name, "breach", value, limit, f"{shown} is above {show_limit(limit)}")
    return Check(name, "pass", value, limit, f"{shown}, within {show_limit(limit)}")


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
