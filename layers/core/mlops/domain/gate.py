"""The champion/challenger decision: pure, so every rule is tested on numbers alone.

``judge`` is the gate (``PromotionConfig``'s docstring is the spec): a paired bootstrap of both
models' per-row losses on each set of rows (the uploaded holdout, recent labeled traffic,
production's golden set), the label check (``domain.label_check``) of the new labels against
what production predicts for the same inputs, and ``decide``'s MLflow-style conditions on the
point values. Its outcome is ``passed``, ``inconclusive``, ``held`` or ``rejected``.

``decide``'s semantics follow MLflow's ``MetricThreshold`` (see ``PromotionConfig``): an
optional absolute ``threshold``, and the challenger's improvement over the champion, measured
in the direction that is better for the metric, must reach ``min_absolute_change`` and
``min_relative_change``. A shortfall within float64 rounding is a tie (0.85 against 0.80
reaches 0.05). Against a champion of 0 the relative change is undefined: the challenger must be
strictly better, as in MLflow. A champion without the metric (missing or NaN) is no bar: the
challenger is judged as a first model, against the naive baseline and the threshold.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from mlops.domain.comparison import Comparison, Sample, compare
from mlops.domain.config import PromotionConfig, Task
from mlops.domain.label_check import LabelCheck
from mlops.domain.quality import show_metric
from mlops.domain.schema import Signature

PASSED, INCONCLUSIVE, HELD, REJECTED = "passed", "inconclusive", "held", "rejected"
SET_DESCRIPTIONS = {
    "holdout": "the new data's holdout",
    "traffic": "recent labeled traffic",
    "golden": "production's golden set",
    "no_skill": "the new data's holdout",
}
# Per set: 1,000 percentile-bootstrap resamples put a 95 % interval's ends within about a
# tenth of its width of the 2,000 the rollout judge draws, at half the cost.
GATE_RESAMPLES = 1_000


@dataclass(frozen=True)
class RowSet:
    """One set of labeled rows that both models (or the challenger and the no-skill model)
    answered, row for row."""

    name: str  # "holdout" | "traffic" | "golden" | "no_skill"
    champion: Sample
    challenger: Sample
    note: str = ""  # where the rows come from, for the report

    @property
    def rows(self) -> int:
        return len(self.challenger.ids)


@dataclass(frozen=True)
class SetVerdict:
    """The paired comparison on one set and what it says: ``better``, ``worse`` (beyond
    ``tolerance``), ``equivalent`` (the interval within the margin), ``inconclusive``, or
    ``unused`` (too few rows)."""

    name: str
    rows: int
    verdict: str
    comparison: Comparison | None
    detail: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "set": self.name,
            "rows": self.rows,
            "verdict": self.verdict,
            "comparison": None if self.comparison is None else self.comparison.as_dict(),
            "detail": self.detail,
        }


@dataclass(frozen=True)
class GateDecision:
    passed: bool
    metric: str
    greater_is_better: bool
    challenger: float
    champion: float | None  # None: no champion to compare with (the first model)
    naive: float | None  # the no-skill baseline, the bar for a first model
    reasons: tuple[str, ...]
    outcome: str = ""  # passed | inconclusive | held | rejected ("" : decide() alone)
    sets: tuple[SetVerdict, ...] = ()
    label_check: LabelCheck | None = None

    @property
    def verdict(self) -> str:
        return self.outcome or (PASSED if self.passed else REJECTED)

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
            "outcome": self.verdict,
            "sets": [v.as_dict() for v in self.sets],
            "label_check": None if self.label_check is None else self.label_check.as_dict(),
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

    word = ">=" if higher else "<="
    if policy.threshold is not None and not _meets(value, policy.threshold, higher):
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


def not_comparable(
    policy: PromotionConfig, task: Task, challenger: Mapping[str, float], reason: str
) -> GateDecision:
    """Rejected without a comparison: the challenger is not a new version of production's
    model (``reason``), so no metric of one is a bar for the other."""
    metric = policy.metric_for(task)
    return GateDecision(
        False, metric, policy.greater_is_better(task),
        challenger.get(metric, float("nan")), None, None, (reason,),
        outcome=REJECTED,
    )  # fmt: skip


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


def judge(
    policy: PromotionConfig,
    task: Task,
    *,
    challenger: Mapping[str, float],
    champion: Mapping[str, float] | None,
    naive: Mapping[str, float] | None,
    holdout: RowSet,
    references: Sequence[RowSet] = (),
    label_check: LabelCheck | None = None,
    classes: Sequence[Any] = (),
    seed: int = 0,
) -> GateDecision:
    """The gate's outcome. ``challenger``/``champion``/``naive``: metrics on the holdout (the
    point values ``decide`` judges); ``holdout``: its rows as both models (or, for a first
    model, the challenger and the no-skill model) answered them; ``references``: the traffic
    and golden sets; ``label_check``: the new labels against production's predictions."""
    points = decide(policy, task, challenger, champion, naive)
    metric, higher = points.metric, points.greater_is_better
    rng = np.random.default_rng(seed)
    first = points.champion is None
    reasons = list(points.reasons)
    if math.isnan(points.challenger):
        return replace(points, outcome=REJECTED)

    def verdict(rows: RowSet, tolerance: float, *, used: bool = True) -> SetVerdict:
        return _set_verdict(
            rows, policy, task=task, metric=metric, higher=higher, classes=classes,
            tolerance=tolerance, rng=rng, used=used,
        )  # fmt: skip

    if first:
        # The no-skill model in the champion's seat: the challenger must beat it on the whole
        # interval and by the margins; nothing live can prove a model with no production.
        bar = verdict(holdout, 0.0)
        reasons.append(f"against the no-skill model: {bar.detail}")
        passed = points.passed and (bar.verdict == "better" or naive is None)
        if points.passed and not passed:
            reasons.append("rejected: a first model must beat the no-skill model significantly")
        return replace(
            points, passed=passed, outcome=PASSED if passed else REJECTED, sets=(bar,),
            reasons=tuple(reasons),
        )  # fmt: skip

    sets = [verdict(holdout, 0.0)]
    by_name: dict[str, SetVerdict] = {}
    for rows in references:
        enough = rows.rows >= policy.min_reference_rows
        found = verdict(rows, policy.max_reference_degradation, used=enough)
        sets.append(found)
        by_name[rows.name] = found
    reasons = [r for r in reasons if not r.startswith(f"{metric} ")]  # restated per set below
    reasons.extend(f"{SET_DESCRIPTIONS.get(v.name, v.name)}: {v.detail}" for v in sets)
    if label_check is not None:
        reasons.append(f"labels: {label_check.detail}")

    held_out = sets[0]
    traffic = by_name.get("traffic")
    golden = by_name.get("golden")
    traffic_used = traffic is not None and traffic.verdict != "unused"
    golden_used = golden is not None and golden.verdict != "unused"
    if not (traffic_used or golden_used):
        reasons.append("no reference set could be used: judged on the uploaded holdout alone")
    threshold_failed = policy.threshold is not None and not _meets(
        points.challenger, policy.threshold, higher
    )
    if threshold_failed:
        outcome, why = REJECTED, "rejected: the absolute threshold is not met"
    elif held_out.verdict == "worse":
        outcome, why = REJECTED, "rejected: worse than production on the new data's holdout"
    elif held_out.verdict == "identical":
        outcome, why = (
            REJECTED,
            "rejected: it scores exactly as production on every holdout row: nothing to roll out",
        )
    elif traffic_used and traffic is not None and traffic.verdict == "worse":
        outcome, why = (
            REJECTED,
            "rejected: worse than production on recent labeled traffic, whatever its own "
            "holdout says",
        )
    elif label_check is not None and label_check.flagged:
        outcome, why = (
            HELD,
            "held: the new labels disagree with what production predicts for the same "
            "inputs; it may run only as a shadow until live labels clear it",
        )
    elif not traffic_used and golden_used and golden is not None and golden.verdict == "worse":
        outcome, why = (
            HELD,
            "held: worse than production on its golden set and no recent labels to show the "
            "world moved; it may run only as a shadow until live labels clear it",
        )
    elif held_out.verdict == "better" and points.passed:
        outcome, why = (
            PASSED,
            "passed: better than production on the new data's holdout"
            + (", not worse on the reference set" if traffic_used or golden_used else ""),
        )
    else:
        shortfall = (
            "better, but the improvement does not reach the configured margin"
            if held_out.verdict == "better"
            else "equivalent to production"
            if held_out.verdict == "equivalent"
            else "not enough evidence to tell it from production"
        )
        outcome, why = INCONCLUSIVE, f"inconclusive: {shortfall}; live labels decide"
    reasons.append(why)
    return replace(
        points,
        passed=outcome == PASSED,
        outcome=outcome,
        sets=tuple(sets),
        label_check=label_check,
        reasons=tuple(reasons),
    )


