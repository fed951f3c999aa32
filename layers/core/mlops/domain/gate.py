"""The champion/challenger decision: pure, so every rule is tested on numbers alone.

Semantics follow MLflow's ``MetricThreshold`` (see ``PromotionConfig``): an optional absolute
``threshold``, and the challenger's improvement over the champion, measured in the direction
that is better for the metric, must reach ``min_absolute_change`` and ``min_relative_change``.
A shortfall within float64 rounding is a tie (0.85 against 0.80 reaches 0.05). Against a
champion of 0 the relative change is undefined: the challenger must be strictly better, as in
MLflow. A champion without the metric (missing or NaN) is no bar: the challenger is judged as a
first model, against the naive baseline and the threshold.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mlops.domain.config import PromotionConfig, Task
from mlops.domain.schema import Signature


@dataclass(frozen=True)
class GateDecision:
    passed: bool
    metric: str
    greater_is_better: bool
    challenger: float
    champion: float | None  # None: no champion to compare with (the first model)
    naive: float | None  # the no-skill baseline, the bar for a first model
    reasons: tuple[str, ...]

    @property
    def improvement(self) -> float | None:
        """How much better the challenger is, in the metric's good direction."""
        if self.champion is None:
            return None
        delta = self.challenger - self.champion
        return delta if self.greater_is_better else -delta

    def as_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "metric": self.metric,
            "greater_is_better": self.greater_is_better,
            "challenger": self.challenger,
            "champion": self.champion,
            "naive": self.naive,
            "improvement": self.improvement,
            "reasons": list(self.reasons),
        }


def decide(
    policy: PromotionConfig,
    task: Task,
    challenger: Mapping[str, float],
    champion: Mapping[str, float] | None,
    naive: Mapping[str, float] | None = None,
) -> GateDecision:
    """Does ``challenger`` (metrics on the shared holdout) earn promotion over ``champion``
    (the production model's metrics on the same rows, None when there is none)?"""
    metric = policy.metric_for(task)
    higher = policy.greater_is_better(task)
    value = challenger.get(metric)
    if value is None or math.isnan(value):  # missing or NaN (e.g. ROC-AUC on a one-class holdout)
        return GateDecision(
            False, metric, higher, float("nan"), None, None,
            (f"the challenger has no {metric} on the holdout",),
        )  # fmt: skip
    reasons: list[str] = []
    passed = True

    def better(a: float, b: float) -> bool:
        return a > b if higher else a < b

    def meets(a: float, bar: float) -> bool:
        return a >= bar if higher else a <= bar

    word = ">=" if higher else "<="
    if policy.threshold is not None and not meets(value, policy.threshold):
        passed = False
        reasons.append(
            f"{metric} {value:,.6g} does not meet the threshold ({word} {policy.threshold:,.6g})"
        )

    champion_value = None if champion is None else champion.get(metric)
    if champion_value is not None and math.isnan(champion_value):
        champion_value = None  # a production model that cannot be measured is no bar
    if champion is not None and champion_value is None:
        reasons.append(f"production has no {metric} on the holdout: judged as a first model")
    naive_value = None if naive is None else naive.get(metric)
    if champion_value is None:
        if naive_value is not None and not better(value, naive_value):
            passed = False
            reasons.append(
                f"{metric} {value:,.6g} is no better than a model that ignores its inputs "
                f"({naive_value:,.6g})"
            )
        elif passed:
            reasons.append(
                f"first model: {metric} {value:,.6g}"
                + (
                    f", better than the no-skill baseline {naive_value:,.6g}"
                    if naive_value is not None
                    else ""
                )
            )
        return GateDecision(passed, metric, higher, value, None, naive_value, tuple(reasons))

    improvement = value - champion_value if higher else champion_value - value
    required: list[str] = []
    if not _reaches(improvement, policy.min_absolute_change, value, champion_value):
        required.append(f"an improvement of at least {policy.min_absolute_change:,.6g}")
    if champion_value == 0:
        # The relative change is undefined; MLflow falls back to "strictly better".
        relative = math.copysign(math.inf, improvement) if improvement else 0.0
        change = f"{improvement:+,.6g}"
        if relative < policy.min_relative_change:
            required.append("it to be strictly better (against 0 no relative change exists)")
    else:
        relative = improvement / abs(champion_value)
        change = (
            f"{abs(relative):.2%} {'better' if improvement > 0 else 'worse'}"
            if improvement
            else "no change"
        )
        if not _reaches(
            improvement, policy.min_relative_change * abs(champion_value), value, champion_value
        ):
            required.append(f"at least {policy.min_relative_change:.2%} better")
    if len(required) == 2 and policy.min_absolute_change == 0:
        required.pop(0)  # "at least 0 better" says nothing the relative bar does not
    head = f"{metric} {value:,.6g} vs production {champion_value:,.6g} ({change})"
    if required:
        passed = False
        reasons.append(f"{head}: the gate requires {' and '.join(required)}")
    elif passed:
        reasons.append(head)
    return GateDecision(passed, metric, higher, value, champion_value, naive_value, tuple(reasons))


def _reaches(improvement: float, bar: float, value: float, champion: float) -> bool:
    """``improvement >= bar``, where a shortfall within the float64 rounding of the operands
    is a tie: 0.85 against 0.80 improves by exactly 0.05 as written, though not in binary."""
    scale = max((abs(x) for x in (value, champion, bar) if math.isfinite(x)), default=0.0)
    slack = 8 * sys.float_info.epsilon * scale
    return improvement >= bar - slack


def feature_set_change(production: Signature, challenger: Signature) -> str | None:
    """Why ``challenger`` is not a new version of the production model, or None when its
    features are the same (names, types, order). New categories are expected: not a change."""
    old = [(f.name, f.type) for f in production.features]
    new = [(f.name, f.type) for f in challenger.features]
    if old == new:
        return None
    old_names = {n for n, _ in old}
    new_names = {n for n, _ in new}
    parts = []
    if added := [n for n, _ in new if n not in old_names]:
        parts.append("added " + ", ".join(added))
    if removed := [n for n, _ in old if n not in new_names]:
        parts.append("removed " + ", ".join(removed))
    old_types = dict(old)
    if retyped := [f"{n} ({old_types[n]} -> {t})" for n, t in new if old_types.get(n, t) != t]:
        parts.append("changed type of " + ", ".join(retyped))
    if not parts:
        parts.append("reordered features")
    return "; ".join(parts)
