"""Live quality: predictions joined with the ground truth that arrived for them.

Labels arrive late (a house sells weeks after its price was predicted), so a prediction is
joined with a label that came within ``label_delay`` of it; the last label for a prediction
wins (feedback can be corrected). Quality is measured with the metrics the gate uses
(``domain.metrics``) and compared with the version's holdout value: concept drift, where the
inputs stay put but their relation to the target moves, shows here and nowhere else.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import numpy as np

from mlops.domain.capture import MAX_LABEL_MAGNITUDE
from mlops.domain.metrics import classification_metrics, regression_metrics


@dataclass(frozen=True)
class Joined:
    """Labeled predictions, in capture time order."""

    ts: list[int]  # capture time, ms
    predictions: list[Any]
    actuals: list[Any]
    probabilities: list[Mapping[str, float] | None]
    captured: int
    labels: int
    unmatched_labels: int  # labels for predictions not in the window (or never captured)


@dataclass(frozen=True)
class QualityResult:
    metric: str
    greater_is_better: bool
    labels: int  # joined labels the metrics are computed on
    value: float | None
    holdout: float | None
    tolerance: float
    breach: bool
    enough_labels: bool
    metrics: dict[str, float] = field(default_factory=dict)
    over_time: list[dict[str, Any]] = field(default_factory=list)
    reason: str = ""
    # Joined labels left out: a prediction or label that is not a number, not finite, or too
    # large to square (older data may hold them; /feedback refuses them now).
    skipped_labels: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "greater_is_better": self.greater_is_better,
            "labels": self.labels,
            "skipped_labels": self.skipped_labels,
            "value": self.value,
            "holdout": self.holdout,
            "tolerance": self.tolerance,
            "breach": self.breach,
            "enough_labels": self.enough_labels,
            "metrics": self.metrics,
            "over_time": self.over_time,
            "reason": self.reason,
        }


def join(
    captures: Iterable[Mapping[str, Any]],
    feedback: Iterable[Mapping[str, Any]],
    *,
    version: str | None = None,
    label_delay_ms: int,
) -> Joined:
    """Captured rows (``capture.capture_rows``) of ``version`` (all when None) joined with
    feedback rows (``capture.feedback_rows``) that arrived within ``label_delay_ms``."""
    labels: dict[str, tuple[int, Any]] = {}
    label_rows = 0
    for row in feedback:
        pid, ts = row.get("prediction_id"), row.get("ts")
        if not isinstance(pid, str) or not isinstance(ts, int):
            continue
        label_rows += 1
        if pid not in labels or ts >= labels[pid][0]:  # the last label wins
            labels[pid] = (ts, row.get("actual"))
    joined: list[tuple[int, Any, Any, Any]] = []
    seen: set[str] = set()
    captured = 0
    for row in captures:
        if version is not None and str(row.get("version")) != version:
            continue
        captured += 1
        pid, ts = row.get("prediction_id"), row.get("ts")
        if not isinstance(pid, str) or not isinstance(ts, int) or pid in seen:
            continue
        label = labels.get(pid)
        if label is None or not 0 <= label[0] - ts <= label_delay_ms:
            continue
        seen.add(pid)
        joined.append((ts, row.get("prediction"), label[1], row.get("probabilities")))
    joined.sort(key=lambda item: item[0])
    return Joined(
        ts=[j[0] for j in joined],
        predictions=[j[1] for j in joined],
        actuals=[j[2] for j in joined],
        probabilities=[j[3] for j in joined],
        captured=captured,
        labels=label_rows,
        unmatched_labels=len(labels.keys() - seen),
    )


def measure(
    joined: Joined,
    *,
    task: str,
    classes: Sequence[Any],
    metric: str,
    greater_is_better: bool,
    holdout: float | None,
    tolerance: float,
    min_labels: int,
    period_ms: int = 3_600_000,
) -> QualityResult:
    """Live metrics over the joined labels, per period too, and whether ``metric`` is worse
    than ``holdout`` by more than ``tolerance`` (relative): a breach, judged only with at least
    ``min_labels`` labels. Regression rows whose prediction or label cannot be squared to a
    finite number are skipped and counted; a metric that still comes out non-finite is left
    out, so the result never holds NaN or infinity."""
    joined, skipped = _usable(joined, task)
    count = len(joined.actuals)
    enough = count >= min_labels
    base = QualityResult(
        metric=metric,
        greater_is_better=greater_is_better,
        labels=count,
        value=None,
        holdout=holdout,
        tolerance=tolerance,
        breach=False,
        enough_labels=enough,
        skipped_labels=skipped,
    )
    if count == 0:
        reason = "no labeled predictions in the window"
        if skipped:
            reason += f" ({skipped} skipped: not finite or too large to square)"
        return replace(base, reason=reason)
    metrics = _metrics(task, classes, joined.predictions, joined.actuals, joined.probabilities)
    value = metrics.get(metric)
    over_time = []
    buckets: dict[int, list[int]] = {}
    for i, ts in enumerate(joined.ts):
        buckets.setdefault(ts // period_ms, []).append(i)
    for bucket, index in sorted(buckets.items()):
        part = _metrics(
            task,
            classes,
            [joined.predictions[i] for i in index],
            [joined.actuals[i] for i in index],
            [joined.probabilities[i] for i in index],
        )
        over_time.append(
            {
                "start": _iso(bucket * period_ms),
                "end": _iso((bucket + 1) * period_ms),
                "labels": len(index),
                "value": part.get(metric),
                "metrics": part,
            }
        )
    if not enough:
        reason = f"{count} labels, fewer than the {min_labels} needed to judge live quality"
        return replace(base, value=value, metrics=metrics, over_time=over_time, reason=reason)
    if value is None or holdout is None or not math.isfinite(holdout):
        overflowed = value is None and task == "regression" and metric in _REGRESSION
        return replace(
            base,
            value=value,
            metrics=metrics,
            over_time=over_time,
            reason=f"no {metric} to compare with the holdout"
            + (" (not finite: labels or predictions of extreme magnitude)" if overflowed else ""),
        )
    worse = (holdout - value) if greater_is_better else (value - holdout)
    relative = worse / abs(holdout) if holdout else (math.inf if worse > 0 else 0.0)
    breach = relative > tolerance
    direction = "worse" if worse > 0 else "better"
    reason = (
        f"live {metric} {show_metric(metric, value)} vs holdout {show_metric(metric, holdout)} "
        f"({abs(relative):.1%} {direction}; breach above {tolerance:.0%} worse)"
    )
    return replace(
        base, value=value, breach=breach, metrics=metrics, over_time=over_time, reason=reason
    )


def _usable(joined: Joined, task: str) -> tuple[Joined, int]:
    """``joined`` without the regression rows no metric can be computed on, and their count."""
    if task != "regression":
        return joined, 0
    keep = [
        i
        for i, (p, a) in enumerate(zip(joined.predictions, joined.actuals, strict=True))
        if _squarable(p) and _squarable(a)
    ]
    if len(keep) == len(joined.actuals):
        return joined, 0
    usable = replace(
        joined,
        ts=[joined.ts[i] for i in keep],
        predictions=[joined.predictions[i] for i in keep],
        actuals=[joined.actuals[i] for i in keep],
        probabilities=[joined.probabilities[i] for i in keep],
    )
    return usable, len(joined.actuals) - len(keep)


def _metrics(
    task: str,
    classes: Sequence[Any],
    predictions: list[Any],
    actuals: list[Any],
    probabilities: list[Mapping[str, float] | None],
) -> dict[str, float]:
    """The task's metrics, without any that came out NaN or infinite (many labels near
    ``MAX_LABEL_MAGNITUDE`` can still overflow a sum of squares)."""
    if task == "regression":
        if not actuals:
            return {}
        with np.errstate(over="ignore", invalid="ignore"):  # an overflow is dropped below
            computed = regression_metrics(actuals, predictions)
    else:
        keys = [str(c) for c in classes]
        matrix = np.asarray(
            [[float((row or {}).get(k, 0.0)) for k in keys] for row in probabilities],
            dtype=np.float64,
        )
        computed = classification_metrics(actuals, predictions, matrix, classes)
    return {name: value for name, value in computed.items() if math.isfinite(value)}


_REGRESSION = frozenset({"rmse", "mae", "r2", "mape"})


def _squarable(value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    try:
        return abs(float(value)) <= MAX_LABEL_MAGNITUDE  # False for NaN and infinity too
    except OverflowError:  # an integer beyond float64
        return False


def show_metric(metric: str, value: float) -> str:
    """A metric as a person reads it: MAPE and accuracy as percentages, the rest as numbers."""
    if metric in ("mape", "accuracy"):
        return f"{value:.2%}"
    return f"{value:,.6g}"


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="seconds")
