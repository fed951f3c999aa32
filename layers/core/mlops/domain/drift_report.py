"""A drift report as one self-contained HTML page that a person reads (and prints).

``render_html`` turns a drift report document (``"kind": "drift_report"``, schema version 1;
``tests/fixtures/drift_report.json`` is a complete example) into a single page, top to bottom:
the verdict, the window and the model, a summary table (drifted features first), a
reference-vs-current histogram per feature and for the prediction, and live quality over time.

Nothing on the page comes from anywhere else: the CSS is inline, the charts are inline SVG drawn
here, and a Content-Security-Policy forbids every fetch and script. Every string from the report
is escaped (feature and category names are user data), and control characters in it, the
bidirectional overrides among them, are shown as their code points (``[U+202E]``): they could
otherwise reorder or hide what a person reads. Missing optional sections, NaN or None
statistics, empty histograms and thousands of categories render as such instead of failing.

``headline`` is the verdict in one line; the evaluator stores it in the JSON report too, so the
page, the JSON and ``mlops drift`` say the same thing.

Pure and stdlib-only: it ships in the Lambda layer.
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

TOP_CATEGORIES = 12  # categorical charts show this many, then "other", then "unseen"
UNSEEN = "unseen"
NOT_AVAILABLE = "n/a"
MINUS = "\u2212"

# Display names; anything else is shown as the report spells it (underscores as spaces).
METRIC_NAMES = {
    "rmse": "RMSE",
    "mae": "MAE",
    "mape": "MAPE",
    "r2": "R²",
    "accuracy": "accuracy",
    "f1": "F1",
    "f1_macro": "F1 (macro)",
    "roc_auc": "ROC-AUC",
    "log_loss": "log loss",
}
STATISTIC_NAMES = {
    "psi": "PSI",
    "wasserstein": "Wasserstein",
    "ks": "KS",
    "ks_statistic": "KS",
    "ks_pvalue": "KS p-value",
    "js_distance": "JS distance",
    "unseen_share": "unseen share",
    "missing_rate_change": "missing-rate change",
}

_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'"
_REFERENCE_COLOUR = "#b4c0d3"
_CURRENT_COLOUR = "#2f6fde"
_UNSEEN_COLOUR = "#e0620d"
_GRID_COLOUR = "#e6e9ef"
_AXIS_TEXT = "#6b7280"


# --- numbers and text ------------------------------------------------------------------------


# Every C0/C1 control, every Unicode format character (Cf: bidirectional embeddings, overrides,
# isolates and marks, zero-width spaces, the BOM, tag characters) except the zero-width
# (non-)joiners that Persian, Indic scripts and emoji sequences need, and lone surrogates
# (a JSON "\ud800" decodes to one, and it cannot even be encoded as UTF-8).
_INVISIBLE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2"
    "\u180e\u200b\u200e\u200f\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufeff"
    "\ufff9-\ufffb\ud800-\udfff\U000110bd\U000110cd\U00013430-\U0001343f"
    "\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0001\U000e0020-\U000e007f]"
)


def _visible(text: str) -> str:
    """``text`` with each control or format character shown as its code point."""
    return _INVISIBLE.sub(lambda match: f"[U+{ord(match.group()):04X}]", text)


def _esc(value: object) -> str:
    """The one place report text enters the page: escaped, and its controls made visible."""
    return html.escape(_visible("" if value is None else str(value)), quote=True)


def _number(value: object) -> float | None:
    """A finite or infinite float; None for anything else (None, NaN, bools, strings)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return None if math.isnan(number) else number


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _sequence(value: object) -> Sequence[Any]:
    return value if isinstance(value, list | tuple) else ()


def _minus(text: str) -> str:
    return text.replace("-", MINUS)


def format_count(value: object) -> str:
    """Rows and labels: ``12,000``."""
    number = _number(value)
    if number is None or math.isinf(number):
        return NOT_AVAILABLE
    return _minus(f"{round(number):,}")


def format_number(value: object) -> str:
    """Statistics and metric values: three significant digits, thousands separated at 1,000
    and above (``0.31``, ``0.000123``, ``61,000``); ``n/a`` for None and NaN."""
    number = _number(value)
    if number is None:
        return NOT_AVAILABLE
    if math.isinf(number):
        return "∞" if number > 0 else f"{MINUS}∞"
    if number == 0:
        return "0"
    if abs(number) >= 1000:
        return _minus(f"{number:,.0f}")
    return _minus(f"{number:.3g}")


def format_share(value: object, *, signed: bool = False) -> str:
    """A fraction as a percentage: ``56 %``, ``2.5 %``, ``< 0.1 %``; ``+110 %`` when signed."""
    number = _number(value)
    if number is None:
        return NOT_AVAILABLE
    if math.isinf(number):
        return format_number(number)
    percent = number * 100
    sign = ("+" if percent > 0 else MINUS) if signed and percent != 0 else ""
    if not signed and percent < 0:
        sign = MINUS
    magnitude = abs(percent)
    if magnitude == 0:
        return "0 %"
    if magnitude < 0.1:
        return f"< {sign}0.1 %"
    rounded = round(magnitude, 1)
    text = f"{rounded:,.0f}" if rounded >= 10 or rounded == int(rounded) else f"{rounded:.1f}"
    return f"{sign}{text} %"


