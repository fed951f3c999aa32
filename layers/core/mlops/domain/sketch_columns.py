"""One column of a drift sketch: a numeric column's counts on the baseline's bins, or a
categorical column's counts per category, built from a batch's values with one numpy pass.

Numeric values are binned on the baseline's edges exactly as ``baseline.bin_counts`` bins the
training data (``searchsorted(side="right")``: a value on an edge goes to the upper bin), so
live and training counts compare bin for bin.

**Bounded size.** A client can send any string as a category, so a categorical column keeps:
the baseline's categories exactly, by name; at most K categories never seen in training, by
name (the most frequent, ties by name; K is ``[drift] max_unseen_categories``); and the count
of every other unseen value (``unseen_other``). An unseen value is cut to its first
``MAX_CATEGORY_CHARS`` characters before it is counted (baseline categories are matched whole
first). So a sketch holds at most (baseline categories + K) names per column, whatever the
traffic.

Reading a column (``from_dict``) refuses what the builder cannot have written (the sketch
document's "Bounded numbers", ``mlops.domain.sketch``).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from mlops.domain.config import MAX_UNSEEN_CATEGORIES
from mlops.domain.exact_sum import exact_sum, from_hex, scaled, to_float, to_hex

MAX_CATEGORY_CHARS = 64  # an unseen value is cut to this many characters before counting
MAX_UNSEEN_LIMIT = MAX_UNSEEN_CATEGORIES  # the largest K a config may set, a document hold
MAX_COUNT = 2**53 - 1  # beyond this a count is not exact in float64 (nor in most JSON readers)


@dataclass(frozen=True)
class NumericSketch:
    """One numeric column: counts per baseline bin (``len(edges) + 1``), missing values (null,
    absent, non-numeric or non-finite), and the finite values' count, exact sum, min and max."""

    counts: list[int]
    missing: int
    count: int
    exact_sum: int  # the sum of the finite values times 2**exact_sum.SCALE_BITS, exactly
    min: float | None
    max: float | None

    @property
    def sum(self) -> float:
        """The sum of the finite values, correctly rounded (±inf beyond float64)."""
        return to_float(self.exact_sum, 1)

    @property
    def mean(self) -> float | None:
        return to_float(self.exact_sum, self.count) if self.count else None

    @property
    def values(self) -> int:
        """Values this column saw: finite ones and missing ones."""
        return self.count + self.missing

    def to_dict(self) -> dict[str, Any]:
        return {
            "counts": list(self.counts),
            "missing": self.missing,
            "count": self.count,
            "sum": to_hex(self.exact_sum),
            "min": self.min,
            "max": self.max,
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> NumericSketch:
        counts = _counts(raw["counts"])
        count = read_count(raw["count"])
        if sum(counts) != count:
            raise ValueError(f"bins hold {sum(counts)} values, count says {count}")
        low, high = _finite_or_none(raw["min"]), _finite_or_none(raw["max"])
        total = from_hex(raw["sum"])
        if count == 0:
            if (low, high, total) != (None, None, 0):
                raise ValueError("no values, yet a minimum, maximum or sum")
        elif low is None or high is None or low > high:
            raise ValueError(f"min {low!r} and max {high!r} do not bound {count} values")
        elif not count * scaled(low) <= total <= count * scaled(high):
            raise ValueError("the sum is outside count x [min, max]")
        return cls(
            counts=counts,
            missing=read_count(raw["missing"]),
            count=count,
            exact_sum=total,
            min=low,
            max=high,
        )


@dataclass(frozen=True)
class CategoricalSketch:
    """One categorical column: counts per baseline category seen live, the most frequent
    categories never seen in training (at most K, by name), how many other unseen values there
    were, and missing values (null, absent, empty or not a string)."""

    counts: dict[str, int]  # baseline categories: exact
    unseen_top: dict[str, int] = field(default_factory=dict)  # unseen, by name (<= K)
    unseen_other: int = 0  # unseen values not kept by name
    missing: int = 0

    @property
    def unseen(self) -> int:
        """Values that are not among the baseline's categories: exact, whatever was folded."""
        return sum(self.unseen_top.values()) + self.unseen_other

    @property
    def values(self) -> int:
        """Values this column saw: baseline categories, unseen ones and missing ones."""
        return sum(self.counts.values()) + self.unseen + self.missing

    def to_dict(self) -> dict[str, Any]:
        return {
            "counts": dict(self.counts),
            "unseen_top": dict(self.unseen_top),
            "unseen_other": self.unseen_other,
            "missing": self.missing,
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> CategoricalSketch:
        counts = _category_counts(raw["counts"])
        top = _category_counts(raw["unseen_top"])
        if len(top) > MAX_UNSEEN_LIMIT:
            raise ValueError(f"{len(top)} unseen categories by name, at most {MAX_UNSEEN_LIMIT}")
        for name, count in top.items():
            if not 0 < len(name) <= MAX_CATEGORY_CHARS or count == 0:
                raise ValueError(f"unseen category {name[:80]!r} ({count}): not as sketched")
        return cls(
            counts=counts,
            unseen_top=top,
            unseen_other=read_count(raw["unseen_other"]),
            missing=read_count(raw["missing"]),
        )


ColumnSketch = NumericSketch | CategoricalSketch


def top_counts(counts: Mapping[str, int], k: int) -> tuple[dict[str, int], int]:
    """The ``k`` largest counts (ties by name), sorted by name, and the sum of the rest."""
    if len(counts) <= k:
        return dict(sorted(counts.items())), 0
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return dict(sorted(ranked[:k])), sum(c for _, c in ranked[k:])


def as_numbers(values: list[Any]) -> npt.NDArray[np.float64]:
    """float64 column; anything but an int or float (null, text, a boolean) becomes NaN."""
    clean = [v if type(v) is float or type(v) is int else None for v in values]
    try:
        return np.asarray(clean, dtype=np.float64)
    except OverflowError:  # an integer beyond float64: not a finite measurement
        return np.asarray([_float_or_nan(v) for v in clean], dtype=np.float64)


def _float_or_nan(value: float | None) -> float:
    try:
        return np.nan if value is None else float(value)
    except OverflowError:
        return np.nan


def numeric_sketch(
    values: npt.NDArray[np.float64], edges: npt.NDArray[np.float64]
) -> NumericSketch:
    finite = values[np.isfinite(values)]
    # The same rule as baseline.bin_counts: a value on an edge belongs to the upper bin.
    bins = np.bincount(np.searchsorted(edges, finite, side="right"), minlength=edges.size + 1)
    empty = finite.size == 0
    return NumericSketch(
        counts=[int(c) for c in bins],
        missing=int(values.size - finite.size),
        count=int(finite.size),
        exact_sum=exact_sum(finite),
        # + 0.0 turns -0.0 into 0.0, so min/max do not depend on which of the two came first.
        min=None if empty else float(finite.min()) + 0.0,
        max=None if empty else float(finite.max()) + 0.0,
    )


def categorical_sketch(
    values: list[Any], known: frozenset[str], max_unseen: int
) -> CategoricalSketch:
    # As baseline.categorical_summary: null and "" are missing; integer class labels count as
    # their text (JSON object keys are text). Anything else cannot be a category: missing.
    counts = Counter([v if type(v) is str else str(v) if type(v) is int else None for v in values])
    missing = counts.pop(None, 0) + counts.pop("", 0)
    baseline: dict[str, int] = {}
    unseen: Counter[str] = Counter()
    for category, count in counts.items():
        if category is None:  # popped above; for the type checker
            continue
        if category in known:
            baseline[category] = count
        else:  # cut before counting: values sharing their first characters count as one
            unseen[category[:MAX_CATEGORY_CHARS]] += count
    kept, folded = top_counts(unseen, max_unseen)
    return CategoricalSketch(
        counts=dict(sorted(baseline.items())),
        unseen_top=kept,
        unseen_other=folded,
        missing=missing,
    )


def _counts(raw: Any) -> list[int]:
    if not isinstance(raw, list):
        raise ValueError(f"expected a list of counts, got {type(raw).__name__}")
    return [read_count(c) for c in raw]


def _category_counts(raw: Any) -> dict[str, int]:
    if not isinstance(raw, Mapping):
        raise TypeError(f"category counts must be an object, not {type(raw).__name__}")
    # Baseline categories are as long as training made them: the bytes read bound their size.
    if not all(isinstance(k, str) for k in raw):
        raise TypeError("category names must be strings")
    return {k: read_count(v) for k, v in raw.items()}


def read_count(value: Any) -> int:
    if type(value) is not int or not 0 <= value <= MAX_COUNT:
        raise ValueError(f"expected a count from 0 to 2**53 - 1, got {str(value)[:40]}")
    return value


def _finite_or_none(value: Any) -> float | None:
    if value is None:
        return None
    if type(value) is not float and type(value) is not int:
        raise TypeError(f"expected a number, got {type(value).__name__}")
    number = float(value)  # OverflowError for an integer beyond float64
    if not math.isfinite(number):
        raise ValueError(f"expected a finite number, got {number}")
    return number + 0.0
