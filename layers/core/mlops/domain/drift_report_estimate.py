"""The drift report's estimated quality, in words, a table and a chart: estimated and
realized quality side by side per hour, and the estimate's error where labels have arrived.

Reads the report's ``estimate`` section (``domain.estimate_report``). Every sentence and
label says ESTIMATE: an estimate is a forecast of what labels will say, not a measurement.
Plain strings and inline SVG; every text passes through ``html_escape.escape``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from mlops.domain.html_escape import escape
from mlops.domain.report_text import (
    as_mapping,
    as_number,
    as_sequence,
    format_count,
    format_number,
    format_share,
    format_time,
    metric_name,
)

_ESTIMATE_COLOUR = "#7c3aed"
_BAND_COLOUR = "#ede9fe"
_REALIZED_COLOUR = "#2f6fde"
_AXIS_TEXT = "#6b7280"


def estimate_breach_text(report: Mapping[str, Any]) -> str:
    """``ESTIMATED RMSE +35 % (no labels yet)`` when the estimate breached; else empty."""
    section = as_mapping(report.get("estimate"))
    if section.get("breach") is not True:
        return ""
    name = metric_name(section.get("metric"))
    window = as_mapping(as_mapping(section.get("window")).get(str(section.get("metric"))))
    value, holdout = as_number(window.get("value")), as_number(section.get("holdout"))
    if value is None or holdout is None or holdout == 0:
        return f"ESTIMATED {name} worse than the holdout (an estimate, before labels)"
    change = format_share((value - holdout) / abs(holdout), signed=True)
    return f"ESTIMATED {name} {change} (an estimate, before labels)"


def estimate_line(section: Mapping[str, Any] | None) -> tuple[str, str]:
    """The estimate's sentence and its tone (``drift``, ``ok``, ``muted``)."""
    if not section:
        return "Estimated quality: not evaluated", "muted"
    if section.get("available") is not True:
        return f"Estimated quality: {section.get('reason') or 'not available'}", "muted"
    return str(section.get("reason")), "drift" if section.get("breach") is True else "ok"


def estimate_detail(section: Mapping[str, Any]) -> str:
    """The method, every estimated metric over the window, the unscored rows, the track
    record where labels have arrived, and what an estimate cannot see."""
    window = as_mapping(section.get("window"))
    listed = " · ".join(
        f"{metric_name(name)} {format_number(as_mapping(e).get('value'))} "
        f"[{format_number(as_mapping(e).get('low'))}, {format_number(as_mapping(e).get('high'))}]"
        for name, e in window.items()
    )
    text = f"ESTIMATE by {section.get('method')}"
    text += f": {listed}" if listed else ""
    text += (
        f". {format_count(section.get('rows'))} rows scored, "
        f"{format_count(section.get('unscored'))} not (no inputs or probabilities captured)."
    )
    no_relative = as_number(section.get("no_relative"))
    if no_relative:
        text += (
            f" {format_count(no_relative)} scored rows predicted 0 (or too near it): no "
            "relative error, outside the MAPE estimate."
        )
    record = as_mapping(section.get("accuracy_of_estimate"))
    if record:
        text += (
            f" In {format_count(record.get('hours'))} hours with labels, the estimate was off by "
            f"{format_number(record.get('mean_abs_error'))} on average and its interval covered "
            f"the realized value in {format_share(record.get('covered_share'))} of them."
        )
    return text + (
        " Estimates assume the inputs' relation to the target has not moved: pure concept "
        "drift leaves them unchanged; only labels show it."
    )


def hour_rows(section: Mapping[str, Any]) -> list[tuple[str, str, str, str, str]]:
    """Per hour: start, estimate [interval], realized (labels), error, rows."""
    metric = str(section.get("metric"))
    out = []
    for item in as_sequence(section.get("hours")):
        hour = as_mapping(item)
        estimate = as_mapping(as_mapping(hour.get("estimates")).get(metric))
        realized = as_number(hour.get("realized"))
        error = as_number(hour.get("error"))
        out.append(
            (
                format_time(hour.get("start")),
                f"{format_number(estimate.get('value'))} "
                f"[{format_number(estimate.get('low'))}, {format_number(estimate.get('high'))}]",
                "no labels yet"
                if realized is None
                else f"{format_number(realized)} ({format_count(hour.get('labels'))} labels)",
                "" if error is None else ("+" if error > 0 else "") + format_number(error),
                format_count(hour.get("rows")),
            )
        )
    return out