def _axis_number(value: float) -> str:
    """Bin edges on an axis: short (``12.5k``, ``1.2M``)."""
    magnitude = abs(value)
    if magnitude >= 1e6:
        return _minus(f"{value / 1e6:.3g}M")
    if magnitude >= 1e4:
        return _minus(f"{value / 1e3:.3g}k")
    if magnitude >= 1e3:  # no separator: years read as 1990, not 1,990
        return _minus(f"{value:.0f}")
    return format_number(value)


def _metric_name(name: object) -> str:
    text = "" if name is None else str(name)
    return METRIC_NAMES.get(text.lower(), text.replace("_", " "))


def _statistic_name(name: str) -> str:
    return STATISTIC_NAMES.get(name, name.replace("_", " "))


def _is_share(statistic: str) -> bool:
    return statistic.endswith(("share", "rate", "rate_change"))


def _lower_is_drift(statistic: str) -> bool:
    """A p-value drifts when it falls under its threshold; every other statistic when it rises."""
    return "pvalue" in statistic or "p_value" in statistic


def _when(value: object) -> str:
    """An ISO timestamp as ``2026-11-28 00:00 UTC``; anything else as written."""
    if not isinstance(value, str) or not value:
        return NOT_AVAILABLE if value is None else str(value)
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return value
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%d %H:%M") + (" UTC" if moment.tzinfo is not None else "")


def _truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --- the verdict -----------------------------------------------------------------------------


def headline(report: Mapping[str, Any]) -> tuple[str, str]:
    """The verdict in one line and its tone (``drift``, ``ok``, ``insufficient``).

    A quality breach is headlined as such ("Quality loss: live RMSE +103 %"), alone or next to
    dataset drift: the inputs may not have moved at all (concept drift), so "No drift" would
    hide a retrain request.
    """
    verdict = _mapping(report.get("verdict"))
    features = _sequence(report.get("features"))
    status = verdict.get("status")
    drifted_names = verdict.get("drifted")
    if isinstance(drifted_names, list):
        drifted = len(drifted_names)
    else:
        drifted = sum(1 for feature in features if _mapping(feature).get("drifted") is True)
    total = len(features)
    share = _number(verdict.get("drift_share"))
    if share is None and total:
        share = drifted / total
    threshold = format_share(verdict.get("drift_share_threshold"))
    counted = f"{drifted} of {total} features drifted"
    loss = _quality_loss(report)

    if verdict.get("dataset_drift") is True:
        title = f"Dataset drift: {counted} ({format_share(share)} ≥ {threshold})"
        return (f"{title}; quality loss: {loss}" if loss else title), "drift"
    if loss:
        return f"Quality loss: {loss}", "drift"
    if status == "insufficient_data":
        if "version" in report and report["version"] is None:
            return "No production version to evaluate", "insufficient"
        rows = format_count(report.get("rows"))
        minimum = _number(verdict.get("min_rows"))
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
    verdict = _mapping(report.get("verdict"))
    quality = _mapping(report.get("quality"))
    breach = verdict.get("quality_breach")
    if breach is not True and (breach is False or quality.get("breach") is not True):
        return ""
    name = _metric_name(quality.get("metric") or "quality")
    value, holdout = _number(quality.get("value")), _number(quality.get("holdout"))
    if value is None:
        return f"live {name} worse than the holdout"
    if holdout is None or holdout == 0 or math.isinf(holdout):
        return f"live {name} {format_number(value)} vs holdout {format_number(holdout)}"
    return f"live {name} {format_share((value - holdout) / abs(holdout), signed=True)}"


def _quality_line(quality: Mapping[str, Any] | None) -> tuple[str, str]:
    """The live-quality sentence and its tone."""
    if quality is None:
        return "Live quality: not evaluated (no labels joined in this window)", "muted"
    name = _metric_name(quality.get("metric"))
    value = _number(quality.get("value"))
    labels = format_count(quality.get("labels"))
    if value is None:
        if quality.get("enough_labels") is True and quality.get("reason"):
            return f"Live {name}: not judged ({quality.get('reason')})", "muted"
        minimum = _number(quality.get("min_labels"))
        bar = f" < {format_count(minimum)}" if minimum is not None else ""
        return f"Live {name}: not enough labels ({labels}{bar})", "muted"
    holdout = _number(quality.get("holdout"))
    text = f"Live {name} {format_number(value)}"
    if holdout is not None:
        text += f" vs holdout {format_number(holdout)}"
        if holdout != 0:
            text += f" ({format_share((value - holdout) / abs(holdout), signed=True)})"
    if quality.get("breach") is True:
        return f"{text}: quality breach", "drift"
    tolerance = _number(quality.get("tolerance"))
    within = f"within tolerance ({format_share(tolerance)})" if tolerance is not None else "ok"
    return f"{text}: {within}", "ok"


def _retrain_line(report: Mapping[str, Any], tone: str) -> str:
    verdict = _mapping(report.get("verdict"))
    cooldown = _mapping(report.get("cooldown"))
    if verdict.get("retrain_requested") is True:
        return "Retrain requested"
    if cooldown.get("active") is True:
        hours = format_number(cooldown.get("hours"))
        last = cooldown.get("last_request_at")
        since = f" since the request at {_when(last)}" if last else ""
        return f"No retrain requested: cool-down active{since} ({hours} h)"
    if tone == "insufficient":
        return "No retrain requested: not enough data to judge"
    if tone == "ok" and not verdict.get("quality_breach"):
        return "No retrain needed"
    return "No retrain requested"


