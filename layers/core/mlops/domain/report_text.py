"""How numbers, shares, times and names read in a report (the drift report and the demo's page).

Plain text, no markup: ``n/a`` for what is missing or NaN, a real minus sign, thousands
separated, three significant digits for statistics; and the lenient readers (``as_number``,
``as_mapping``, ``as_sequence``) that let a malformed report render instead of failing.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

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


def as_number(value: object) -> float | None:
    """A finite or infinite float; None for anything else (None, NaN, bools, strings)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return None if math.isnan(number) else number


def as_mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def as_sequence(value: object) -> Sequence[Any]:
    return value if isinstance(value, list | tuple) else ()


def _minus(text: str) -> str:
    return text.replace("-", MINUS)


def format_count(value: object) -> str:
    """Rows and labels: ``12,000``."""
    number = as_number(value)
    if number is None or math.isinf(number):
        return NOT_AVAILABLE
    return _minus(f"{round(number):,}")


def format_number(value: object) -> str:
    """Statistics and metric values: three significant digits, thousands separated at 1,000
    and above (``0.31``, ``0.000123``, ``61,000``); ``n/a`` for None and NaN."""
    number = as_number(value)
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
    number = as_number(value)
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


def format_axis_number(value: float) -> str:
    """Bin edges on an axis: short (``12.5k``, ``1.2M``)."""
    magnitude = abs(value)
    if magnitude >= 1e6:
        return _minus(f"{value / 1e6:.3g}M")
    if magnitude >= 1e4:
        return _minus(f"{value / 1e3:.3g}k")
    if magnitude >= 1e3:  # no separator: years read as 1990, not 1,990
        return _minus(f"{value:.0f}")
    return format_number(value)


def metric_name(name: object) -> str:
    text = "" if name is None else str(name)
    return METRIC_NAMES.get(text.lower(), text.replace("_", " "))


def statistic_name(name: str) -> str:
    return STATISTIC_NAMES.get(name, name.replace("_", " "))


def format_time(value: object) -> str:
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


def truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
