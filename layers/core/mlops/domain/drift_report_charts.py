"""The drift report's figures as inline SVG: what each chart draws and where.

A numeric feature is paired bars on the baseline's bins, a categorical one paired horizontal
bars for its top categories (then the others, then unseen), and live quality a line over time
against the holdout and the breach bar. Drawn here, nothing fetched: the page's
Content-Security-Policy allows no images but data: URIs and no scripts. The shares and rows come
from ``drift_report``; every text passes through ``html_escape.escape``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from mlops.domain.drift_report import UNSEEN, as_shares, breach_bar, category_rows
from mlops.domain.html_escape import escape
from mlops.domain.report_text import (
    as_mapping,
    as_number,
    as_sequence,
    format_axis_number,
    format_count,
    format_number,
    format_share,
    format_time,
    metric_name,
    truncate,
)

_REFERENCE_COLOUR = "#b4c0d3"
_CURRENT_COLOUR = "#2f6fde"
_UNSEEN_COLOUR = "#e0620d"
_GRID_COLOUR = "#e6e9ef"
_AXIS_TEXT = "#6b7280"


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
        f'<text x="{x + 14:.1f}" y="{y:.1f}">{escape(reference)}</text>'
        f'<rect x="{x + 190:.1f}" y="{y - 9:.1f}" width="10" height="10" rx="2" '
        f'fill="{_CURRENT_COLOUR}"/>'
        f'<text x="{x + 204:.1f}" y="{y:.1f}">{escape(current)}</text></g>'
    )


def _svg(width: int, height: int, label: str, body: str) -> str:
    return (
        f'<svg class="chart" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'role="img" aria-label="{escape(label)}" preserveAspectRatio="xMinYMin meet">'
        f"<title>{escape(label)}</title>{body}</svg>"
    )


def _empty_note(x: float, y: float, text: str) -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="middle" font-size="12" '
        f'fill="{_AXIS_TEXT}">{escape(text)}</text>'
    )


def _numeric_chart(feature: Mapping[str, Any]) -> str:
    """Paired bars on the baseline's bins; bin edges (and the observed bounds) below."""
    histogram = as_mapping(feature.get("histogram"))
    name = str(feature.get("name"))
    edges = [as_number(edge) for edge in as_sequence(histogram.get("edges"))]
    bins = max(
        len(edges) + 1,
        len(as_sequence(histogram.get("reference"))),
        len(as_sequence(histogram.get("current"))),
    )
    reference, has_reference = as_shares(histogram.get("reference"), bins)
    current, has_current = as_shares(histogram.get("current"), bins)
    bounds = [as_number(bound) for bound in as_sequence(histogram.get("bounds"))][:2]
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
            f'fill="{_AXIS_TEXT}">{escape(format_share(tick))}</text>'
        )
    slot = plot_w / bins
    bar = slot * 0.36
    for index in range(bins):
        x = left + slot * index
        low = boundaries[index] if index < len(boundaries) else None
        high = boundaries[index + 1] if index + 1 < len(boundaries) else None
        span = f"{format_axis_number(low) if low is not None else '…'} to "
        span += format_axis_number(high) if high is not None else "…"
        for offset, share, colour, side in (
            (slot * 0.12, reference[index], _REFERENCE_COLOUR, "reference"),
            (slot * 0.12 + bar, current[index], _CURRENT_COLOUR, "current"),
        ):
            y = y_of(share)
            parts.append(
                f'<rect x="{x + offset:.1f}" y="{y:.1f}" width="{bar:.1f}" '
                f'height="{top + plot_h - y:.1f}" fill="{colour}" rx="1.5">'
                f"<title>{escape(f'{span}: {side} {format_share(share)}')}</title></rect>"
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
            f'fill="{_AXIS_TEXT}">{escape(format_axis_number(boundary))}</text>'
        )
    parts.append(
        f'<text x="{left + plot_w / 2:.1f}" y="{height - 6}" text-anchor="middle" '
        f'font-size="10" fill="{_AXIS_TEXT}">bins of the training data (edges)</text>'
    )
    if not has_current or not has_reference:
        missing = "no current values in this window" if not has_current else "no reference"
        parts.append(_empty_note(left + plot_w / 2, top + plot_h / 2, missing))
    return _svg(width, height, f"{name}: reference vs current distribution", "".join(parts))