def _verdict_section(report: Mapping[str, Any]) -> str:
    title, tone = headline(report)
    quality = report.get("quality")
    quality_text, quality_tone = _quality_line(quality if isinstance(quality, Mapping) else None)
    retrain = _retrain_line(report, tone)
    reasons = [str(reason) for reason in _sequence(_mapping(report.get("verdict")).get("reasons"))]
    reason_items = "".join(f"<li>{_esc(reason)}</li>" for reason in reasons)
    reason_list = f'<ul class="reasons">{reason_items}</ul>' if reasons else ""
    model = _esc(report.get("model") or "model")
    version = report.get("version")
    alias = report.get("alias")
    identity = model + (f" v{_esc(version)}" if version not in (None, "") else "")
    identity += f" ({_esc(alias)})" if alias else ""
    requested = _mapping(report.get("verdict")).get("retrain_requested") is True
    return (
        f'<header class="verdict tone-{tone}">'
        f'<p class="eyebrow">Drift report · {identity}</p>'
        f'<h1 id="verdict">{_esc(title)}</h1>'
        f'<p class="line tone-{quality_tone}" id="quality">{_esc(quality_text)}</p>'
        f'<p class="line {"tone-drift" if requested else "tone-muted"}" id="retrain">'
        f"{_esc(retrain)}{':' if reasons else ''}</p>"
        f"{reason_list}</header>"
    )


def _facts_section(report: Mapping[str, Any]) -> str:
    window = _mapping(report.get("window"))
    hours = _number(window.get("hours"))
    span = f"{_when(window.get('start'))} → {_when(window.get('end'))}"
    if hours is not None:
        span += f" ({format_number(hours)} h)"
    facts = [
        ("Window", span),
        ("Rows in the window", format_count(report.get("rows"))),
        ("Reference rows", format_count(report.get("reference_rows"))),
        ("Mode", str(report.get("mode") or NOT_AVAILABLE)),
        ("Model", str(report.get("model") or NOT_AVAILABLE)),
        ("Version", str(report.get("version") or NOT_AVAILABLE)),
        ("Alias", str(report.get("alias") or "none")),
    ]
    items = "".join(
        f'<div class="fact-{index}"><dt>{_esc(key)}</dt><dd>{_esc(value)}</dd></div>'
        for index, (key, value) in enumerate(facts)
    )
    return f'<dl class="facts">{items}</dl>'


# --- the summary table -----------------------------------------------------------------------


def _statistic_parts(feature: Mapping[str, Any]) -> list[tuple[str, bool]]:
    """One ``(text, exceeded)`` per statistic: ``PSI 0.31 ≥ 0.25``."""
    statistics = _mapping(feature.get("statistics"))
    thresholds = _mapping(feature.get("thresholds"))
    parts = []
    for raw_name, raw_value in statistics.items():
        name = str(raw_name)
        value = _number(raw_value)
        threshold = _number(thresholds.get(raw_name))
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
        parts.append((f"{_statistic_name(name)} {text}", exceeded))
    return parts


def _state(feature: Mapping[str, Any]) -> tuple[str, str]:
    if feature.get("drifted") is True:
        return "✓ drifted", "drift"
    if feature.get("warning") is True:
        return "✗ warning", "warning"
    return "✗ stable", "stable"


def _sorted_features(features: Sequence[Any]) -> list[tuple[int, Mapping[str, Any]]]:
    """Drifted first, then warnings, each in report order; the index is the chart's anchor."""
    indexed = [(index, _mapping(feature)) for index, feature in enumerate(features)]
    return sorted(
        indexed,
        key=lambda item: (item[1].get("drifted") is not True, item[1].get("warning") is not True),
    )


def _table_row(anchor: str, feature: Mapping[str, Any]) -> str:
    state, tone = _state(feature)
    name = str(feature.get("name"))
    stats = (
        "".join(
            f'<span class="stat{" exceeded" if exceeded else ""}">{_esc(text)}</span>'
            for text, exceeded in _statistic_parts(feature)
        )
        or f'<span class="stat">{NOT_AVAILABLE}</span>'
    )
    missing = _mapping(feature.get("missing_rate"))
    reference_rows = format_count(feature.get("reference_rows"))
    rows = f"{reference_rows} → {format_count(feature.get('current_rows'))}"
    missing_text = (
        f"{format_share(missing.get('reference'))} → {format_share(missing.get('current'))}"
    )
    return (
        f'<tr class="row-{tone}">'
        f'<th scope="row"><a href="#{anchor}" title="{_esc(name)}">'
        f"{_esc(_truncate(name, 32))}</a></th>"
        f"<td>{_esc(feature.get('type') or NOT_AVAILABLE)}</td>"
        f"<td>{_esc(feature.get('test') or NOT_AVAILABLE)}</td>"
        f'<td class="stats">{stats}</td>'
        f'<td class="state state-{tone}">{_esc(state)}</td>'
        f'<td class="num">{_esc(rows)}</td>'
        f'<td class="num">{_esc(missing_text)}</td></tr>'
    )


