"""Mergeable drift sketches: live traffic of one model version, as counts on its baseline.

The prediction logger builds one sketch per batch; the evaluator merges sketches of a window
instead of rescanning captures, so drift costs O(sketches), not O(rows). Merging is exact:
the merge of sketches of any split of the rows equals the sketch of all the rows, field for
field. Counts, minima and maxima merge exactly by nature; sums are kept as exact integers (in
units of 2**-1126, of which every finite float64 is a whole multiple), so the sum and the mean
do not depend on how traffic was batched, and no total can overflow.

Numeric values are binned on the baseline's edges exactly as ``baseline.bin_counts`` bins the
training data (``searchsorted(side="right")``: a value on an edge goes to the upper bin), so
live and training counts compare bin for bin.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from mlops.errors import MlopsError

SKETCH_SCHEMA = 1
# Every finite float64 is m * 2**(e - 53) with frexp's exponent e >= -1073 and |m| < 2**53, so
# scaling by 2**1126 makes each value, and any sum of them, an exact Python integer.
_SCALE_BITS = 1126
_LOW_BITS = 26  # mantissas are summed as two halves, exact in float64 for up to 2**26 rows
_CHUNK = 1 << 24
_HEX_SUM = re.compile(r"(-?)0x([0-9a-f]+)p([+-]\d+)")


class SketchError(MlopsError):
    """A sketch document that cannot be read."""

    code = "invalid_sketch"


class IncompatibleSketchError(SketchError):
    """Sketches (or rows) of different model versions or baselines: their bins do not align."""

    code = "incompatible_sketch"


@dataclass(frozen=True)
class NumericSketch:
    """One numeric column: counts per baseline bin (``len(edges) + 1``), missing values (null,
    absent, non-numeric or non-finite), and the finite values' count, exact sum, min and max."""

    counts: list[int]
    missing: int
    count: int
    exact_sum: int  # the sum of the finite values times 2**_SCALE_BITS, exactly
    min: float | None
    max: float | None

    @property
    def sum(self) -> float:
        """The sum of the finite values, correctly rounded (±inf beyond float64)."""
        return _to_float(self.exact_sum, 1)

    @property
    def mean(self) -> float | None:
        return _to_float(self.exact_sum, self.count) if self.count else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "counts": list(self.counts),
            "missing": self.missing,
            "count": self.count,
            "sum": _sum_to_hex(self.exact_sum),
            "min": self.min,
            "max": self.max,
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> NumericSketch:
        return cls(
            counts=_counts(raw["counts"]),
            missing=_count(raw["missing"]),
            count=_count(raw["count"]),
            exact_sum=_sum_from_hex(raw["sum"]),
            min=None if raw["min"] is None else float(raw["min"]),
            max=None if raw["max"] is None else float(raw["max"]),
        )


@dataclass(frozen=True)
class CategoricalSketch:
    """One categorical column: counts per category seen live (baseline or not), how many
    values were not among the baseline's categories, and missing values (null, absent, empty
    or not a string)."""

    counts: dict[str, int]
    unseen: int
    missing: int

    def to_dict(self) -> dict[str, Any]:
        return {"counts": dict(self.counts), "unseen": self.unseen, "missing": self.missing}

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> CategoricalSketch:
        counts = raw["counts"]
        if not isinstance(counts, Mapping):
            raise TypeError("counts must be an object")
        if not all(type(c) is int and c >= 0 for c in counts.values()):
            raise ValueError("category counts must be counts")
        return cls(
            counts={str(k): v for k, v in counts.items()},
            unseen=_count(raw["unseen"]),
            missing=_count(raw["missing"]),
        )


ColumnSketch = NumericSketch | CategoricalSketch


