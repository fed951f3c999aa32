"""The drift report's ``estimate`` section: quality ESTIMATED before labels, per hour and
over the window, next to the quality realized once labels arrived (``domain.quality``).

Each hour's estimate comes from that hour's merged sketch (``domain.estimate_sketch``), the
window's from the window's. The compared metric is the gate metric when it can be estimated
(accuracy, macro F1; MAE, RMSE, MAPE), else accuracy or RMSE; MAPE falls back to RMSE,
saying so (``fallback``), for a version or sketches from before MAPE estimates. A **breach**
needs confidence: the interval's most favourable bound is still worse than the holdout by
more than the tolerance, over at least ``min_rows`` rows of the estimate (for MAPE, the rows
with a relative error: ``no_relative`` counts the scored rows predicted too near 0 to have
one). Where an hour has labels too, the report keeps the estimate's error (estimate -
realized) and whether the interval covered the realized value: how far to trust the
estimate, measured on this model's own traffic.

Everything here is named an estimate: ``label`` is ``ESTIMATE`` and every reason says so.
Estimates assume the inputs' relation to the target has not moved; pure concept drift leaves
them unchanged (docs/estimates.md).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from mlops.domain.estimate import CBPE_METRICS, DLE_METRICS, Estimate, cbpe, dle
from mlops.domain.estimate_sketch import ConfidenceCounts, EstimatePart, LossSums
from mlops.domain.quality import show_metric
from mlops.domain.sketch import Sketch, SketchPlan

LABEL = "ESTIMATE"


def estimated_metric(task: str, gate_metric: str) -> str:
    """The metric the estimate is compared on: the gate's when estimable."""
    if task == "classification":
        return gate_metric if gate_metric in CBPE_METRICS else "accuracy"
    return gate_metric if gate_metric in DLE_METRICS else "rmse"


def estimate_section(
    *,
    task: str,
    plan: SketchPlan,
    window: Sketch | None,
    hourly: Sequence[tuple[datetime, Sketch]],
    realized_hours: Sequence[Mapping[str, Any]],
    holdout_metrics: Mapping[str, float],
    gate_metric: str,
    tolerance: float,
    min_rows: int,
) -> dict[str, Any]:
    """The report's estimate section (always a dict; ``available`` says whether it holds
    an estimate, ``reason`` why or why not)."""
    kind = "cbpe" if task == "classification" else "dle"
    metric, fallback = _compared_metric(
        estimated_metric(task, gate_metric), plan, None if window is None else window.estimate
    )
    holdout = holdout_metrics.get(metric)
    section: dict[str, Any] = {
        "label": LABEL,
        "kind": kind,
        "method": "CBPE (calibrated confidence)" if kind == "cbpe" else "DLE (loss model)",
        "metric": metric,
        "greater_is_better": metric in CBPE_METRICS,
        "holdout": holdout,
        "tolerance": tolerance,
        "available": False,
        "breach": False,
        "window": {},
        "rows": 0,
        "unscored": 0,
        "hours": [],
        "accuracy_of_estimate": None,
        "reason": "",
        "fallback": fallback,
    }
    if plan.estimate_problem is not None:
        section["reason"] = (
            f"no estimate: the version's estimate section is unusable ({plan.estimate_problem})"
        )
        return section
    if plan.calibration is None and plan.loss_model is None:
        section["reason"] = (
            "no estimate: this version has no "
            + ("calibration" if kind == "cbpe" else "loss model")
            + " (trained before estimates, or too small a holdout)"
        )
        return section
    part = None if window is None else window.estimate
    if part is None:
        section["reason"] = "no estimate: no scored traffic in the window"
        return section
    estimates = _estimates(plan, part)
    section["rows"], section["unscored"] = part.scored, part.unscored
    if isinstance(part, LossSums) and part.relative is not None:
        # Scored rows whose prediction is too near 0 (or not a number) for a relative error:
        # outside the MAPE estimate, counted.
        section["no_relative"] = part.count - part.relative.count
    section["window"] = {e.metric: e.as_dict() for e in estimates}
    realized = {str(h.get("start")): h for h in realized_hours}
    hours = []
    for start, sketch in hourly:
        hour_part = sketch.estimate
        if hour_part is None:
            continue
        found = {e.metric: e.as_dict() for e in _estimates(plan, hour_part)}
        key = start.isoformat(timespec="seconds")
        labeled = realized.get(key) or {}
        value = (labeled.get("metrics") or {}).get(metric)
        entry: dict[str, Any] = {
            "start": key,
            "end": (start + timedelta(hours=1)).isoformat(timespec="seconds"),
            "rows": hour_part.scored,
            "unscored": hour_part.unscored,
            "estimates": found,
            "realized": value if _finite(value) else None,
            "labels": int(labeled.get("labels") or 0),
        }
        estimate = found.get(metric)
        if estimate is not None and entry["realized"] is not None:
            entry["error"] = estimate["value"] - entry["realized"]
            entry["covered"] = bool(estimate["low"] <= entry["realized"] <= estimate["high"])
        hours.append(entry)
    section["hours"] = hours
    section["accuracy_of_estimate"] = _track_record(hours)
    window_estimate = section["window"].get(metric)
    if window_estimate is None:
        section["reason"] = f"no estimate of {metric}: no scored rows" + (
            " with a relative error (predictions of 0)" if section.get("no_relative") else ""
        )
        return section
    section["available"] = True
    section["breach"], section["reason"] = _judge(
        metric,
        window_estimate,
        holdout,
        tolerance=tolerance,
        min_rows=min_rows,
        rows=window_estimate["rows"],
    )
    if fallback:
        section["reason"] += f" ({fallback})"
    return section