_TABLE_HEAD = (
    "<thead><tr><th scope='col'>Feature</th><th scope='col'>Type</th><th scope='col'>Test</th>"
    "<th scope='col'>Statistics (value vs threshold)</th><th scope='col'>Drifted</th>"
    "<th scope='col' class='num'>Rows: reference → current</th>"
    "<th scope='col' class='num'>Missing: reference → current</th></tr></thead>"
)


def _table(rows: list[str], caption: str) -> str:
    return (
        f'<table class="summary"><caption>{_esc(caption)}</caption>{_TABLE_HEAD}'
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


# --- charts ----------------------------------------------------------------------------------


def _shares(values: object, length: int) -> tuple[list[float], bool]:
    """Counts or shares as shares of their total, padded to ``length``; False when all zero."""
    numbers = [max(_number(value) or 0.0, 0.0) for value in _sequence(values)]
    numbers = [0.0 if math.isinf(value) else value for value in numbers]
    numbers = (numbers + [0.0] * length)[:length]
    total = sum(numbers)
    if total <= 0:
        return [0.0] * length, False
    return [value / total for value in numbers], True


def _nice_step(span: float, count: int = 4) -> float:
    raw = span / count if span > 0 else 1.0
    power = 10.0 ** math.floor(math.log10(raw))
    for factor in (1, 2, 2.5, 5, 10):
        if raw <= factor * power:
            return factor * power
    return 10 * power


def _share_axis(largest: float) -> tuple[float, list[float]]:
    """The top of a share axis and its ticks (0, 10 %, 20 % …)."""
    step = _nice_step(max(largest, 0.01))
    top = step * max(math.ceil(largest / step - 1e-9), 1)
    ticks = [step * index for index in range(round(top / step) + 1)]
    return top, ticks


def _legend(x: float, y: float, reference_rows: object, current_rows: object) -> str:
    reference = f"reference ({format_count(reference_rows)} rows)"
    current = f"current ({format_count(current_rows)} rows)"
    return (
        f'<g class="legend" font-size="11" fill="#374151">'
        f'<rect x="{x:.1f}" y="{y - 9:.1f}" width="10" height="10" rx="2" '
        f'fill="{_REFERENCE_COLOUR}"/>'
        f'<text x="{x + 14:.1f}" y="{y:.1f}">{_esc(reference)}</text>'
        f'<rect x="{x + 190:.1f}" y="{y - 9:.1f}" width="10" height="10" rx="2" '
        f'fill="{_CURRENT_COLOUR}"/>'
        f'<text x="{x + 204:.1f}" y="{y:.1f}">{_esc(current)}</text></g>'
    )


def _svg(width: int, height: int, label: str, body: str) -> str:
    return (
        f'<svg class="chart" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'role="img" aria-label="{_esc(label)}" preserveAspectRatio="xMinYMin meet">'
        f"<title>{_esc(label)}</title>{body}</svg>"
    )


def _empty_note(x: float, y: float, text: str) -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="middle" font-size="12" '
        f'fill="{_AXIS_TEXT}">{_esc(text)}</text>'
    )


def _numeric_chart(feature: Mapping[str, Any]) -> str:
    """Paired bars on the baseline's bins; bin edges (and the observed bounds) below."""
    histogram = _mapping(feature.get("histogram"))
    name = str(feature.get("name"))
    edges = [_number(edge) for edge in _sequence(histogram.get("edges"))]
    bins = max(
        len(edges) + 1,
        len(_sequence(histogram.get("reference"))),
        len(_sequence(histogram.get("current"))),
    )
    reference, has_reference = _shares(histogram.get("reference"), bins)
    current, has_current = _shares(histogram.get("current"), bins)
    bounds = [_number(bound) for bound in _sequence(histogram.get("bounds"))][:2]
    lower, upper = [*bounds, None, None][:2]
    boundaries: list[float | None] = [lower, *edges, upper][: bins + 1]

    width, height = 560, 230
    left, right, top, bottom = 44, 12, 30, 44
    plot_w, plot_h = width - left - right, height - top - bottom
    top_share, ticks = _share_axis(max(reference + current))
    parts = [_legend(left, 16, feature.get("reference_rows"), feature.get("current_rows"))]

    def y_of(share: float) -> float:
        return top + plot_h * (1 - share / top_share)

    for tick in ticks:
        y = y_of(tick)
        parts.append(
            f'<line x1="{left}" y1="{y:.1f}" x2="{width - right}" y2="{y:.1f}" '
            f'stroke="{_GRID_COLOUR}" stroke-width="1"/>'
            f'<text x="{left - 6}" y="{y + 3.5:.1f}" text-anchor="end" font-size="10" '
            f'fill="{_AXIS_TEXT}">{_esc(format_share(tick))}</text>'
        )
    slot = plot_w / bins
    bar = slot * 0.36
    for index in range(bins):
        x = left + slot * index
        low = boundaries[index] if index < len(boundaries) else None
        high = boundaries[index + 1] if index + 1 < len(boundaries) else None
        span = f"{_axis_number(low) if low is not None else '…'} to "
        span += _axis_number(high) if high is not None else "…"
        for offset, share, colour, side in (
            (slot * 0.12, reference[index], _REFERENCE_COLOUR, "reference"),
            (slot * 0.12 + bar, current[index], _CURRENT_COLOUR, "current"),
        ):
            y = y_of(share)
            parts.append(
                f'<rect x="{x + offset:.1f}" y="{y:.1f}" width="{bar:.1f}" '
                f'height="{top + plot_h - y:.1f}" fill="{colour}" rx="1.5">'
                f"<title>{_esc(f'{span}: {side} {format_share(share)}')}</title></rect>"
            )
    baseline = top + plot_h
    parts.append(
        f'<line x1="{left}" y1="{baseline}" x2="{width - right}" y2="{baseline}" '
        f'stroke="#9ca3af" stroke-width="1"/>'
    )
    every = max(1, math.ceil(len(boundaries) / 12))
    for index, boundary in enumerate(boundaries):
        if boundary is None or (index % every and index != len(boundaries) - 1):
            continue
        x = left + slot * index
        anchor = "start" if index == 0 else "end" if index == bins else "middle"
        parts.append(
            f'<line x1="{x:.1f}" y1="{baseline}" x2="{x:.1f}" y2="{baseline + 4}" '
            f'stroke="#9ca3af"/>'
            f'<text x="{x:.1f}" y="{baseline + 16}" text-anchor="{anchor}" font-size="10" '
            f'fill="{_AXIS_TEXT}">{_esc(_axis_number(boundary))}</text>'
        )
    parts.append(
        f'<text x="{left + plot_w / 2:.1f}" y="{height - 6}" text-anchor="middle" '
        f'font-size="10" fill="{_AXIS_TEXT}">bins of the training data (edges)</text>'
    )
    if not has_current or not has_reference:
        missing = "no current values in this window" if not has_current else "no reference"
        parts.append(_empty_note(left + plot_w / 2, top + plot_h / 2, missing))
    return _svg(width, height, f"{name}: reference vs current distribution", "".join(parts))


