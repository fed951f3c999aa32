"""What the demo keeps of each month: who served, both models' errors, and the digest of the
drift evaluator's report (each feature's strongest statistic against its bar)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt


@dataclass
class MonthRecord:
    month: int
    market: str
    conditions: dict[str, float]
    rows: int = 0
    serving: str = ""
    answered_by: dict[str, int] = field(default_factory=dict)
    rmse_system: float = math.nan
    rmse_static: float = math.nan
    mape_system: float = math.nan
    mape_static: float = math.nan
    drift: dict[str, Any] = field(default_factory=dict)
    events: list[str] = field(default_factory=list)
    # what changed in serving, and when: {"label": "v3", "kind": "promoted", "at": "mid"|"end"}
    production_changes: list[dict[str, str]] = field(default_factory=list)
    production_after: str | None = None
    mid_month: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "month": self.month,
            "market": self.market,
            "conditions": self.conditions,
            "rows": self.rows,
            "serving": self.serving,
            "answered_by": self.answered_by,
            "rmse_system": _round(self.rmse_system),
            "rmse_static": _round(self.rmse_static),
            "mape_system": _round(self.mape_system, 4),
            "mape_static": _round(self.mape_static, 4),
            "drift": self.drift,
            "mid_month_drift": self.mid_month,
            "events": self.events,
            "production_changes": self.production_changes,
            "production_after": self.production_after,
        }


def metric_text(metric: str, value: float) -> str:
    """``MAPE 7.1%``, ``RMSE 26,424``."""
    if metric in ("mape", "accuracy", "f1_macro", "roc_auc"):
        return f"{metric.upper() if metric == 'mape' else metric} {value:.1%}"
    return f"{metric.upper() if metric in ('rmse', 'mae') else metric} {value:,.0f}"


def estimate_text(drift: Mapping[str, Any]) -> str:
    """The evaluation's ESTIMATE when it breached (empty otherwise): quality estimated from
    traffic alone, before its labels are in."""
    value, interval = drift.get("estimated_quality"), drift.get("estimated_interval")
    if not drift.get("estimate_breach") or not isinstance(value, int | float) or not interval:
        return ""
    metric = str(drift.get("estimated_metric") or "")
    low, high = (metric_text(metric, v).split(" ")[-1] for v in interval)
    holdout = drift.get("estimated_holdout")
    against = (
        f" vs holdout {metric_text(metric, holdout).split(' ')[-1]}"
        if isinstance(holdout, int | float)
        else ""
    )
    return (
        f"ESTIMATED {metric_text(metric, value)} (95% interval {low} to {high}){against} from "
        "traffic alone: worse with confidence"
    )


def verdict_lines(drift: Mapping[str, Any], *, month_end: bool) -> list[tuple[str, str, str]]:
    """What an evaluation's digest says, as (kind, console text, short word for the month's
    table row or "") lines: drift, quality, the ESTIMATE (short "estimate" only when it is
    ahead of the labels), and whether retraining was requested."""
    share = drift.get("drift_share") or 0.0
    quality = ""
    live, holdout = drift.get("live_quality"), drift.get("holdout_quality")
    if isinstance(live, int | float) and isinstance(holdout, int | float):
        metric = str(drift.get("quality_metric") or "")
        quality = (
            f"live {metric_text(metric, live)} vs holdout {metric_text(metric, holdout)} "
            f"(v{drift['version']}, {drift.get('labels') or 0:,} labels)"
        )
    verdicts: list[tuple[str, str, str]] = []  # kind, text, short
    if drift["dataset_drift"]:
        names = ", ".join(drift["drifted"])
        text = f"drift detected: {len(drift['drifted'])} features drifted ({share:.0%}): {names}"
        verdicts.append(("drift", text, "drift"))
    elif drift["drifted"]:
        text = f"drifting, under the bar: {', '.join(drift['drifted'])} ({share:.0%})"
        verdicts.append(("note", text, ""))
    if drift["quality_breach"]:
        verdicts.append(("quality", f"quality loss: {quality}", "quality loss"))
    elif drift.get("estimate_breach"):  # never "no drift" under an estimated loss
        labels = (
            f"no loss in the labels in so far: {quality}" if quality else "no labels judged yet"
        )
        verdicts.append(("note", labels, ""))
    elif not drift["dataset_drift"]:
        verdicts.append(("calm", f"no drift ({quality or drift.get('status')})", ""))
    if text := estimate_text(drift):  # ahead of the labels when they have not breached
        if drift["quality_breach"]:
            verdicts.append(("estimate", f"{text}; the labels in agree", ""))
        else:
            verdicts.append(("estimate", f"{text}, before the labels say so", "estimate"))
    if drift["retrain_requested"]:
        text = "retraining requested (RetrainRequested on the bus)"
        if not month_end:
            text += "; the month's labeled sales are uploaded at month end"
        verdicts.append(("request", text, "retrain"))
    else:
        held = [r for r in drift["reasons"] if r.startswith("retraining not requested")]
        verdicts.extend(("note", r, "") for r in held[:1])
    return verdicts


def serving_label(versions: list[str], production: str | None) -> str:
    """Who answered: ``v3``, or ``v3 + canary v4 31%`` while a rollout bakes."""
    counts: dict[str, int] = {}
    for version in versions:
        counts[version] = counts.get(version, 0) + 1
    total = sum(counts.values()) or 1
    parts = [f"v{production}"] if production in counts else []
    parts += [
        f"canary v{version} {count / total:.0%}"
        for version, count in sorted(counts.items(), key=lambda kv: -kv[1])
        if version != production
    ]
    return " + ".join(parts)


def _round(value: float, digits: int = 1) -> float | None:
    return None if math.isnan(value) else round(value, digits)


def rmse(predictions: npt.NDArray[np.float64], actual: npt.NDArray[np.float64]) -> float:
    return float(math.sqrt(np.mean((predictions - actual) ** 2)))


def mape(predictions: npt.NDArray[np.float64], actual: npt.NDArray[np.float64]) -> float:
    return float(np.mean(np.abs(predictions - actual) / actual))


# --- drift report digest ---------------------------------------------------------------------


def feature_scores(report: Mapping[str, Any]) -> dict[str, float]:
    """Each feature's strongest statistic as a multiple of its threshold (1 = at the bar)."""
    out: dict[str, float] = {}
    for feature in report.get("features") or []:
        stats = feature.get("statistics") or {}
        bars = feature.get("thresholds") or {}
        best = 0.0
        for name, bar in bars.items():
            value = stats.get(name)
            if not isinstance(value, int | float) or not isinstance(bar, int | float) or bar <= 0:
                continue
            if math.isnan(value):
                continue
            ratio = bar / max(value, 1e-12) if "pvalue" in name else value / bar
            best = max(best, min(ratio, 10.0))
        out[str(feature.get("name"))] = round(best, 2)
    return out


