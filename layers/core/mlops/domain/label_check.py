"""The label check: do a new upload's labels agree with what production predicts for the same
inputs? Labels that production's own holdout error cannot explain hold a challenger back
(``domain.gate.judge``), whatever its metrics say: the uploader controls them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from mlops.domain.config import Task

# Classification: production's error on its own holdout can be near 0; fresh data is never
# expected to be that easy, so the label check's bar is never below this error rate.
MIN_LABEL_ERROR_RATE = 0.05


@dataclass(frozen=True)
class LabelCheck:
    """Do the new labels agree with what production predicts for the same inputs?
    ``ratio``: production's error on the new rows over its error on its own holdout."""

    metric: str  # "mae" (regression) or "error_rate" (classification)
    new_error: float
    own_error: float
    ratio: float
    limit: float
    rows: int
    evidence: dict[str, float]

    @property
    def flagged(self) -> bool:
        return self.ratio > self.limit

    @property
    def detail(self) -> str:
        shown = "MAE" if self.metric == "mae" else "error rate"
        said = (
            f"production's {shown} on {self.rows:,} new rows is {self.ratio:,.3g}x its own "
            f"holdout {shown} ({self.new_error:,.6g} vs {self.own_error:,.6g}; limit "
            f"{self.limit:g}x)"
        )
        if self.evidence:
            said += " [" + ", ".join(f"{k} {v:,.3g}" for k, v in self.evidence.items()) + "]"
        return said

    def as_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "new_error": self.new_error,
            "own_error": self.own_error,
            "ratio": self.ratio if math.isfinite(self.ratio) else None,
            "limit": self.limit,
            "rows": self.rows,
            "flagged": self.flagged,
            "evidence": self.evidence,
            "detail": self.detail,
        }


def check_labels(
    task: Task,
    predicted: Sequence[Any] | np.ndarray[Any, Any],
    actual: Sequence[Any] | np.ndarray[Any, Any],
    own_metrics: Mapping[str, float],
    limit: float,
) -> LabelCheck | None:
    """Production's predictions on the new rows against their labels, next to production's
    error on its own holdout (``own_metrics``, from its manifest). None when production has no
    such metric or there are no rows."""
    if len(actual) == 0:
        return None
    if task == "regression":
        own = own_metrics.get("mae")
        if own is None or not math.isfinite(own):
            return None
        y = np.asarray(actual, dtype=np.float64)
        p = np.asarray(predicted, dtype=np.float64)
        new = float(np.mean(np.abs(p - y)))
        evidence: dict[str, float] = {}
        typical = float(np.median(np.abs(p)))
        if typical > 0:
            evidence["label scale vs predictions"] = float(np.median(np.abs(y))) / typical
            evidence["opposite sign share"] = float(np.mean(np.sign(y) == -np.sign(p)))
            evidence["median shift vs predictions"] = float(np.median(y - p)) / typical
        metric, floor = "mae", 0.0
    else:
        accuracy = own_metrics.get("accuracy")
        if accuracy is None or not math.isfinite(accuracy):
            return None
        own = 1.0 - accuracy
        new = float(np.mean([str(a) != str(b) for a, b in zip(actual, predicted, strict=True)]))
        evidence = {}
        metric, floor = "error_rate", MIN_LABEL_ERROR_RATE
    bar = max(own, floor)
    ratio = new / bar if bar > 0 else (math.inf if new > 0 else 1.0)
    return LabelCheck(metric, new, own, ratio, limit, len(actual), evidence)