@dataclass(frozen=True)
class Sketch:
    """Live traffic of one model version on its baseline's bins.

    ``rows`` counts predictions; ``truncated`` those whose inputs were too big to capture (their
    features are in no feature count, their prediction is). ``first_ts``/``last_ts`` bound the
    capture timestamps (ms), so a roll-up can say which window it covers.
    """

    model: str
    version: str
    baseline: str  # the baseline's fingerprint: sketches merge only on identical bins
    rows: int
    truncated: int
    first_ts: int | None
    last_ts: int | None
    numeric: dict[str, NumericSketch]
    categorical: dict[str, CategoricalSketch]
    prediction: ColumnSketch

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready document; ``from_dict(to_dict())`` is equal to the sketch."""
        kind = "numeric" if isinstance(self.prediction, NumericSketch) else "categorical"
        return {
            "schema": SKETCH_SCHEMA,
            "model": self.model,
            "version": self.version,
            "baseline": self.baseline,
            "rows": self.rows,
            "truncated": self.truncated,
            "first_ts": self.first_ts,
            "last_ts": self.last_ts,
            "numeric": {k: v.to_dict() for k, v in self.numeric.items()},
            "categorical": {k: v.to_dict() for k, v in self.categorical.items()},
            "prediction": {"type": kind, **self.prediction.to_dict()},
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Sketch:
        """Read a sketch document; raises ``SketchError`` for anything else."""
        try:
            if raw.get("schema") != SKETCH_SCHEMA:
                raise ValueError(f"schema {raw.get('schema')!r} is not {SKETCH_SCHEMA}")
            prediction = raw["prediction"]
            kind = prediction["type"]
            if kind not in ("numeric", "categorical"):
                raise ValueError(f"prediction type {kind!r}")
            return cls(
                model=_text(raw["model"]),
                version=_text(raw["version"]),
                baseline=_text(raw["baseline"]),
                rows=_count(raw["rows"]),
                truncated=_count(raw["truncated"]),
                first_ts=None if raw["first_ts"] is None else _count(raw["first_ts"]),
                last_ts=None if raw["last_ts"] is None else _count(raw["last_ts"]),
                numeric={
                    str(k): NumericSketch.from_dict(v) for k, v in dict(raw["numeric"]).items()
                },
                categorical={
                    str(k): CategoricalSketch.from_dict(v)
                    for k, v in dict(raw["categorical"]).items()
                },
                prediction=NumericSketch.from_dict(prediction)
                if kind == "numeric"
                else CategoricalSketch.from_dict(prediction),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise SketchError(f"not a sketch document: {type(exc).__name__}: {exc}") from exc


@dataclass(frozen=True)
class SketchPlan:
    """What building a sketch needs from a ``baseline.json``: edges as arrays, category sets
    and the fingerprint. Build it once per cached baseline, not per batch."""

    fingerprint: str
    numeric: dict[str, npt.NDArray[np.float64]]
    categorical: dict[str, frozenset[str]]
    prediction_edges: npt.NDArray[np.float64] | None  # regression
    prediction_classes: frozenset[str] | None  # classification

    @classmethod
    def from_baseline(cls, baseline: Mapping[str, Any]) -> SketchPlan:
        prediction = baseline["prediction"]
        regression = "edges" in prediction
        return cls(
            fingerprint=baseline_fingerprint(baseline),
            numeric={name: _edges(s["edges"]) for name, s in baseline["numeric"].items()},
            categorical={
                name: frozenset(s["counts"]) for name, s in baseline["categorical"].items()
            },
            prediction_edges=_edges(prediction["edges"]) if regression else None,
            prediction_classes=None if regression else frozenset(prediction["counts"]),
        )


def baseline_fingerprint(baseline: Mapping[str, Any]) -> str:
    """sha256 of the baseline's canonical JSON: equal for the same ``baseline.json`` wherever it
    is read, different when any edge or category differs."""
    canonical = json.dumps(baseline, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def build_sketch(
    baseline: Mapping[str, Any] | SketchPlan,
    rows: Iterable[Mapping[str, Any]],
    *,
    model: str | None = None,
    version: str | None = None,
) -> Sketch:
    """The sketch of ``rows`` (``capture.capture_rows`` output) of one model version.

    ``model``/``version`` default to the first row's; every row must match them
    (``IncompatibleSketchError`` otherwise). With no rows they are required. Each column is
    binned with one vectorised numpy pass; Python only gathers the values out of the rows.
    """
    plan = baseline if isinstance(baseline, SketchPlan) else SketchPlan.from_baseline(baseline)
    rows = list(rows)
    if model is None or version is None:
        if not rows:
            raise ValueError("a sketch of no rows needs model= and version=")
        model = model if model is not None else rows[0]["model"]
        version = version if version is not None else rows[0]["version"]
    others = {(r["model"], r["version"]) for r in rows} - {(model, version)}
    if others:
        found = ", ".join(f"{m} v{v}" for m, v in sorted(others, key=str)[:3])
        raise IncompatibleSketchError(
            f"rows of {found} in a sketch of {model} v{version}: sketch each version on its own"
        )
    inputs = [r.get("inputs") for r in rows]
    captured: list[Mapping[str, Any]] = [i for i in inputs if i is not None]
    predictions = [r.get("prediction") for r in rows]
    timestamps = [r["ts"] for r in rows]
    if plan.prediction_edges is not None:
        prediction: ColumnSketch = _numeric_sketch(_numbers(predictions), plan.prediction_edges)
    else:
        prediction = _categorical_sketch(predictions, plan.prediction_classes or frozenset())
    return Sketch(
        model=str(model),
        version=str(version),
        baseline=plan.fingerprint,
        rows=len(rows),
        truncated=len(rows) - len(captured),
        first_ts=min(timestamps) if timestamps else None,
        last_ts=max(timestamps) if timestamps else None,
        numeric={
            name: _numeric_sketch(_numbers([i.get(name) for i in captured]), edges)
            for name, edges in plan.numeric.items()
        },
        categorical={
            name: _categorical_sketch([i.get(name) for i in captured], known)
            for name, known in plan.categorical.items()
        },
        prediction=prediction,
    )


def merge(a: Sketch, b: Sketch) -> Sketch:
    """The sketch of both sketches' rows; associative and commutative."""
    return merge_all((a, b))


