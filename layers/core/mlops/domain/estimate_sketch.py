"""The estimate part of a drift sketch: what quality estimation needs from live traffic,
as integers and exact sums, so hours merge exactly like the rest of the sketch.

- **CBPE** (classification): rows per (predicted class, calibration bin), the bins being
  those of the version's calibration (``domain.estimate.Calibration``). At most
  ``estimate.MAX_CLASSES`` classes x ``estimate.MAX_BINS`` bins, whatever the traffic.
- **DLE** (regression): the count of rows the loss model scored and the exact sums of the
  estimated absolute error, its square and its fourth power (``domain.exact_sum``); and, for
  MAPE, the count of those rows whose prediction gives an estimated relative error
  ``r = a / |prediction|`` (``estimate.relative_errors``) with the exact sums of ``r`` and
  ``r**2``. Sketches written before MAPE have no ``relative`` sums: they still read and merge,
  and a union holding one of them has none (no MAPE estimate, never a partial one).

Every part also counts the rows it could not score (``unscored``: inputs too big to capture,
no probabilities, a class the model does not know, a loss model that failed), so that
``scored + unscored`` is the sketch's rows. Reading a document refuses what the builder
cannot have written: counts out of range, more bins or classes than the bounds, sums that are
negative, too large, or that no set of numbers could have (``s1**2 <= n s2``, ``s2**2 <= n s4``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from mlops.domain.estimate import (
    MAX_BINS,
    MAX_CLASSES,
    MAX_RELATIVE,
    Calibration,
    relative_errors,
)
from mlops.domain.exact_sum import SCALE_BITS, exact_sum, from_hex, to_float, to_hex
from mlops.domain.serving import is_number
from mlops.domain.sketch_columns import read_count

MAX_LOSS = 1e75  # an estimated error beyond this has a fourth power beyond float64


@dataclass(frozen=True)
class ConfidenceCounts:
    """CBPE: rows per predicted class and confidence bin (classes without rows absent)."""

    counts: dict[str, list[int]]
    unscored: int
    bins: int

    @property
    def scored(self) -> int:
        return sum(sum(row) for row in self.counts.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "cbpe",
            "bins": self.bins,
            "counts": {c: list(v) for c, v in sorted(self.counts.items())},
            "unscored": self.unscored,
        }


@dataclass(frozen=True)
class RelativeSums:
    """DLE's MAPE part: scored rows with an estimated relative error r, exact sums (times
    ``2**SCALE_BITS``) of r and r**2. ``count`` is at most the part's scored rows."""

    count: int
    sum1: int
    sum2: int

    def floats(self) -> tuple[int, float, float]:
        return self.count, to_float(self.sum1, 1), to_float(self.sum2, 1)

    def to_dict(self) -> dict[str, Any]:
        return {"count": self.count, "sum": to_hex(self.sum1), "sum_sq": to_hex(self.sum2)}


NO_RELATIVE = RelativeSums(0, 0, 0)


@dataclass(frozen=True)
class LossSums:
    """DLE: scored rows and exact sums (times ``2**SCALE_BITS``) of a, a**2 and a**4; the
    relative errors' sums (None in sketches written before MAPE)."""

    count: int
    sum1: int
    sum2: int
    sum4: int
    unscored: int
    relative: RelativeSums | None = None

    @property
    def scored(self) -> int:
        return self.count

    def floats(self) -> tuple[float, float, float]:
        return to_float(self.sum1, 1), to_float(self.sum2, 1), to_float(self.sum4, 1)

    def to_dict(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "kind": "dle",
            "count": self.count,
            "sum": to_hex(self.sum1),
            "sum_sq": to_hex(self.sum2),
            "sum_4": to_hex(self.sum4),
            "unscored": self.unscored,
        }
        if self.relative is not None:
            doc["relative"] = self.relative.to_dict()
        return doc


EstimatePart = ConfidenceCounts | LossSums