CategoryRow = tuple[str, float, float, str]  # label, reference share, current share, kind


def _category_rows(histogram: Mapping[str, Any]) -> tuple[list[CategoryRow], bool]:
    """The top categories (by their larger share), then ``N others`` together, then unseen;
    False when one side has no values at all."""
    categories = [str(category) for category in _sequence(histogram.get("categories"))]
    reference, has_reference = _shares(histogram.get("reference"), len(categories))
    current, has_current = _shares(histogram.get("current"), len(categories))
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


def _categorical_chart(feature: Mapping[str, Any]) -> str:
    """Paired horizontal bars: each top category's share in the reference and the window."""
    name = str(feature.get("name"))
    rows, complete = _category_rows(_mapping(feature.get("histogram")))
    width = 560
    left, right, top, row_height = 150, 56, 30, 30
    plot_w = width - left - right
    height = top + row_height * max(len(rows), 1) + 26
    top_share, ticks = _share_axis(max([share for row in rows for share in row[1:3]] or [0.0]))
    parts = [_legend(12, 16, feature.get("reference_rows"), feature.get("current_rows"))]
    baseline = top + row_height * max(len(rows), 1)

    def x_of(share: float) -> float:
        return left + plot_w * share / top_share

    for tick in ticks:
        x = x_of(tick)
        parts.append(
            f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{baseline}" '
            f'stroke="{_GRID_COLOUR}" stroke-width="1"/>'
            f'<text x="{x:.1f}" y="{baseline + 14}" text-anchor="middle" font-size="10" '
            f'fill="{_AXIS_TEXT}">{_esc(format_share(tick))}</text>'
        )
    for index, (category, reference, current, kind) in enumerate(rows):
        y = top + row_height * index + 4
        is_unseen = kind == UNSEEN
        style = ' font-style="italic"' if kind != "category" else ""
        shown = _truncate(category, 22) if kind == "category" else category
        parts.append(
            f'<text x="{left - 8}" y="{y + 14:.1f}" text-anchor="end" font-size="11" '
            f'fill="#1f2937"{style}><title>{_esc(category)}</title>{_esc(shown)}</text>'
        )
        for offset, share, colour, side in (
            (0, reference, _REFERENCE_COLOUR, "reference"),
            (11, current, _UNSEEN_COLOUR if is_unseen else _CURRENT_COLOUR, "current"),
        ):
            end = x_of(share)
            parts.append(
                f'<rect x="{left}" y="{y + offset:.1f}" width="{max(end - left, 0.0):.1f}" '
                f'height="10" fill="{colour}" rx="1.5">'
                f"<title>{_esc(f'{category}: {side} {format_share(share)}')}</title></rect>"
                f'<text x="{end + 4:.1f}" y="{y + offset + 8.5:.1f}" font-size="9.5" '
                f'fill="{_AXIS_TEXT}">{_esc(format_share(share))}</text>'
            )
    parts.append(f'<line x1="{left}" y1="{top}" x2="{left}" y2="{baseline}" stroke="#9ca3af"/>')
    if not rows:
        parts.append(_empty_note(left + plot_w / 2, top + row_height / 2 + 4, "no categories"))
    elif not complete:
        parts.append(
            _empty_note(left + plot_w / 2, top + row_height / 2 + 4, "no values on one side")
        )
    return _svg(width, height, f"{name}: reference vs current categories", "".join(parts))