def merge_all(sketches: Iterable[Sketch]) -> Sketch:
    """The sketch of all the sketches' rows, in one pass (an hourly roll-up, a drift window).

    Raises ``IncompatibleSketchError`` when they are of different model versions or baselines.
    """
    items = list(sketches)
    if not items:
        raise ValueError("nothing to merge: merge_all needs at least one sketch")
    first = items[0]
    layout = _layout(first)
    for other in items[1:]:
        _check_compatible(first, other, layout)
    firsts = [s.first_ts for s in items if s.first_ts is not None]
    lasts = [s.last_ts for s in items if s.last_ts is not None]
    numeric_predictions = [s.prediction for s in items if isinstance(s.prediction, NumericSketch)]
    prediction: ColumnSketch = (
        _merge_numeric(numeric_predictions)
        if numeric_predictions  # all or none, as _check_compatible made sure
        else _merge_categorical(
            [s.prediction for s in items if isinstance(s.prediction, CategoricalSketch)]
        )
    )
    return Sketch(
        model=first.model,
        version=first.version,
        baseline=first.baseline,
        rows=sum(s.rows for s in items),
        truncated=sum(s.truncated for s in items),
        first_ts=min(firsts) if firsts else None,
        last_ts=max(lasts) if lasts else None,
        numeric={k: _merge_numeric([s.numeric[k] for s in items]) for k in first.numeric},
        categorical={
            k: _merge_categorical([s.categorical[k] for s in items]) for k in first.categorical
        },
        prediction=prediction,
    )


def _check_compatible(a: Sketch, b: Sketch, layout: tuple[Any, ...]) -> None:
    if (a.model, a.version) != (b.model, b.version):
        raise IncompatibleSketchError(
            f"cannot merge a sketch of {b.model} v{b.version} with one of {a.model} "
            f"v{a.version}: each version is binned on its own baseline"
        )
    if a.baseline != b.baseline:
        raise IncompatibleSketchError(
            f"cannot merge sketches of {a.model} v{a.version} made on different baselines "
            f"({a.baseline[:12]}… and {b.baseline[:12]}…): their bins do not align"
        )
    if _layout(b) != layout:  # same fingerprint, different shape: a damaged document
        raise IncompatibleSketchError(
            f"sketches of {a.model} v{a.version} on baseline {a.baseline[:12]}… differ in "
            "features or bins"
        )


def _layout(s: Sketch) -> tuple[Any, ...]:
    return (
        [(k, len(v.counts)) for k, v in s.numeric.items()],
        list(s.categorical),
        type(s.prediction),
        len(s.prediction.counts) if isinstance(s.prediction, NumericSketch) else None,
    )


def _merge_numeric(parts: list[NumericSketch]) -> NumericSketch:
    # Plain Python integers: exact at any total, and faster than numpy on 10,000 short lists.
    mins = [p.min for p in parts if p.min is not None]
    maxs = [p.max for p in parts if p.max is not None]
    return NumericSketch(
        counts=[sum(column) for column in zip(*[p.counts for p in parts], strict=True)],
        missing=sum([p.missing for p in parts]),
        count=sum([p.count for p in parts]),
        exact_sum=sum([p.exact_sum for p in parts]),
        min=min(mins) if mins else None,
        max=max(maxs) if maxs else None,
    )