def _compared_metric(metric: str, plan: SketchPlan, part: EstimatePart | None) -> tuple[str, str]:
    """The estimated metric to compare, and why it is not the gate's MAPE when it cannot be
    (a version trained before MAPE estimates, or sketches written before them): RMSE then,
    as before, said in the report rather than a MAPE over part of the rows."""
    if metric != "mape":
        return metric, ""
    if plan.loss_model is not None and not plan.loss_model.has_mape:
        why = (
            "this version's loss model has no MAPE constants (trained before them, or a "
            "holdout target of 0)"
        )
    elif isinstance(part, LossSums) and part.relative is None:
        why = "sketches in the window were written before MAPE sums"
    else:
        return metric, ""
    return "rmse", f"mape cannot be estimated: {why}; compared on rmse"


def _estimates(plan: SketchPlan, part: EstimatePart) -> list[Estimate]:
    if isinstance(part, ConfidenceCounts) and plan.calibration is not None:
        return cbpe(plan.calibration, part.counts)
    if isinstance(part, LossSums) and plan.loss_model is not None:
        s1, s2, s4 = part.floats()
        relative = None if part.relative is None else part.relative.floats()
        return dle(plan.loss_model, part.count, s1, s2, s4, relative=relative)
    return []


def _judge(
    metric: str,
    estimate: Mapping[str, Any],
    holdout: float | None,
    *,
    tolerance: float,
    min_rows: int,
    rows: int,
) -> tuple[bool, str]:
    shown = (
        f"ESTIMATED {metric} {show_metric(metric, estimate['value'])} "
        f"(95 % interval {show_metric(metric, estimate['low'])} to "
        f"{show_metric(metric, estimate['high'])}, {rows:,} rows, no labels needed)"
    )
    if holdout is None or not math.isfinite(holdout):
        return False, f"{shown}; no holdout {metric} to compare with"
    if rows < min_rows:
        return False, f"{shown}; fewer than the {min_rows:,} rows needed to judge an estimate"
    greater = metric in CBPE_METRICS
    # The interval's most favourable bound must still be worse than the tolerance allows.
    if greater:
        limit = holdout - tolerance * abs(holdout)
        breach = estimate["high"] < limit
    else:
        limit = holdout + tolerance * abs(holdout)
        breach = estimate["low"] > limit
    verdict = "worse than" if breach else "within"
    return breach, (
        f"{shown} vs holdout {show_metric(metric, holdout)}: {verdict} the "
        f"{tolerance:.0%} tolerance with 95 % confidence"
    )


def _track_record(hours: list[dict[str, Any]]) -> dict[str, Any] | None:
    """How the estimate did in hours that have labels: mean absolute error, coverage."""
    judged = [h for h in hours if "error" in h]
    if not judged:
        return None
    return {
        "hours": len(judged),
        "mean_abs_error": sum(abs(h["error"]) for h in judged) / len(judged),
        "covered_share": sum(1 for h in judged if h["covered"]) / len(judged),
    }


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