def _chart(feature: Mapping[str, Any]) -> str:
    histogram = _mapping(feature.get("histogram"))
    if feature.get("type") == "categorical" or "categories" in histogram:
        return _categorical_chart(feature)
    return _numeric_chart(feature)


def _feature_card(anchor: str, feature: Mapping[str, Any]) -> str:
    state, tone = _state(feature)
    badge = {"drift": "drifted", "warning": "warning", "stable": "stable"}[tone]
    stats = " · ".join(text for text, _ in _statistic_parts(feature))
    reasons = "".join(f"<li>{_esc(reason)}</li>" for reason in _sequence(feature.get("reasons")))
    kind = f"{feature.get('type') or NOT_AVAILABLE} · {feature.get('test') or NOT_AVAILABLE}"
    return (
        f'<article class="card card-{tone}" id="{anchor}">'
        f"<header><h3>{_esc(feature.get('name'))}</h3>"
        f'<span class="badge badge-{tone}" title="{_esc(state)}">{badge}</span></header>'
        f'<p class="kind">{_esc(kind)}</p>'
        f'<p class="card-stats">{_esc(stats or NOT_AVAILABLE)}</p>'
        f"{_chart(feature)}"
        f"{f'<ul class=card-reasons>{reasons}</ul>' if reasons else ''}</article>"
    )


def _breach_bar(quality: Mapping[str, Any]) -> float | None:
    """The metric value past which live quality breaches: the holdout, worse by the tolerance."""
    holdout = _number(quality.get("holdout"))
    tolerance = _number(quality.get("tolerance"))
    if holdout is None or tolerance is None or math.isinf(holdout):
        return None
    direction = -1 if quality.get("greater_is_better") is True else 1
    return holdout + direction * tolerance * abs(holdout)


def _value_axis(values: Sequence[float | None]) -> tuple[float, float, list[float]]:
    """A value axis over the finite values: its bottom, its top and round ticks between."""
    finite = [value for value in values if value is not None and math.isfinite(value)]
    low, high = (min(finite), max(finite)) if finite else (0.0, 1.0)
    if high == low:
        low, high = low - max(abs(low) * 0.1, 1.0), high + max(abs(high) * 0.1, 1.0)
    step = _nice_step(high - low)
    low = step * math.floor(low / step)
    high = step * math.ceil(high / step)
    ticks = [low + step * index for index in range(round((high - low) / step) + 1)]
    return low, high, ticks


def _quality_chart(quality: Mapping[str, Any]) -> str:
    """The live metric per period, the holdout value dashed, the breach bar dotted."""
    points = [_mapping(point) for point in _sequence(quality.get("over_time"))]
    name = _metric_name(quality.get("metric"))
    values = [_number(point.get("value")) for point in points]
    values = [None if value is None or math.isinf(value) else value for value in values]
    holdout = _number(quality.get("holdout"))
    breach = _breach_bar(quality)
    width, height = 1040, 260
    left, right, top, bottom = 70, 150, 20, 50
    plot_w, plot_h = width - left - right, height - top - bottom
    low, high, ticks = _value_axis([*values, holdout, breach])

    def y_of(value: float) -> float:
        return top + plot_h * (1 - (value - low) / (high - low))

    def x_of(index: int) -> float:
        if len(points) == 1:
            return left + plot_w / 2
        return left + plot_w * index / (len(points) - 1)

    parts = []
    for tick in ticks:
        y = y_of(tick)
        parts.append(
            f'<line x1="{left}" y1="{y:.1f}" x2="{left + plot_w}" y2="{y:.1f}" '
            f'stroke="{_GRID_COLOUR}"/>'
            f'<text x="{left - 8}" y="{y + 3.5:.1f}" text-anchor="end" font-size="11" '
            f'fill="{_AXIS_TEXT}">{_esc(format_number(tick))}</text>'
        )
    for value, label, dash, colour in (
        (holdout, "holdout", "6 4", "#4b5563"),
        (breach, "breach", "2 3", "#c0362c"),
    ):
        if value is None:
            continue
        y = y_of(value)
        parts.append(
            f'<line x1="{left}" y1="{y:.1f}" x2="{left + plot_w}" y2="{y:.1f}" '
            f'stroke="{colour}" stroke-width="1.5" stroke-dasharray="{dash}"/>'
            f'<text x="{left + plot_w + 8}" y="{y + 4:.1f}" font-size="11" fill="{colour}">'
            f"{_esc(f'{label} {format_number(value)}')}</text>"
        )
    path: list[str] = []
    pen_up = True
    for index, value in enumerate(values):
        if value is None:
            pen_up = True
            continue
        path.append(f"{'M' if pen_up else 'L'}{x_of(index):.1f},{y_of(value):.1f}")
        pen_up = False
    if path:
        parts.append(
            f'<path d="{" ".join(path)}" fill="none" stroke="{_CURRENT_COLOUR}" '
            f'stroke-width="2.5" stroke-linejoin="round"/>'
        )
        last = max(index for index, value in enumerate(values) if value is not None)
        parts.append(
            f'<text x="{left + plot_w + 8}" y="{y_of(values[last] or 0.0) + 4:.1f}" '
            f'font-size="11" font-weight="600" fill="{_CURRENT_COLOUR}">'
            f"{_esc(f'live {name}')}</text>"
        )
    every = max(1, math.ceil(len(points) / 12))
    for index, (point, value) in enumerate(zip(points, values, strict=True)):
        x = x_of(index)
        period = f"{_when(point.get('start'))} → {_when(point.get('end'))}"
        labels = f"{format_count(point.get('labels'))} labels"
        if value is not None:
            parts.append(
                f'<circle cx="{x:.1f}" cy="{y_of(value):.1f}" r="4" fill="#fff" '
                f'stroke="{_CURRENT_COLOUR}" stroke-width="2">'
                f"<title>{_esc(f'{period}: {name} {format_number(value)}, {labels}')}</title>"
                f"</circle>"
            )
        if index % every == 0 or index == len(points) - 1:
            when = _when(point.get("start")).removesuffix(" UTC")
            count = "n=" + format_count(point.get("labels"))
            parts.append(
                f'<text x="{x:.1f}" y="{top + plot_h + 18}" text-anchor="middle" font-size="10.5"'
                f' fill="#374151">{_esc(when[5:] if len(when) > 5 else when)}</text>'
                f'<text x="{x:.1f}" y="{top + plot_h + 32}" text-anchor="middle" font-size="10"'
                f' fill="{_AXIS_TEXT}">{_esc(count)}</text>'
            )
    parts.append(
        f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" '
        f'stroke="#9ca3af"/>'
    )
    return _svg(width, height, f"live {name} per period against the holdout", "".join(parts))


