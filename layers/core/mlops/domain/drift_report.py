"""What a drift report says, in words and numbers: the model behind the drift report page.

A drift report document (``"kind": "drift_report"``, schema version 1;
``tests/fixtures/drift_report.json`` is a complete example) read into what a person is told:
the verdict in one line and its tone, the live-quality and retrain sentences, the facts of the
window, each feature's statistics against their thresholds and its state, drifted features
first, and the shares each figure draws. Plain text and numbers, no markup:
``drift_report_html`` lays them out as a page and ``drift_report_charts`` draws the figures.

``headline`` is the verdict in one line; the evaluator stores it in the JSON report too, so the
page, the JSON and ``mlops drift`` say the same thing. Missing optional sections, NaN or None
statistics, empty histograms and thousands of categories read as such instead of failing.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from mlops.domain.drift_report_estimate import estimate_breach_text
from mlops.domain.report_text import (
    NOT_AVAILABLE,
    as_mapping,
    as_number,
    as_sequence,
    format_count,
    format_number,
    format_share,
    format_time,
    metric_name,
    statistic_name,
)

TOP_CATEGORIES = 12  # categorical charts show this many, then "other", then "unseen"
UNSEEN = "unseen"


# --- the verdict -----------------------------------------------------------------------------


def headline(report: Mapping[str, Any]) -> tuple[str, str]:
    """The verdict in one line and its tone (``drift``, ``ok``, ``insufficient``).

    A quality breach is headlined as such ("Quality loss: live RMSE +103 %"), alone or next to
    dataset drift: the inputs may not have moved at all (concept drift), so "No drift" would
    hide a retrain request.
    """
    verdict = as_mapping(report.get("verdict"))
    features = as_sequence(report.get("features"))
    status = verdict.get("status")
    drifted_names = verdict.get("drifted")
    if isinstance(drifted_names, list):
        drifted = len(drifted_names)
    else:
        drifted = sum(1 for feature in features if as_mapping(feature).get("drifted") is True)
    total = len(features)
    share = as_number(verdict.get("drift_share"))
    if share is None and total:
        share = drifted / total
    threshold = format_share(verdict.get("drift_share_threshold"))
    counted = f"{drifted} of {total} features drifted"
    loss = _quality_loss(report)
    # Named an estimate wherever it shows: it forecasts what labels will say.
    estimated = estimate_breach_text(report)

    if verdict.get("dataset_drift") is True:
        title = f"Dataset drift: {counted} ({format_share(share)} ≥ {threshold})"
        title = f"{title}; quality loss: {loss}" if loss else title
        return (f"{title}; {estimated}" if estimated else title), "drift"
    if loss:
        return (f"Quality loss: {loss}; {estimated}" if estimated else f"Quality loss: {loss}"), (
            "drift"
        )
    if estimated:
        return f"Estimated quality loss: {estimated}", "drift"
    if status == "insufficient_data":
        if "version" in report and report["version"] is None:
            return "No production version to evaluate", "insufficient"
        rows = format_count(report.get("rows"))
        minimum = as_number(verdict.get("min_rows"))
        if minimum is None:
            return f"Not enough data ({rows} rows)", "insufficient"
        return f"Not enough data ({rows} rows < {format_count(minimum)})", "insufficient"
    if status == "drift":
        return f"Drift: {counted}", "drift"
    if status == "ok":
        if drifted == 0:
            return "No drift", "ok"
        return f"No dataset drift: {counted} ({format_share(share)} < {threshold})", "ok"
    return f"Verdict: {status if status is not None else NOT_AVAILABLE}", "insufficient"


def _quality_loss(report: Mapping[str, Any]) -> str:
    """``live RMSE +103 %`` when live quality breached (the verdict says so, or the quality
    section when the verdict does not say); empty otherwise."""
    verdict = as_mapping(report.get("verdict"))
    quality = as_mapping(report.get("quality"))
    breach = verdict.get("quality_breach")
    if breach is not True and (breach is False or quality.get("breach") is not True):
        return ""
    name = metric_name(quality.get("metric") or "quality")
    value, holdout = as_number(quality.get("value")), as_number(quality.get("holdout"))
    if value is None:
        return f"live {name} worse than the holdout"
    if holdout is None or holdout == 0 or math.isinf(holdout):
        return f"live {name} {format_number(value)} vs holdout {format_number(holdout)}"
    return f"live {name} {format_share((value - holdout) / abs(holdout), signed=True)}"


def quality_line(quality: Mapping[str, Any] | None) -> tuple[str, str]:
    """The live-quality sentence and its tone."""
    if quality is None:
        return "Live quality: not evaluated (no labels joined in this window)", "muted"
    name = metric_name(quality.get("metric"))
    value = as_number(quality.get("value"))
    labels = format_count(quality.get("labels"))
    if value is None:
        if quality.get("enough_labels") is True and quality.get("reason"):
            return f"Live {name}: not judged ({quality.get('reason')})", "muted"
        minimum = as_number(quality.get("min_labels"))
        bar = f" < {format_count(minimum)}" if minimum is not None else ""
        return f"Live {name}: not enough labels ({labels}{bar})", "muted"
    holdout = as_number(quality.get("holdout"))
    text = f"Live {name} {format_number(value)}"
    if holdout is not None:
        text += f" vs holdout {format_number(holdout)}"
        if holdout != 0:
            text += f" ({format_share((value - holdout) / abs(holdout), signed=True)})"
    if quality.get("breach") is True:
        return f"{text}: quality breach", "drift"
    tolerance = as_number(quality.get("tolerance"))
    within = f"within tolerance ({format_share(tolerance)})" if tolerance is not None else "ok"
    return f"{text}: {within}", "ok"


def retrain_line(report: Mapping[str, Any], tone: str) -> str:
    verdict = as_mapping(report.get("verdict"))
    cooldown = as_mapping(report.get("cooldown"))
    if verdict.get("retrain_requested") is True:
        return "Retrain requested"
    if cooldown.get("active") is True:
        hours = format_number(cooldown.get("hours"))
        last = cooldown.get("last_request_at")
        since = f" since the request at {format_time(last)}" if last else ""
        return f"No retrain requested: cool-down active{since} ({hours} h)"
    if tone == "insufficient":
        return "No retrain requested: not enough data to judge"
    if tone == "ok" and not verdict.get("quality_breach"):
        return "No retrain needed"
    return "No retrain requested"


def verdict_reasons(report: Mapping[str, Any]) -> list[str]:
    """Why the evaluator requested a retrain (or would have), as the verdict lists them."""
    return [str(reason) for reason in as_sequence(as_mapping(report.get("verdict")).get("reasons"))]


def retrain_requested(report: Mapping[str, Any]) -> bool:
    return as_mapping(report.get("verdict")).get("retrain_requested") is True


def identity(report: Mapping[str, Any]) -> str:
    """Which model the report judged: ``house-prices v3 (production)``."""
    version = report.get("version")
    alias = report.get("alias")
    text = str(report.get("model") or "model")
    text += f" v{version}" if version not in (None, "") else ""
    return text + (f" ({alias})" if alias else "")


def page_title(report: Mapping[str, Any]) -> str:
    """The model, the window and the verdict: what a browser tab or a printout is called."""
    title, _ = headline(report)
    window = as_mapping(report.get("window"))
    heading = (
        f"Drift report: {report.get('model') or 'model'} v{report.get('version') or '?'}, "
        f"{format_time(window.get('start'))} → {format_time(window.get('end'))}"
    )
    return f"{heading}: {title}"


def facts(report: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The window, the rows and the model, as ``(label, value)`` in the page's order."""
    window = as_mapping(report.get("window"))
    hours = as_number(window.get("hours"))
    span = f"{format_time(window.get('start'))} → {format_time(window.get('end'))}"
    if hours is not None:
        span += f" ({format_number(hours)} h)"
    return [
        ("Window", span),
        ("Rows in the window", format_count(report.get("rows"))),
        ("Reference rows", format_count(report.get("reference_rows"))),
        ("Mode", str(report.get("mode") or NOT_AVAILABLE)),
        ("Model", str(report.get("model") or NOT_AVAILABLE)),
        ("Version", str(report.get("version") or NOT_AVAILABLE)),
        ("Alias", str(report.get("alias") or "none")),
    ]


