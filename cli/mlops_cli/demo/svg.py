"""What the demo's HTML charts share: colours, escaping, an axis, an SVG frame. Pure."""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'"
SYSTEM_COLOUR = "#2f6fde"
STATIC_COLOUR = "#e0620d"
ESTIMATE_COLOUR = "#7c3aed"  # an estimate, never a measurement: its own colour, dashed
DRIFT_COLOUR = "#c0392b"
GRID_COLOUR = "#e6e9ef"
AXIS_TEXT = "#6b7280"
EVENT_COLOUR = "#1e8e3e"


def esc(value: object) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    out = float(value)
    return None if math.isnan(out) or math.isinf(out) else out


def mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def sequence(value: object) -> Sequence[Any]:
    return value if isinstance(value, list | tuple) else ()


def money_axis(value: float) -> str:
    return f"{value / 1000:,.0f}k" if abs(value) >= 1000 else f"{value:,.0f}"


def nice_top(largest: float) -> tuple[float, float]:
    """An axis top above ``largest`` and a round step (four or five gridlines)."""
    if largest <= 0:
        return 1.0, 0.25
    raw = largest / 4
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    return step * math.ceil(largest / step), step


def svg(width: int, height: int, label: str, body: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" aria-label="{esc(label)}">'
        f"<title>{esc(label)}</title>{body}</svg>"
    )


def note(x: float, y: float, text: str) -> str:
    return (
        f'<text x="{x}" y="{y}" text-anchor="middle" font-size="13" '
        f'fill="{AXIS_TEXT}">{esc(text)}</text>'
    )


def gridlines(
    top: float,
    step: float,
    *,
    x_from: float,
    x_to: float,
    y: Callable[[float], float],
    label: Callable[[float], str],
) -> list[str]:
    """Horizontal gridlines from 0 to ``top`` every ``step``, each labelled on the left."""
    out = []
    tick = 0.0
    while tick <= top * (1 + 1e-9):
        out.append(
            f'<line x1="{x_from}" x2="{x_to}" y1="{y(tick):.1f}" y2="{y(tick):.1f}" '
            f'stroke="{GRID_COLOUR}"/><text x="{x_from - 8}" y="{y(tick) + 4:.1f}" '
            f'text-anchor="end" font-size="12" fill="{AXIS_TEXT}">{esc(label(tick))}</text>'
        )
        tick += step
    return out