def part_from_dict(raw: Any) -> EstimatePart:
    """Read an estimate part; ``ValueError``/``TypeError``/``KeyError`` for anything the
    builder cannot have written (the sketch reader turns them into ``SketchError``)."""
    if not isinstance(raw, Mapping):
        raise TypeError("an estimate part is an object")
    kind = raw["kind"]
    if kind == "cbpe":
        bins = raw["bins"]
        if type(bins) is not int or not 1 <= bins <= MAX_BINS:
            raise ValueError(f"estimate bins: 1 to {MAX_BINS}")
        counts = raw["counts"]
        if not isinstance(counts, Mapping) or len(counts) > MAX_CLASSES:
            raise ValueError(f"estimate counts: at most {MAX_CLASSES} classes")
        out: dict[str, list[int]] = {}
        for name, row in counts.items():
            if not isinstance(name, str) or not 0 < len(name) <= 64:
                raise ValueError("estimate counts: short class labels")
            if not isinstance(row, list) or len(row) != bins:
                raise ValueError(f"estimate counts of {name[:64]!r}: {bins} bins")
            out[name] = [read_count(v) for v in row]
        return ConfidenceCounts(out, read_count(raw["unscored"]), bins)
    if kind == "dle":
        count = read_count(raw["count"])
        sums = [from_hex(raw[k]) for k in ("sum", "sum_sq", "sum_4")]
        if any(s < 0 for s in sums):
            raise ValueError("estimated errors are not negative: their sums cannot be")
        s1, s2, s4 = sums
        if count == 0 and any(sums):
            raise ValueError("no scored rows, yet sums")
        # Cauchy-Schwarz on the scaled integers: (sum a)**2 <= n sum a**2, and so on, up to
        # float64's rounding of each square (relative 2**-52 at most; equal values sit exactly
        # on the bound) and its underflow to 0 below 2**-537 (absolute, count**2 << 1178).
        if not _cauchy_schwarz(s1, s2, count) or not _cauchy_schwarz(s2, s4, count):
            raise ValueError("sums no set of numbers can have")
        if not _below_square(s1, s2, count) or not _below_square(s2, s4, count):
            raise ValueError("sums of squares beyond the square of the sum (widened intervals)")
        if count and to_float(s1, count) > MAX_LOSS:
            raise ValueError("estimated errors beyond any loss model's")
        relative = None if raw.get("relative") is None else _relative(raw["relative"], count)
        return LossSums(count, s1, s2, s4, read_count(raw["unscored"]), relative)
    raise ValueError(f"estimate kind {str(kind)[:20]!r}")


def _relative(raw: Any, scored: int) -> RelativeSums:
    """The relative errors' sums, checked as the absolute ones are."""
    if not isinstance(raw, Mapping):
        raise TypeError("the relative errors' sums are an object")
    count = read_count(raw["count"])
    if count > scored:
        raise ValueError("more rows with a relative error than scored rows")
    s1, s2 = from_hex(raw["sum"]), from_hex(raw["sum_sq"])
    if s1 < 0 or s2 < 0:
        raise ValueError("estimated relative errors are not negative: their sums cannot be")
    if count == 0 and (s1 or s2):
        raise ValueError("no rows with a relative error, yet sums")
    if not _cauchy_schwarz(s1, s2, count) or not _below_square(s1, s2, count):
        raise ValueError("relative sums no set of numbers can have")
    if count and to_float(s1, count) > MAX_RELATIVE:
        raise ValueError("estimated relative errors beyond any loss model's")
    return RelativeSums(count, s1, s2)


def _cauchy_schwarz(total: int, squares: int, count: int) -> bool:
    """Whether ``total`` and ``squares`` (scaled sums of values and of their float64 squares)
    can come from ``count`` values."""
    bound = count * squares << SCALE_BITS
    return total * total <= bound + (bound >> 50) + (count * count << 1178)


def _below_square(total: int, squares: int, count: int) -> bool:
    """Whether the sum of squares of ``count`` values that are never negative is at most the
    square of their sum, as it must be, up to float64's rounding of each square (relative
    2**-52) and its underflow (at most 2**-1074 a value). A forged sum of squares past it would
    widen every interval until no estimate could ever breach."""
    return squares << SCALE_BITS <= total * total + (total * total >> 50) + (
        count << (SCALE_BITS + 54)
    )