def quality_detail(quality: Mapping[str, Any]) -> str:
    """Every live metric over the labels, and what counts as a breach."""
    metrics = as_mapping(quality.get("metrics"))
    listed = " · ".join(
        f"{metric_name(name)} {format_number(value)}" for name, value in metrics.items()
    )
    detail = f"Over {format_count(quality.get('labels'))} labels"
    detail += f": {listed}" if listed else ""
    tolerance = as_number(quality.get("tolerance"))
    if tolerance is not None:
        detail += f". A breach is more than {format_share(tolerance)} worse than the holdout."
    return detail


# --- the features ----------------------------------------------------------------------------


def _is_share(statistic: str) -> bool:
    return statistic.endswith(("share", "rate", "rate_change"))


def _lower_is_drift(statistic: str) -> bool:
    """A p-value drifts when it falls under its threshold; every other statistic when it rises."""
    return "pvalue" in statistic or "p_value" in statistic


def statistic_parts(feature: Mapping[str, Any]) -> list[tuple[str, bool]]:
    """One ``(text, exceeded)`` per statistic: ``PSI 0.31 ≥ 0.25``."""
    statistics = as_mapping(feature.get("statistics"))
    thresholds = as_mapping(feature.get("thresholds"))
    parts = []
    for raw_name, raw_value in statistics.items():
        name = str(raw_name)
        value = as_number(raw_value)
        threshold = as_number(thresholds.get(raw_name))
        as_share = _is_share(name)
        shown = format_share(value, signed=name.endswith("change")) if as_share else None
        text = shown if shown is not None else format_number(value)
        exceeded = False
        if value is not None and threshold is not None:
            if _lower_is_drift(name):
                exceeded = value < threshold
                sign = "<" if exceeded else "≥"
            else:
                exceeded = value >= threshold
                sign = "≥" if exceeded else "<"
            limit = format_share(threshold) if as_share else format_number(threshold)
            text = f"{text} {sign} {limit}"
        parts.append((f"{statistic_name(name)} {text}", exceeded))
    return parts