def _merge_categorical(parts: list[CategoricalSketch]) -> CategoricalSketch:
    counts: dict[str, int] = {}
    for p in parts:
        for category, count in p.counts.items():
            counts[category] = counts.get(category, 0) + count
    return CategoricalSketch(
        counts=dict(sorted(counts.items())),
        unseen=sum([p.unseen for p in parts]),
        missing=sum([p.missing for p in parts]),
    )


def _numbers(values: list[Any]) -> npt.NDArray[np.float64]:
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


def _numeric_sketch(
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
        exact_sum=_exact_sum(finite),
        # + 0.0 turns -0.0 into 0.0, so min/max do not depend on which of the two came first.
        min=None if empty else float(finite.min()) + 0.0,
        max=None if empty else float(finite.max()) + 0.0,
    )


def _categorical_sketch(values: list[Any], known: frozenset[str]) -> CategoricalSketch:
    # As baseline.categorical_summary: null and "" are missing; integer class labels count as
    # their text (JSON object keys are text). Anything else cannot be a category: missing.
    counts = Counter([v if type(v) is str else str(v) if type(v) is int else None for v in values])
    missing = counts.pop(None, 0) + counts.pop("", 0)
    present = {k: c for k, c in sorted(counts.items()) if k is not None}
    return CategoricalSketch(
        counts=present,
        unseen=sum(c for k, c in present.items() if k not in known),
        missing=missing,
    )


def _exact_sum(finite: npt.NDArray[np.float64]) -> int:
    """``sum(finite) * 2**_SCALE_BITS`` exactly, vectorised.

    Each value is ``m * 2**(e - 53)`` (``np.frexp``); mantissas are split into 27 high and 26
    low bits, whose per-exponent sums stay below 2**53 and so are exact in float64's
    ``bincount``. Python integers then add the few per-exponent totals exactly.
    """
    total = 0
    for start in range(0, finite.size, _CHUNK):
        mantissa, exponent = np.frexp(finite[start : start + _CHUNK])
        m = np.ldexp(mantissa, 53).astype(np.int64)
        lowest = int(exponent.min())
        index = exponent - lowest
        high = np.bincount(index, weights=(m >> _LOW_BITS).astype(np.float64))
        low = np.bincount(index, weights=(m & ((1 << _LOW_BITS) - 1)).astype(np.float64))
        for offset in np.flatnonzero((high != 0) | (low != 0)):
            exact = (int(high[offset]) << _LOW_BITS) + int(low[offset])
            total += exact << (int(offset) + lowest - 53 + _SCALE_BITS)
    return total


def _to_float(exact: int, divisor: int) -> float:
    """``exact / (divisor * 2**_SCALE_BITS)``, correctly rounded (int / int is, in Python)."""
    try:
        return exact / (divisor << _SCALE_BITS)
    except OverflowError:
        return float("inf") if exact > 0 else float("-inf")


def _sum_to_hex(exact: int) -> str:
    """An exact sum as a hexadecimal float (``float.fromhex`` reads it, rounding), e.g.
    ``0x1b3p-2``: JSON numbers are doubles, and the exact sum may need more bits."""
    if exact == 0:
        return "0x0p+0"
    shift = (exact & -exact).bit_length() - 1  # trailing zero bits
    sign = "-" if exact < 0 else ""
    return f"{sign}0x{abs(exact) >> shift:x}p{shift - _SCALE_BITS:+d}"


def _sum_from_hex(text: Any) -> int:
    match = _HEX_SUM.fullmatch(text) if isinstance(text, str) else None
    if match is None or int(match[3]) + _SCALE_BITS < 0:
        raise ValueError(f"sum {text!r} is not an exact hexadecimal sum")
    exact = int(match[2], 16) << (int(match[3]) + _SCALE_BITS)
    return -exact if match[1] else exact


def _edges(raw: Any) -> npt.NDArray[np.float64]:
    return np.asarray(raw, dtype=np.float64).reshape(-1)


def _counts(raw: Any) -> list[int]:
    if not isinstance(raw, list) or not all(type(c) is int and c >= 0 for c in raw):
        raise ValueError(f"expected a list of counts, got {raw!r}")
    return list(raw)


def _count(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"expected a count, got {value!r}")
    return value


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {value!r}")
    return value