def drift_digest(report: Mapping[str, Any], key: str) -> dict[str, Any]:
    verdict = report.get("verdict") or {}
    quality = report.get("quality") or {}
    estimate = report.get("estimate") or {}
    window = (estimate.get("window") or {}).get(estimate.get("metric")) or {}
    name = Path(key).stem
    return {
        "report": name,
        "report_html": f"drift/{name}.html",
        "version": report.get("version"),
        "status": verdict.get("status"),
        "rows": report.get("rows"),
        "mode": report.get("mode"),
        "dataset_drift": bool(verdict.get("dataset_drift")),
        "drift_share": verdict.get("drift_share"),
        "drift_share_threshold": verdict.get("drift_share_threshold"),
        "drifted": list(verdict.get("drifted") or []),
        "quality_breach": bool(verdict.get("quality_breach")),
        "quality_metric": quality.get("metric"),
        "live_quality": quality.get("value"),
        "holdout_quality": quality.get("holdout"),
        "quality_tolerance": quality.get("tolerance"),
        "labels": quality.get("labels"),
        # Quality ESTIMATED before labels (CBPE/DLE), next to the realized one above
        "estimated_metric": estimate.get("metric"),
        "estimated_quality": window.get("value"),
        "estimated_interval": [window.get("low"), window.get("high")] if window else None,
        "estimated_holdout": estimate.get("holdout"),
        "estimate_breach": bool(estimate.get("breach")),
        "retrain_requested": bool(verdict.get("retrain_requested")),
        "reasons": list(verdict.get("reasons") or []),
        "feature_scores": feature_scores(report),
    }