def estimate_chart(section: Mapping[str, Any]) -> str:
    """Per hour: the estimate (line) in its 95 % interval (band), the realized value where
    labels have arrived (points), the holdout dashed."""
    metric = str(section.get("metric"))
    hours = [as_mapping(h) for h in as_sequence(section.get("hours"))]
    estimates = [as_mapping(as_mapping(h.get("estimates")).get(metric)) for h in hours]
    values = [as_number(e.get("value")) for e in estimates]
    lows = [as_number(e.get("low")) for e in estimates]
    highs = [as_number(e.get("high")) for e in estimates]
    realized = [as_number(h.get("realized")) for h in hours]
    holdout = as_number(section.get("holdout"))
    finite = [
        v
        for v in (*values, *lows, *highs, *realized, holdout)
        if v is not None and math.isfinite(v)
    ]
    name = metric_name(metric)
    width, height = 1040, 260
    left, right, top, bottom = 70, 170, 20, 40
    plot_w, plot_h = width - left - right, height - top - bottom
    low, high = (min(finite), max(finite)) if finite else (0.0, 1.0)
    if high == low:
        low, high = low - 1.0, high + 1.0
    pad = (high - low) * 0.08
    low, high = low - pad, high + pad

    def y_of(value: float) -> float:
        return top + plot_h * (1 - (value - low) / (high - low))

    def x_of(index: int) -> float:
        return left + (plot_w / 2 if len(hours) <= 1 else plot_w * index / (len(hours) - 1))

    parts = []
    for tick in (low + (high - low) * k / 4 for k in range(5)):
        parts.append(
            f'<text x="{left - 8}" y="{y_of(tick) + 3.5:.1f}" text-anchor="end" font-size="11" '
            f'fill="{_AXIS_TEXT}">{escape(format_number(tick))}</text>'
        )
    band = [
        (i, lo, hi)
        for i, (lo, hi) in enumerate(zip(lows, highs, strict=True))
        if lo is not None and hi is not None
    ]
    if band:
        upper = " ".join(f"{x_of(i):.1f},{y_of(hi):.1f}" for i, _, hi in band)
        lower = " ".join(f"{x_of(i):.1f},{y_of(lo):.1f}" for i, lo, _ in reversed(band))
        parts.append(f'<polygon points="{upper} {lower}" fill="{_BAND_COLOUR}"/>')
    if holdout is not None:
        y = y_of(holdout)
        parts.append(
            f'<line x1="{left}" y1="{y:.1f}" x2="{left + plot_w}" y2="{y:.1f}" stroke="#4b5563" '
            f'stroke-dasharray="6 4"/><text x="{left + plot_w + 8}" y="{y + 4:.1f}" '
            f'font-size="11" fill="#4b5563">{escape(f"holdout {format_number(holdout)}")}</text>'
        )
    line = [f"{x_of(i):.1f},{y_of(v):.1f}" for i, v in enumerate(values) if v is not None]
    if line:
        parts.append(
            f'<polyline class="estimated" points="{" ".join(line)}" fill="none" '
            f'stroke="{_ESTIMATE_COLOUR}" stroke-width="2.5" stroke-dasharray="7 3"/>'
            f'<text x="{left + plot_w + 8}" y="{top + 12}" font-size="11" font-weight="600" '
            f'fill="{_ESTIMATE_COLOUR}">{escape(f"ESTIMATED {name}")}</text>'
        )
    for i, value in enumerate(realized):
        if value is not None:
            tip = escape(f"realized {name} {format_number(value)}")
            parts.append(
                f'<circle class="realized" cx="{x_of(i):.1f}" cy="{y_of(value):.1f}" r="3.5" '
                f'fill="{_REALIZED_COLOUR}"><title>{tip}</title></circle>'
            )
    if any(v is not None for v in realized):
        parts.append(
            f'<text x="{left + plot_w + 8}" y="{top + 28}" font-size="11" font-weight="600" '
            f'fill="{_REALIZED_COLOUR}">{escape(f"realized {name} (labels)")}</text>'
        )
    every = max(1, math.ceil(len(hours) / 10))
    for i, hour in enumerate(hours):
        if i % every == 0 or i == len(hours) - 1:
            when = format_time(hour.get("start")).removesuffix(" UTC")
            parts.append(
                f'<text x="{x_of(i):.1f}" y="{top + plot_h + 18}" text-anchor="middle" '
                f'font-size="10.5" fill="#374151">{escape(when[5:] if len(when) > 5 else when)}'
                "</text>"
            )
    label = f"ESTIMATED {name} per hour with its 95 % interval, and realized {name} from labels"
    return (
        f'<svg class="chart" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'role="img" aria-label="{escape(label)}" preserveAspectRatio="xMinYMin meet">'
        f"<title>{escape(label)}</title>{''.join(parts)}</svg>"
    )


def estimate_html(report: Mapping[str, Any]) -> str:
    """The page's "Estimated quality" section (empty when the report has no estimate)."""
    section = report.get("estimate")
    if not isinstance(section, Mapping):
        return ""
    text, tone = estimate_line(section)
    body = f'<p class="line tone-{tone}" id="estimate-line">{escape(text)}</p>'
    if section.get("available") is True:
        body += f'<p class="detail">{escape(estimate_detail(section))}</p>'
    if as_sequence(section.get("hours")):
        body += f'<figure class="wide">{estimate_chart(section)}</figure>'
        head = "".join(
            f"<th scope='col'>{escape(h)}</th>"
            for h in ("Hour", "ESTIMATE [95 %]", "Realized", "Error", "Rows")
        )
        rows = "".join(
            "<tr>" + "".join(f"<td>{escape(cell)}</td>" for cell in row) + "</tr>"
            for row in hour_rows(section)
        )
        body += (
            f'<table class="summary" id="estimate-hours"><thead><tr>{head}</tr></thead>'
            f"<tbody>{rows}</tbody></table>"
        )
    return (
        '<section id="estimated-quality"><h2>Estimated quality (ESTIMATE, before labels)</h2>'
        f"{body}</section>"
    )