# --- the page --------------------------------------------------------------------------------


def _features_section(report: Mapping[str, Any]) -> str:
    features = _sorted_features(_sequence(report.get("features")))
    if not features:
        return (
            '<section id="features"><h2>Features</h2>'
            '<p class="empty">No features in this report.</p></section>'
        )
    rows = [_table_row(f"feature-{index}", feature) for index, feature in features]
    cards = "".join(_feature_card(f"feature-{index}", feature) for index, feature in features)
    drifted = sum(1 for _, feature in features if feature.get("drifted") is True)
    caption = f"{len(features)} features, {drifted} drifted (drifted first)"
    return (
        f'<section id="features"><h2>Features</h2>{_table(rows, caption)}</section>'
        f'<section id="distributions"><h2>Distributions: reference vs current</h2>'
        f'<div class="cards">{cards}</div></section>'
    )


def _prediction_section(report: Mapping[str, Any]) -> str:
    prediction = report.get("prediction")
    if not isinstance(prediction, Mapping):
        return (
            '<section id="prediction"><h2>Prediction drift</h2>'
            '<p class="empty">Not evaluated in this report.</p></section>'
        )
    row = _table_row("prediction-chart", prediction)
    return (
        f'<section id="prediction"><h2>Prediction drift</h2>'
        f"{_table([row], 'The model output, tested like a feature')}"
        f'<div class="cards">{_feature_card("prediction-chart", prediction)}</div></section>'
    )


def _quality_section(report: Mapping[str, Any]) -> str:
    quality = report.get("quality")
    if not isinstance(quality, Mapping):
        return (
            '<section id="live-quality"><h2>Live quality</h2>'
            '<p class="empty">No labels joined in this window: live quality not evaluated.</p>'
            "</section>"
        )
    text, tone = _quality_line(quality)
    metrics = _mapping(quality.get("metrics"))
    listed = " · ".join(
        f"{_metric_name(name)} {format_number(value)}" for name, value in metrics.items()
    )
    detail = f"Over {format_count(quality.get('labels'))} labels"
    detail += f": {listed}" if listed else ""
    tolerance = _number(quality.get("tolerance"))
    if tolerance is not None:
        detail += f". A breach is more than {format_share(tolerance)} worse than the holdout."
    chart = ""
    if _sequence(quality.get("over_time")):
        chart = f'<figure class="wide">{_quality_chart(quality)}</figure>'
    return (
        f'<section id="live-quality"><h2>Live quality</h2>'
        f'<p class="line tone-{tone}">{_esc(text)}</p><p class="detail">{_esc(detail)}</p>'
        f"{chart}</section>"
    )