def build_cbpe(calibration: Calibration, rows: Sequence[Mapping[str, Any]]) -> ConfidenceCounts:
    """Rows counted per (predicted class, calibrated bin of their top probability)."""
    known = set(calibration.classes)
    labels: list[str] = []
    confidence: list[float] = []
    for row in rows:
        label, top = _scored(row, known)
        if label is not None:
            labels.append(label)
            confidence.append(top)
    index = calibration.bin_of(np.asarray(confidence, dtype=np.float64))
    counts: dict[str, list[int]] = {}
    bins = calibration.bins
    label_array = np.asarray(labels, dtype=object)
    for c in sorted(set(labels)):
        hits = np.bincount(index[label_array == c], minlength=bins)
        counts[c] = [int(v) for v in hits]
    return ConfidenceCounts(counts, len(rows) - len(labels), bins)


def _scored(row: Mapping[str, Any], known: set[str]) -> tuple[str | None, float]:
    label = row.get("prediction")
    probabilities = row.get("probabilities")
    if not isinstance(probabilities, Mapping) or str(label) not in known:
        return None, 0.0
    values = [v for v in probabilities.values() if is_number(v)]
    if not values:
        return None, 0.0
    top = float(max(values))
    return (str(label), top) if 0.0 <= top <= 1.0 else (None, 0.0)


def build_dle(
    losses: Sequence[float | None], predictions: np.ndarray[Any, Any] | None = None
) -> LossSums:
    """The sums of the estimated absolute errors that are usable (finite, 0 to MAX_LOSS;
    a negative tree output is clipped to 0) and, given the rows' predictions (float64, NaN
    where not a number), of the relative errors of those rows that have one."""
    values = np.asarray([np.nan if v is None else v for v in losses], dtype=np.float64)
    usable = np.isfinite(values) & (values <= MAX_LOSS)
    a = np.maximum(values[usable], 0.0)
    relative = None
    if predictions is not None:
        r, _ = relative_errors(a, np.asarray(predictions, dtype=np.float64)[usable])
        relative = RelativeSums(int(r.size), exact_sum(r), exact_sum(r * r))
    return LossSums(
        count=int(a.size),
        sum1=exact_sum(a),
        sum2=exact_sum(a * a),
        sum4=exact_sum((a * a) * (a * a)),
        unscored=int(values.size - a.size),
        relative=relative,
    )


def merge_parts(parts: Iterable[tuple[EstimatePart | None, int]]) -> EstimatePart | None:
    """The part of the union of sketches ``(part, rows)``: exact sums of counts and sums. A
    sketch without a part (written without an estimate) adds its rows as unscored; None when
    none has a part."""
    items = list(parts)
    present = [p for p, _ in items if p is not None]
    if not present:
        return None
    missing = sum(rows for p, rows in items if p is None)
    first = present[0]
    if isinstance(first, ConfidenceCounts):
        cbpe = [p for p in present if isinstance(p, ConfidenceCounts)]
        if len(cbpe) != len(present) or any(p.bins != first.bins for p in cbpe):
            raise ValueError("estimate parts of different kinds or bins do not merge")
        counts: dict[str, list[int]] = {}
        for p in cbpe:
            for c, row in p.counts.items():
                old = counts.get(c, [0] * first.bins)
                counts[c] = [a + b for a, b in zip(old, row, strict=True)]
        return ConfidenceCounts(
            dict(sorted(counts.items())), sum(p.unscored for p in cbpe) + missing, first.bins
        )
    dle = [p for p in present if isinstance(p, LossSums)]
    if len(dle) != len(present):
        raise ValueError("estimate parts of different kinds do not merge")
    relative = [p.relative for p in dle]
    return LossSums(
        count=sum(p.count for p in dle),
        sum1=sum(p.sum1 for p in dle),
        sum2=sum(p.sum2 for p in dle),
        sum4=sum(p.sum4 for p in dle),
        unscored=sum(p.unscored for p in dle) + missing,
        # One part written before MAPE: the union's MAPE would miss its rows, so none.
        relative=None
        if any(r is None for r in relative)
        else RelativeSums(
            sum(r.count for r in relative if r is not None),
            sum(r.sum1 for r in relative if r is not None),
            sum(r.sum2 for r in relative if r is not None),
        ),
    )