def _categorical_chart(feature: Mapping[str, Any]) -> str:
    """Paired horizontal bars: each top category's share in the reference and the window."""
    name = str(feature.get("name"))
    rows, complete = category_rows(as_mapping(feature.get("histogram")))
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
            f'fill="{_AXIS_TEXT}">{escape(format_share(tick))}</text>'
        )
    for index, (category, reference, current, kind) in enumerate(rows):
        y = top + row_height * index + 4
        is_unseen = kind == UNSEEN
        style = ' font-style="italic"' if kind != "category" else ""
        shown = truncate(category, 22) if kind == "category" else category
        parts.append(
            f'<text x="{left - 8}" y="{y + 14:.1f}" text-anchor="end" font-size="11" '
            f'fill="#1f2937"{style}><title>{escape(category)}</title>{escape(shown)}</text>'
        )
        for offset, share, colour, side in (
            (0, reference, _REFERENCE_COLOUR, "reference"),
            (11, current, _UNSEEN_COLOUR if is_unseen else _CURRENT_COLOUR, "current"),
        ):
            end = x_of(share)
            parts.append(
                f'<rect x="{left}" y="{y + offset:.1f}" width="{max(end - left, 0.0):.1f}" '
                f'height="10" fill="{colour}" rx="1.5">'
                f"<title>{escape(f'{category}: {side} {format_share(share)}')}</title></rect>"
                f'<text x="{end + 4:.1f}" y="{y + offset + 8.5:.1f}" font-size="9.5" '
                f'fill="{_AXIS_TEXT}">{escape(format_share(share))}</text>'
            )
    parts.append(f'<line x1="{left}" y1="{top}" x2="{left}" y2="{baseline}" stroke="#9ca3af"/>')
    if not rows:
        parts.append(_empty_note(left + plot_w / 2, top + row_height / 2 + 4, "no categories"))
    elif not complete:
        parts.append(
            _empty_note(left + plot_w / 2, top + row_height / 2 + 4, "no values on one side")
        )
    return _svg(width, height, f"{name}: reference vs current categories", "".join(parts))


def feature_chart(feature: Mapping[str, Any]) -> str:
    histogram = as_mapping(feature.get("histogram"))
    if feature.get("type") == "categorical" or "categories" in histogram:
        return _categorical_chart(feature)
    return _numeric_chart(feature)


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


def quality_chart(quality: Mapping[str, Any]) -> str:
    """The live metric per period, the holdout value dashed, the breach bar dotted."""
    points = [as_mapping(point) for point in as_sequence(quality.get("over_time"))]
    name = metric_name(quality.get("metric"))
    values = [as_number(point.get("value")) for point in points]
    values = [None if value is None or math.isinf(value) else value for value in values]
    holdout = as_number(quality.get("holdout"))
    breach = breach_bar(quality)
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
            f'fill="{_AXIS_TEXT}">{escape(format_number(tick))}</text>'
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
            f"{escape(f'{label} {format_number(value)}')}</text>"
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
            f"{escape(f'live {name}')}</text>"
        )
    every = max(1, math.ceil(len(points) / 12))
    for index, (point, value) in enumerate(zip(points, values, strict=True)):
        x = x_of(index)
        period = f"{format_time(point.get('start'))} → {format_time(point.get('end'))}"
        labels = f"{format_count(point.get('labels'))} labels"
        if value is not None:
            parts.append(
                f'<circle cx="{x:.1f}" cy="{y_of(value):.1f}" r="4" fill="#fff" '
                f'stroke="{_CURRENT_COLOUR}" stroke-width="2">'
                f"<title>{escape(f'{period}: {name} {format_number(value)}, {labels}')}</title>"
                f"</circle>"
            )
        if index % every == 0 or index == len(points) - 1:
            when = format_time(point.get("start")).removesuffix(" UTC")
            count = "n=" + format_count(point.get("labels"))
            parts.append(
                f'<text x="{x:.1f}" y="{top + plot_h + 18}" text-anchor="middle" font-size="10.5"'
                f' fill="#374151">{escape(when[5:] if len(when) > 5 else when)}</text>'
                f'<text x="{x:.1f}" y="{top + plot_h + 32}" text-anchor="middle" font-size="10"'
                f' fill="{_AXIS_TEXT}">{escape(count)}</text>'
            )
    parts.append(
        f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" '
        f'stroke="#9ca3af"/>'
    )
    return _svg(width, height, f"live {name} per period against the holdout", "".join(parts))