_STYLE = """
:root { color-scheme: light; }
* { box-sizing: border-box; }
body { margin: 0; background: #f4f6f9; color: #1f2937;
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif;
  font-variant-numeric: tabular-nums; }
main { max-width: 1180px; margin: 0 auto; padding: 28px 28px 48px; }
h1 { font-size: 28px; line-height: 1.2; margin: 4px 0 12px; }
h2 { font-size: 18px; margin: 0 0 12px; }
h3 { font-size: 15px; margin: 0; overflow-wrap: anywhere; }
section { background: #fff; border: 1px solid #e5e7eb; border-radius: 10px; padding: 20px 22px;
  margin-top: 18px; }
.verdict { border-radius: 12px; padding: 22px 26px; border: 1px solid; border-left-width: 8px; }
.verdict.tone-drift { background: #fef3f2; border-color: #fecdca; border-left-color: #d92d20; }
.verdict.tone-drift h1 { color: #b42318; }
.verdict.tone-ok { background: #ecfdf3; border-color: #abefc6; border-left-color: #079455; }
.verdict.tone-ok h1 { color: #067647; }
.verdict.tone-insufficient { background: #fffaeb; border-color: #fedf89;
  border-left-color: #dc6803; }
.verdict.tone-insufficient h1 { color: #93370d; }
.eyebrow { margin: 0; text-transform: uppercase; letter-spacing: .06em; font-size: 12px;
  color: #4b5563; font-weight: 600; }
.line { margin: 4px 0; font-size: 16px; font-weight: 600; }
.tone-drift.line { color: #b42318; }
.tone-ok.line { color: #067647; }
.tone-muted.line { color: #4b5563; }
.reasons { margin: 6px 0 0; padding-left: 20px; color: #374151; }
.facts { display: grid; grid-template-columns: repeat(6, 1fr); gap: 12px 18px; margin: 18px 0 0;
  background: #fff; border: 1px solid #e5e7eb; border-radius: 10px; padding: 16px 22px; }
.facts dt { font-size: 11px; text-transform: uppercase; letter-spacing: .05em; color: #6b7280; }
.facts dd { margin: 2px 0 0; font-weight: 600; overflow-wrap: anywhere; }
.facts .fact-0, .facts .fact-4 { grid-column: span 3; }
.facts .fact-6 { grid-column: span 2; }
table.summary { width: 100%; border-collapse: collapse; font-size: 13px; }
.summary caption { text-align: left; color: #6b7280; padding-bottom: 8px; }
.summary th, .summary td { padding: 7px 10px; border-bottom: 1px solid #eef0f3; text-align: left;
  vertical-align: top; }
.summary thead th { font-size: 11px; text-transform: uppercase; letter-spacing: .04em;
  color: #6b7280; border-bottom: 2px solid #e5e7eb; }
.summary tbody th { white-space: nowrap; }
.summary tbody th a { color: #1d4ed8; text-decoration: none; }
.summary .num { text-align: right; }
.summary td.num { white-space: nowrap; }
.row-drift { background: #fff7f6; }
.stats .stat { display: block; white-space: nowrap; }
.stat.exceeded { color: #b42318; font-weight: 600; }
.state { white-space: nowrap; font-weight: 600; }
.state-drift { color: #b42318; }
.state-warning { color: #b54708; }
.state-stable { color: #6b7280; font-weight: 400; }
.cards { display: grid; grid-template-columns: repeat(2, minmax(0, 1fr)); gap: 16px; }
#prediction .cards { grid-template-columns: minmax(0, 1fr) minmax(0, 1fr); margin-top: 14px; }
.card { border: 1px solid #e5e7eb; border-top: 4px solid #d0d5dd; border-radius: 8px;
  padding: 12px 14px; background: #fff; break-inside: avoid; }
.card-drift { border-top-color: #d92d20; }
.card-warning { border-top-color: #f79009; }
.card header { display: flex; justify-content: space-between; align-items: center; gap: 8px; }
.badge { font-size: 11px; font-weight: 700; text-transform: uppercase; letter-spacing: .04em;
  border-radius: 999px; padding: 2px 9px; }
.badge-drift { background: #fee4e2; color: #b42318; }
.badge-warning { background: #fef0c7; color: #93370d; }
.badge-stable { background: #f2f4f7; color: #475467; }
.kind { margin: 2px 0 0; color: #6b7280; font-size: 12px; }
.card-stats { margin: 4px 0 6px; font-size: 12.5px; }
.card-reasons { margin: 4px 0 0; padding-left: 18px; font-size: 12px; color: #b42318; }
svg.chart { display: block; width: 100%; height: auto; font-family: inherit; }
figure.wide { margin: 12px 0 0; }
.detail { color: #4b5563; margin: 2px 0 0; }
.empty { color: #6b7280; font-style: italic; margin: 0; }
footer { color: #9ca3af; font-size: 12px; margin-top: 18px; text-align: center; }
@media (max-width: 820px) { .cards, #prediction .cards { grid-template-columns: 1fr; }
  .facts { grid-template-columns: 1fr 1fr; } .facts > div { grid-column: auto !important; } }
@page { size: A4; margin: 12mm; }
@media print {
  body { background: #fff; font-size: 11px; -webkit-print-color-adjust: exact;
    print-color-adjust: exact; }
  main { max-width: none; padding: 0; }
  section, .facts { border: none; padding: 8px 0; }
  .card, tr, .verdict, figure { break-inside: avoid; }
  h2 { break-after: avoid; }
  .summary tbody th a { color: inherit; }
}
"""


def render_html(report: Mapping[str, Any]) -> str:
    """The drift report as one self-contained HTML page (UTF-8, no external resources)."""
    title, _ = headline(report)
    window = _mapping(report.get("window"))
    heading = (
        f"Drift report: {report.get('model') or 'model'} v{report.get('version') or '?'}, "
        f"{_when(window.get('start'))} → {_when(window.get('end'))}"
    )
    version = report.get("schema_version")
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_esc(heading)}: {_esc(title)}</title>"
        f"<style>{_STYLE}</style></head>\n<body><main>"
        f"{_verdict_section(report)}{_facts_section(report)}"
        f"{_features_section(report)}{_prediction_section(report)}{_quality_section(report)}"
        f"<footer>{_esc(report.get('kind') or 'drift_report')}, schema version "
        f"{_esc(version if version is not None else NOT_AVAILABLE)} · "
        f"generated {_esc(_when(report.get('generated_at')))}</footer>"
        "</main></body></html>\n"
    )
