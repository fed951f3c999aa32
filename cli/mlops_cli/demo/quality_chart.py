"""The demo report's quality chart: what the drift evaluator knew at each evaluation (mid-month
and month end) about the serving version's quality, from the labels in (live quality) and
ESTIMATED from traffic alone (CBPE/DLE), against the bar a breach crosses.

The labels of a half-month arrive one half-month late, so the live line always speaks about
the half before; the ESTIMATE speaks about the traffic itself. Where the estimate crossed the
bar with confidence while the labels in did not yet, the chart marks that the estimate led.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mlops_cli.demo.svg import (
    AXIS_TEXT,
    DRIFT_COLOUR,
    ESTIMATE_COLOUR,
    SYSTEM_COLOUR,
    esc,
    gridlines,
    mapping,
    money_axis,
    nice_top,
    note,
    number,
    sequence,
    svg,
)

SHARE_METRICS = ("mape", "accuracy", "f1_macro", "roc_auc")  # shown as percentages
GREATER_IS_BETTER = ("accuracy", "f1_macro", "roc_auc", "r2")


@dataclass(frozen=True)
class Point:
    """One evaluation as the chart needs it."""

    index: int  # the month's position in the run
    month: int
    half: str  # "mid" | "end"
    version: str  # the serving version evaluated
    live: float | None
    estimate: float | None
    low: float | None
    high: float | None
    bar: float | None  # where a breach begins: holdout worse by the tolerance
    live_breach: bool
    estimate_breach: bool


def evaluations(months: Sequence[Mapping[str, Any]]) -> tuple[str, list[Point]]:
    """The evaluator's metric and its evaluations in time order (mid-month, then month end)."""
    metric = ""
    points: list[Point] = []
    for index, month in enumerate(months):
        for half, key in (("mid", "mid_month_drift"), ("end", "drift")):
            digest = mapping(month.get(key))
            if not digest:
                continue
            metric = metric or str(digest.get("quality_metric") or "")
            same = digest.get("estimated_metric") == digest.get("quality_metric")
            interval = [*sequence(digest.get("estimated_interval"))[:2], None, None]
            number_of_month = number(month.get("month"))
            points.append(
                Point(
                    index=index,
                    month=index if number_of_month is None else int(number_of_month),
                    half=half,
                    version=str(digest.get("version")),
                    live=number(digest.get("live_quality")),
                    estimate=number(digest.get("estimated_quality")) if same else None,
                    low=number(interval[0]) if same else None,
                    high=number(interval[1]) if same else None,
                    bar=_bar(digest, metric),
                    live_breach=bool(digest.get("quality_breach")),
                    estimate_breach=bool(digest.get("estimate_breach")) and same,
                )
            )
    return metric, points


def led(points: Sequence[Point]) -> list[tuple[Point, Point]]:
    """Each time the ESTIMATE breached while the labels in did not, with the evaluation whose
    labels then breached too, the warning standing all along and the version the same (the
    estimate led the labels). A warning that lapsed first, or a later version's loss, is no
    lead: the labels did not confirm that warning."""
    out: list[tuple[Point, Point]] = []
    for i, point in enumerate(points):
        if not point.estimate_breach or point.live_breach:
            continue
        if i > 0 and points[i - 1].estimate_breach and not points[i - 1].live_breach:
            continue  # the same warning, still ahead of the labels
        for later in points[i + 1 :]:
            if later.version != point.version or not later.estimate_breach:
                break
            if later.live_breach:
                out.append((point, later))
                break
    return out