def _set_verdict(
    rows: RowSet,
    policy: PromotionConfig,
    *,
    task: Task,
    metric: str,
    higher: bool,
    classes: Sequence[Any],
    tolerance: float,
    rng: np.random.Generator,
    used: bool,
) -> SetVerdict:
    where = f"{rows.rows:,} rows" + (f", {rows.note}" if rows.note else "")
    if not used:
        return SetVerdict(
            rows.name, rows.rows, "unused", None,
            f"not used: {where}, fewer than promotion.min_reference_rows "
            f"({policy.min_reference_rows:,})",
        )  # fmt: skip
    found = compare(
        rows.champion,
        rows.challenger,
        task=task,
        classes=classes,
        metric=metric,
        greater_is_better=higher,
        paired=True,
        confidence=policy.confidence,
        tolerance=tolerance,
        rng=rng,
        resamples=GATE_RESAMPLES,
    )
    point, low, high = found.degradation
    if found.candidate is None or found.production is None or point is None:
        return SetVerdict(
            rows.name, rows.rows, "inconclusive", found,
            f"{metric} not measurable on {where} ({found.sampling})",
        )  # fmt: skip
    other = "the no-skill model" if rows.name == "no_skill" else "production"
    shown = (
        f"{metric} {show_metric(metric, found.candidate)} vs {other} "
        f"{show_metric(metric, found.production)}"
    )
    if point == 0:
        shown += ", no change"
    else:
        shown += f", {abs(point):.1%} {'worse' if point > 0 else 'better'}"
    if low is None or high is None:
        return SetVerdict(
            rows.name, rows.rows, "inconclusive", found,
            f"{shown}; too few rows for an interval ({where})",
        )  # fmt: skip
    shown += f" ({found.confidence:.0%} interval {_interval(low, high)}; {where})"
    margin = policy.min_relative_change
    if low == high == point == 0:
        return SetVerdict(
            rows.name, rows.rows, "identical", found, f"{shown}: identical on every row"
        )  # fmt: skip
    if low > tolerance:
        tail = f" beyond the {tolerance:.1%} tolerance" if tolerance else ""
        return SetVerdict(rows.name, rows.rows, "worse", found, f"{shown}: worse{tail}")
    if high < 0:
        return SetVerdict(rows.name, rows.rows, "better", found, f"{shown}: better")
    if -margin <= low and high <= margin:
        return SetVerdict(
            rows.name, rows.rows, "equivalent", found,
            f"{shown}: equivalent (within ±{margin:.1%})",
        )  # fmt: skip
    return SetVerdict(rows.name, rows.rows, "inconclusive", found, f"{shown}: inconclusive")


def _meets(value: float, bar: float, higher: bool) -> bool:
    return value >= bar if higher else value <= bar


def _interval(low: float, high: float) -> str:
    """An interval of the relative change in the bad direction, in words."""
    if high < 0:
        return f"{-high:.1%} to {-low:.1%} better"
    if low > 0:
        return f"{low:.1%} to {high:.1%} worse"
    return f"{-low:.1%} better to {high:.1%} worse"
