"""The demo's report: one self-contained HTML page from the summary ``mlops demo`` builds.

Top to bottom: the outcome in one sentence, a few figures, live error over the months for the
system and for the twin that is never retrained (with the moments production changed), the
serving version's quality live and ESTIMATED at each evaluation (``quality_chart``), the
drift evaluator's scores over the months (the share of drifted features, and a heat map of each
feature's score against its threshold), the table per month, and links to every drift report
the evaluator wrote (copied next to the page, so they open from the disk).

Like the drift report: inline CSS and SVG, a Content-Security-Policy that forbids every fetch
and script, every string escaped. Pure: a summary in, a page out (``render_demo_html``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from mlops.domain.report_text import format_count, format_number, format_share
from mlops_cli.demo.quality_chart import quality_chart
from mlops_cli.demo.svg import (
    AXIS_TEXT,
    CSP,
    DRIFT_COLOUR,
    ESTIMATE_COLOUR,
    EVENT_COLOUR,
    GRID_COLOUR,
    STATIC_COLOUR,
    SYSTEM_COLOUR,
    gridlines,
)
from mlops_cli.demo.svg import esc as _esc
from mlops_cli.demo.svg import mapping as _mapping
from mlops_cli.demo.svg import money_axis as _money_axis
from mlops_cli.demo.svg import nice_top as _nice_top
from mlops_cli.demo.svg import note as _note
from mlops_cli.demo.svg import number as _number
from mlops_cli.demo.svg import sequence as _sequence
from mlops_cli.demo.svg import svg as _svg

_STYLE = """
body{margin:0;font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1f2933;
background:#f6f7f9}
main{max-width:1180px;margin:0 auto;padding:24px 28px 48px}
h1{font-size:26px;margin:8px 0 4px}h2{font-size:19px;margin:32px 0 8px}
.lead{font-size:16px;color:#374151;margin:0 0 18px}
.figures{display:flex;flex-wrap:wrap;gap:12px;margin:12px 0 8px}
.figure{background:#fff;border:1px solid #dde2ea;border-radius:8px;padding:10px 14px;
min-width:150px}
.figure b{display:block;font-size:22px}.figure span{color:#6b7280;font-size:13px}
.card{background:#fff;border:1px solid #dde2ea;border-radius:8px;padding:12px 14px;margin:10px 0}
table{border-collapse:collapse;width:100%;background:#fff;font-size:14px}
th,td{border-bottom:1px solid #e6e9ef;padding:6px 8px;text-align:left;vertical-align:top}
th{background:#eef1f6;font-weight:600}td.num{text-align:right;font-variant-numeric:tabular-nums}
tr.drift td.share{color:#c0392b;font-weight:600}
.events{margin:0;padding-left:16px}.events li{margin:0}
.muted{color:#6b7280}.legend{font-size:13px;color:#374151}
.swatch{display:inline-block;width:12px;height:12px;border-radius:2px;margin:0 4px 0 12px;
vertical-align:-1px}
a{color:#1d4ed8}
svg{display:block;max-width:100%;height:auto}
"""


# --- charts ----------------------------------------------------------------------------------


def error_chart(months: Sequence[Mapping[str, Any]]) -> str:
    """Live RMSE per month: the system and the never-retrained twin, with production changes."""
    width, height = 1100, 340
    left, right, top, bottom = 70, 60, 20, 50
    plot_w, plot_h = width - left - right, height - top - bottom
    system = [_number(m.get("rmse_system")) for m in months]
    static = [_number(m.get("rmse_static")) for m in months]
    values = [v for v in (*system, *static) if v is not None]
    if not months or not values:
        return _svg(width, 80, "live error over time: no data", _note(width / 2, 40, "no data"))
    axis_top, step = _nice_top(max(values) * 1.05)
    count = len(months)

    def x(index: int) -> float:
        return left + (plot_w * (index + 0.5) / count)

    def y(value: float) -> float:
        return top + plot_h * (1 - value / axis_top)

    parts = gridlines(axis_top, step, x_from=left, x_to=width - right, y=y, label=_money_axis)
    row = 0
    for index, month in enumerate(months):
        parts.append(
            f'<text x="{x(index):.1f}" y="{height - bottom + 18}" text-anchor="middle" '
            f'font-size="12" fill="{AXIS_TEXT}">{_esc(month.get("month"))}</text>'
        )
        for item in _sequence(month.get("production_changes")):
            change = _mapping(item)
            # Mid-month changes (a canary's verdict) at the month's point, month-end ones
            # (a canary started after retraining) between this month and the next.
            at = x(index) + (0 if change.get("at") == "mid" else plot_w / count / 2)
            colour = DRIFT_COLOUR if change.get("kind") == "rolled_back" else EVENT_COLOUR
            dash = "2 3" if change.get("kind") == "canary" else "5 3"
            label_y = top + 12 + 13 * (row % 2)
            row += 1
            parts.append(
                f'<line x1="{at:.1f}" x2="{at:.1f}" y1="{top}" y2="{top + plot_h}" '
                f'stroke="{colour}" stroke-dasharray="{dash}"/>'
                f'<text x="{at + 3:.1f}" y="{label_y}" font-size="11" '
                f'fill="{colour}">{_esc(change.get("label"))}</text>'
            )
    parts.append(
        f'<text x="{left + plot_w / 2}" y="{height - 8}" text-anchor="middle" font-size="12" '
        f'fill="{AXIS_TEXT}">month of the market</text>'
    )
    for series, colour, name in (
        (static, STATIC_COLOUR, "never retrained (v1)"),
        (system, SYSTEM_COLOUR, "system"),
    ):
        points = [(x(i), y(v)) for i, v in enumerate(series) if v is not None]
        if len(points) > 1:
            path = " ".join(f"{px:.1f},{py:.1f}" for px, py in points)
            parts.append(
                f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2.5">'
                f"<title>{_esc(name)}</title></polyline>"
            )
        for (px, py), value in zip(points, [v for v in series if v is not None], strict=True):
            parts.append(
                f'<circle cx="{px:.1f}" cy="{py:.1f}" r="4" fill="{colour}">'
                f"<title>{_esc(name)}: RMSE {format_number(value)}</title></circle>"
            )
    return _svg(
        width, height, "live RMSE per month, system and never-retrained twin", "".join(parts)
    )


def drift_share_chart(months: Sequence[Mapping[str, Any]]) -> str:
    """The evaluator's share of drifted features per month, against the dataset-drift bar."""
    width, height = 1100, 220
    left, right, top, bottom = 70, 20, 16, 40
    plot_w, plot_h = width - left - right, height - top - bottom
    if not months:
        return _svg(width, 80, "drift share over time: no data", _note(width / 2, 40, "no data"))
    count = len(months)
    bar = plot_w / count * 0.6
    parts: list[str] = []
    for tick in (0.0, 0.25, 0.5, 0.75, 1.0):
        ty = top + plot_h * (1 - tick)
        parts.append(
            f'<line x1="{left}" x2="{width - right}" y1="{ty:.1f}" y2="{ty:.1f}" '
            f'stroke="{GRID_COLOUR}"/><text x="{left - 8}" y="{ty + 4:.1f}" text-anchor="end" '
            f'font-size="12" fill="{AXIS_TEXT}">{tick:.0%}</text>'
        )
    threshold = None
    for index, month in enumerate(months):
        drift = _mapping(month.get("drift"))
        share = _number(drift.get("drift_share"))
        threshold = _number(drift.get("drift_share_threshold")) or threshold
        cx = left + plot_w * (index + 0.5) / count
        parts.append(
            f'<text x="{cx:.1f}" y="{height - bottom + 18}" text-anchor="middle" font-size="12" '
            f'fill="{AXIS_TEXT}">{_esc(month.get("month"))}</text>'
        )
        if share is None:
            continue
        flagged = bool(drift.get("dataset_drift")) or bool(drift.get("quality_breach"))
        colour = DRIFT_COLOUR if flagged else "#9aa5b1"
        bar_h = plot_h * min(max(share, 0.0), 1.0)
        title = f"month {month.get('month')}: {format_share(share)} of features drifted"
        if drift.get("quality_breach"):
            title += "; live quality breach"
        parts.append(
            f'<rect x="{cx - bar / 2:.1f}" y="{top + plot_h - bar_h:.1f}" width="{bar:.1f}" '
            f'height="{max(bar_h, 1):.1f}" fill="{colour}"><title>{_esc(title)}</title></rect>'
        )
        if drift.get("quality_breach"):
            parts.append(
                f'<text x="{cx:.1f}" y="{top + plot_h - bar_h - 4:.1f}" text-anchor="middle" '
                f'font-size="11" fill="{DRIFT_COLOUR}">quality</text>'
            )
    if threshold is not None:
        ty = top + plot_h * (1 - threshold)
        parts.append(
            f'<line x1="{left}" x2="{width - right}" y1="{ty:.1f}" y2="{ty:.1f}" '
            f'stroke="{DRIFT_COLOUR}" stroke-dasharray="6 4"/><text x="{width - right - 4}" '
            f'y="{ty - 4:.1f}" text-anchor="end" font-size="11" fill="{DRIFT_COLOUR}">'
            f"dataset drift at {format_share(threshold)}</text>"
        )
    return _svg(width, height, "share of drifted features per month", "".join(parts))


def feature_heatmap(months: Sequence[Mapping[str, Any]]) -> str:
    """Each feature's drift score per month as a share of its threshold (1 = at the bar)."""
    names: list[str] = []
    for month in months:
        for name in _mapping(_mapping(month.get("drift")).get("feature_scores")):
            if name not in names:
                names.append(str(name))
    if not months or not names:
        return _svg(600, 60, "feature drift scores: none", _note(300, 30, "no feature scores"))
    cell_w, cell_h, left, top = 56, 24, 150, 24
    width = left + cell_w * len(months) + 120
    height = top + cell_h * len(names) + 30
    parts: list[str] = []
    for col, month in enumerate(months):
        parts.append(
            f'<text x="{left + cell_w * (col + 0.5):.1f}" y="{top - 8}" text-anchor="middle" '
            f'font-size="12" fill="{AXIS_TEXT}">{_esc(month.get("month"))}</text>'
        )
    for row, name in enumerate(names):
        y0 = top + cell_h * row
        parts.append(
            f'<text x="{left - 8}" y="{y0 + cell_h / 2 + 4:.1f}" text-anchor="end" '
            f'font-size="12" fill="#374151">{_esc(name)}</text>'
        )
        for col, month in enumerate(months):
            scores = _mapping(_mapping(month.get("drift")).get("feature_scores"))
            score = _number(scores.get(name))
            x0 = left + cell_w * col
            if score is None:
                fill, label = "#f1f3f6", "n/a"
            else:
                fill, label = _heat(score), f"{score:.1f}"
            parts.append(
                f'<rect x="{x0 + 1}" y="{y0 + 1}" width="{cell_w - 2}" height="{cell_h - 2}" '
                f'fill="{fill}"><title>{_esc(name)}, month {_esc(month.get("month"))}: '
                f"{_esc(label)} x its threshold</title></rect>"
            )
            if score is not None:
                ink = "#fff" if score >= 1.5 else "#1f2933"
                parts.append(
                    f'<text x="{x0 + cell_w / 2:.1f}" y="{y0 + cell_h / 2 + 4:.1f}" '
                    f'text-anchor="middle" font-size="11" fill="{ink}">{_esc(label)}</text>'
                )
    legend_x = left + cell_w * len(months) + 16
    for i, (score, text) in enumerate(((0.2, "calm"), (1.0, "at threshold"), (3.0, "drifted"))):
        ly = top + 4 + i * 22
        parts.append(
            f'<rect x="{legend_x}" y="{ly}" width="14" height="14" fill="{_heat(score)}"/>'
            f'<text x="{legend_x + 20}" y="{ly + 12}" font-size="12" fill="#374151">'
            f"{_esc(text)}</text>"
        )
    return _svg(width, height, "feature drift scores per month (score / threshold)", "".join(parts))


def _heat(score: float) -> str:
    """White under half the threshold, through amber at it, to deep red at three times it."""
    t = min(max((score - 0.5) / 2.5, 0.0), 1.0)
    r = round(255 - 63 * t)
    g = round(247 - 190 * t)
    b = round(237 - 194 * t)
    return f"#{r:02x}{g:02x}{b:02x}"


# --- sections --------------------------------------------------------------------------------


def _headline(summary: Mapping[str, Any]) -> tuple[str, str]:
    system = _number(summary.get("rmse_system_last_month"))
    static = _number(summary.get("rmse_static_last_month"))
    months = _sequence(summary.get("months"))
    last = _mapping(months[-1]).get("month") if months else None
    if system is None or static is None or static == 0:
        return "The market moved; see what the system did", ""
    change = system / static - 1
    title = (
        f"Month {last}: the system's live RMSE is {format_number(system)}, "
        f"the never-retrained model's {format_number(static)} ({format_share(change, signed=True)})"
    )
    lead = (
        f"{format_count(summary.get('versions_promoted'))} new versions reached production, "
        f"{format_count(summary.get('rollbacks'))} rolled back, drift or quality loss was "
        f"detected in {len(_sequence(summary.get('drift_detected_months')))} of "
        f"{len(months)} months; {format_number(summary.get('seconds'))} s end to end."
    )
    return title, lead


def _figures(summary: Mapping[str, Any]) -> str:
    items = [
        (format_number(summary.get("rmse_v1_month0")), "v1 RMSE, month 0"),
        (format_number(summary.get("rmse_system_last_month")), "system RMSE, last month"),
        (format_number(summary.get("rmse_static_last_month")), "never retrained, last month"),
        (format_count(summary.get("versions_promoted")), "versions promoted"),
        (format_count(summary.get("rollbacks")), "rollbacks"),
        (
            ", ".join(str(m) for m in _sequence(summary.get("drift_detected_months"))) or "none",
            "months with drift or quality loss",
        ),
    ]
    return (
        '<div class="figures">'
        + "".join(
            f'<div class="figure"><b>{_esc(value)}</b><span>{_esc(label)}</span></div>'
            for value, label in items
        )
        + "</div>"
    )


def _month_table(months: Sequence[Mapping[str, Any]]) -> str:
    head = (
        '<tr><th scope="col">month</th><th scope="col">market</th>'
        '<th scope="col">serving</th><th scope="col">live RMSE system</th>'
        '<th scope="col">RMSE never retrained</th><th scope="col">drift share</th>'
        '<th scope="col">events</th><th scope="col">drift report</th></tr>'
    )
    rows = []
    for month in months:
        drift = _mapping(month.get("drift"))
        flagged = bool(drift.get("dataset_drift")) or bool(drift.get("quality_breach"))
        events = "".join(f"<li>{_esc(e)}</li>" for e in _sequence(month.get("events")))
        report = drift.get("report_html")
        verdict = (
            "drift" if drift.get("dataset_drift") else "quality loss" if drift.get("quality_breach")
            else str(drift.get("status") or "report")
        )  # fmt: skip
        link = (
            f'<a href="{_esc(report)}">{_esc(verdict)}</a>'
            if isinstance(report, str) and report
            else '<span class="muted">none</span>'
        )
        share = format_share(drift.get("drift_share")) if drift else "n/a"
        if drift.get("quality_breach"):
            share += " + quality"
        rows.append(
            f'<tr class="{"drift" if flagged else "calm"}">'
            f'<th scope="row">{_esc(month.get("month"))}</th>'
            f"<td>{_esc(month.get('market') or '')}</td>"
            f"<td>{_esc(month.get('serving'))}</td>"
            f'<td class="num">{format_number(month.get("rmse_system"))}</td>'
            f'<td class="num">{format_number(month.get("rmse_static"))}</td>'
            f'<td class="num share">{_esc(share)}</td>'
            f'<td><ul class="events">{events}</ul></td><td>{link}</td></tr>'
        )
    return f"<table><thead>{head}</thead><tbody>{''.join(rows)}</tbody></table>"


def _report_links(summary: Mapping[str, Any]) -> str:
    items = []
    for item in _sequence(summary.get("drift_reports")):
        entry = _mapping(item)
        html_link, json_link = entry.get("html"), entry.get("json")
        parts = []
        if isinstance(html_link, str):
            parts.append(f'<a href="{_esc(html_link)}">{_esc(entry.get("name") or html_link)}</a>')
        if isinstance(json_link, str):
            parts.append(f'<a href="{_esc(json_link)}">json</a>')
        if parts:
            what = f' <span class="muted">{_esc(entry.get("verdict") or "")}</span>'
            items.append(f"<li>{' · '.join(parts)}{what}</li>")
    if not items:
        return '<p class="muted">No drift reports were written.</p>'
    return f"<ol>{''.join(items)}</ol>"


def _rollout_links(summary: Mapping[str, Any]) -> str:
    items = []
    for item in _sequence(summary.get("rollout_reports")):
        entry = _mapping(item)
        link = entry.get("json")
        if isinstance(link, str):
            items.append(
                f'<li><a href="{_esc(link)}">{_esc(entry.get("name") or link)}</a> '
                f'<span class="muted">{_esc(entry.get("verdict") or "")}</span></li>'
            )
    if not items:
        return '<p class="muted">No rollout was judged.</p>'
    return f"<ol>{''.join(items)}</ol>"


def _quality_legend() -> str:
    return (
        '<p class="legend"><span class="swatch" style="background:'
        f'{SYSTEM_COLOUR}"></span>live (labels in)'
        f'<span class="swatch" style="background:{ESTIMATE_COLOUR}"></span>ESTIMATED '
        "(dashed, with its interval)"
        f'<span class="swatch" style="background:{DRIFT_COLOUR}"></span>breach bar (dotted); '
        "ringed: a breach</p>"
    )


def render_demo_html(summary: Mapping[str, Any]) -> str:
    """The whole page for a demo summary (the ``--json`` object plus ``months`` details)."""
    months = [_mapping(m) for m in _sequence(summary.get("months"))]
    title, lead = _headline(summary)
    legend = (
        '<p class="legend"><span class="swatch" style="background:'
        f'{SYSTEM_COLOUR}"></span>system (retrained, gated, rolled out)'
        f'<span class="swatch" style="background:{STATIC_COLOUR}"></span>v1, never retrained'
        f'<span class="swatch" style="background:{EVENT_COLOUR}"></span>canary started '
        "(dotted) or promoted (dashed)"
        f'<span class="swatch" style="background:{DRIFT_COLOUR}"></span>rolled back</p>'
    )
    settings = _mapping(summary.get("settings"))
    footer = ", ".join(f"{_esc(k)} {_esc(v)}" for k, v in settings.items())
    body = (
        f'<h1>{_esc(title)}</h1><p class="lead">{_esc(lead)}</p>{_figures(summary)}'
        "<h2>Live error, month by month</h2>"
        '<p class="muted">RMSE of the prices each model answered against the prices the houses '
        "sold for, on the same traffic.</p>"
        f'<div class="card">{legend}{error_chart(months)}</div>'
        "<h2>Quality before and after the labels</h2>"
        '<p class="muted">What the drift evaluator knew of the serving version\'s quality at '
        "each evaluation: live, from the sale prices in (they arrive half a month late), and "
        "ESTIMATED from the traffic alone (DLE: a model of the error, no labels needed; the "
        "band is its 95 % interval), against the bar a breach crosses. An estimate is blind "
        "to prices moving for the same houses (the rate jump, a cooling market) and sees "
        "traffic moving to where the model errs more.</p>"
        f'<div class="card">{_quality_legend()}{quality_chart(months)}</div>'
        "<h2>Drift scores</h2>"
        '<p class="muted">What the scheduled drift evaluator saw at the end of each month: the '
        "share of features that drifted from the serving version's training data, and each "
        "feature's score as a multiple of its threshold.</p>"
        f'<div class="card">{drift_share_chart(months)}</div>'
        f'<div class="card">{feature_heatmap(months)}</div>'
        "<h2>Month by month</h2>"
        f"{_month_table(months)}"
        "<h2>Drift reports</h2>"
        '<p class="muted">One per evaluation (mid-month and month end), as the drift evaluator '
        "wrote them to S3, copied next to this page.</p>"
        f"{_report_links(summary)}"
        "<h2>Rollout verdicts</h2>"
        '<p class="muted">The evaluator\'s judgement of each canary on live traffic (JSON).</p>'
        f"{_rollout_links(summary)}"
        f'<p class="muted">{footer}</p>'
    )
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_esc(title)}</title><style>{_STYLE}</style></head>\n"
        f"<body><main>{body}</main></body></html>\n"
    )