def quality_chart(months: Sequence[Mapping[str, Any]]) -> str:
    width, height = 1100, 320
    left, right, top, bottom = 70, 20, 26, 50
    plot_w, plot_h = width - left - right, height - top - bottom
    metric, points = evaluations(months)
    values = [v for p in points for v in (p.live, p.estimate, p.high, p.bar) if v is not None]
    if not points or not values:
        return svg(width, 80, "quality over time: no data", note(width / 2, 40, "no data"))
    axis_top, step = nice_top(max(values) * 1.05)
    count = len(months)

    def x(point: Point) -> float:
        return left + plot_w * (point.index + (0.3 if point.half == "mid" else 0.8)) / count

    def y(value: float) -> float:
        return top + plot_h * (1 - min(value, axis_top) / axis_top)

    parts = gridlines(
        axis_top, step, x_from=left, x_to=width - right, y=y, label=lambda v: _axis(metric, v)
    )
    for index, month in enumerate(months):
        parts.append(
            f'<text x="{left + plot_w * (index + 0.5) / count:.1f}" y="{height - bottom + 18}" '
            f'text-anchor="middle" font-size="12" fill="{AXIS_TEXT}">'
            f"{esc(month.get('month'))}</text>"
        )
    parts.append(
        f'<text x="{left + plot_w / 2}" y="{height - 8}" text-anchor="middle" font-size="12" '
        f'fill="{AXIS_TEXT}">month of the market (each month: mid-month and month end)</text>'
    )
    parts += _bar_steps(points, x, y)
    for p in points:  # the estimate's 95 % intervals
        if p.low is not None and p.high is not None:
            parts.append(
                f'<line x1="{x(p):.1f}" x2="{x(p):.1f}" y1="{y(p.low):.1f}" y2="{y(p.high):.1f}" '
                f'stroke="{ESTIMATE_COLOUR}" stroke-opacity="0.45" stroke-width="5"/>'
            )
    name = metric.upper() if metric in ("mape", "rmse", "mae") else metric
    for series, colour, label, dash in (
        ([(p, p.live) for p in points], SYSTEM_COLOUR, f"live {name} (labels in)", ""),
        (
            [(p, p.estimate) for p in points],
            ESTIMATE_COLOUR,
            f"ESTIMATED {name} (no labels)",
            ' stroke-dasharray="7 3"',
        ),
    ):
        shown = [(p, v) for p, v in series if v is not None]
        if len(shown) > 1:
            path = " ".join(f"{x(p):.1f},{y(v):.1f}" for p, v in shown)
            parts.append(
                f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2.5"'
                f"{dash}><title>{esc(label)}</title></polyline>"
            )
        for p, v in shown:
            breach = p.live_breach if colour == SYSTEM_COLOUR else p.estimate_breach
            ring = f' stroke="{DRIFT_COLOUR}" stroke-width="2.5"' if breach else ""
            parts.append(
                f'<circle cx="{x(p):.1f}" cy="{y(v):.1f}" r="{5 if breach else 3.5}" '
                f'fill="{colour}"{ring}><title>{esc(label)}, month {p.month} {p.half}: '
                f"{_axis(metric, v, precise=True)}{' (breach)' if breach else ''}</title></circle>"
            )
    for warned, confirmed in led(points):
        parts.append(
            f'<text class="estimate-led" x="{x(warned) - 6:.1f}" y="{top - 8}" '
            f'text-anchor="end" font-size="12" font-weight="600" fill="{ESTIMATE_COLOUR}">'
            f"ESTIMATE warned (month {warned.month} {_half(warned)}); labels confirmed at "
            f"month {confirmed.month} {_half(confirmed)}</text>"
            f'<line x1="{x(warned):.1f}" x2="{x(warned):.1f}" y1="{top - 4}" '
            f'y2="{top + plot_h}" stroke="{ESTIMATE_COLOUR}" stroke-dasharray="2 3"/>'
        )
    return svg(
        width,
        height,
        f"serving version's {name}: live (labels) and ESTIMATED (no labels) per evaluation",
        "".join(parts),
    )


def _bar_steps(points: Sequence[Point], x: Any, y: Any) -> list[str]:
    """The breach bar as steps: it moves with each new version's holdout."""
    out = []
    for a, b in zip(points, [*points[1:], None], strict=True):
        if a.bar is None:
            continue
        end = x(b) if b is not None else x(a) + 20
        out.append(
            f'<line x1="{x(a) - 20 if a is points[0] else x(a):.1f}" x2="{end:.1f}" '
            f'y1="{y(a.bar):.1f}" y2="{y(a.bar):.1f}" stroke="{DRIFT_COLOUR}" '
            'stroke-dasharray="3 3" stroke-opacity="0.8"><title>breach bar: the holdout '
            "worse by the tolerance</title></line>"
        )
    return out


def _bar(digest: Mapping[str, Any], metric: str) -> float | None:
    holdout = number(digest.get("holdout_quality"))
    tolerance = number(digest.get("quality_tolerance"))
    if holdout is None or tolerance is None:
        return None
    sign = -1 if metric in GREATER_IS_BETTER else 1
    return holdout + sign * tolerance * abs(holdout)


def _half(point: Point) -> str:
    return "mid-month" if point.half == "mid" else "end"


def _axis(metric: str, value: float, *, precise: bool = False) -> str:
    if metric in SHARE_METRICS:
        whole = round(value * 100, 6).is_integer()
        return f"{value:.{1 if precise or not whole else 0}%}"
    return f"{value:,.0f}" if precise else money_axis(value)