def feature_state(feature: Mapping[str, Any]) -> tuple[str, str]:
    if feature.get("drifted") is True:
        return "✓ drifted", "drift"
    if feature.get("warning") is True:
        return "✗ warning", "warning"
    return "✗ stable", "stable"


def sorted_features(features: Sequence[Any]) -> list[tuple[int, Mapping[str, Any]]]:
    """Drifted first, then warnings, each in report order; the index is the chart's anchor."""
    indexed = [(index, as_mapping(feature)) for index, feature in enumerate(features)]
    return sorted(
        indexed,
        key=lambda item: (item[1].get("drifted") is not True, item[1].get("warning") is not True),
    )


# --- what the figures draw -------------------------------------------------------------------


def as_shares(values: object, length: int) -> tuple[list[float], bool]:
    """Counts or shares as shares of their total, padded to ``length``; False when all zero."""
    numbers = [max(as_number(value) or 0.0, 0.0) for value in as_sequence(values)]
    numbers = [0.0 if math.isinf(value) else value for value in numbers]
    numbers = (numbers + [0.0] * length)[:length]
    total = sum(numbers)
    if total <= 0:
        return [0.0] * length, False
    return [value / total for value in numbers], True


CategoryRow = tuple[str, float, float, str]  # label, reference share, current share, kind


def category_rows(histogram: Mapping[str, Any]) -> tuple[list[CategoryRow], bool]:
    """The top categories (by their larger share), then ``N others`` together, then unseen;
    False when one side has no values at all."""
    categories = [str(category) for category in as_sequence(histogram.get("categories"))]
    reference, has_reference = as_shares(histogram.get("reference"), len(categories))
    current, has_current = as_shares(histogram.get("current"), len(categories))
    rows = [
        (category, ref, cur, UNSEEN if category == UNSEEN else "category")
        for category, ref, cur in zip(categories, reference, current, strict=True)
    ]
    unseen = [row for row in rows if row[3] == UNSEEN]
    known = sorted((row for row in rows if row[3] != UNSEEN), key=lambda row: -max(row[1:3]))
    shown = known[:TOP_CATEGORIES]
    rest = known[TOP_CATEGORIES:]
    if rest:
        others = (sum(row[1] for row in rest), sum(row[2] for row in rest))
        shown.append((f"{len(rest):,} others", *others, "other"))
    return shown + unseen, has_reference and has_current


def breach_bar(quality: Mapping[str, Any]) -> float | None:
    """The metric value past which live quality breaches: the holdout, worse by the tolerance."""
    holdout = as_number(quality.get("holdout"))
    tolerance = as_number(quality.get("tolerance"))
    if holdout is None or tolerance is None or math.isinf(holdout):
        return None
    direction = -1 if quality.get("greater_is_better") is True else 1
    return holdout + direction * tolerance * abs(holdout)
