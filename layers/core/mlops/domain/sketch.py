"""Mergeable drift sketches: live traffic of one model version, as counts on its baseline.

The prediction logger builds one sketch per batch; the evaluator merges sketches of a window
instead of rescanning captures, so drift costs O(sketches), not O(rows). Counts, minima and
maxima merge exactly by nature; sums are kept as exact integers (``domain.exact_sum``), so the
sum and the mean do not depend on how traffic was batched, and no total can overflow.

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

**What merging keeps exact, and what folding does.** The total of unseen values, the missing
counts and every baseline category's count merge exactly, always: they are all the drift
statistics read (Jensen-Shannon distance with the unseen values as one bucket, the unseen
share). Names of unseen values are the only approximate part: a merge adds the named counts
of its parts, then keeps the K largest and adds the rest to ``unseen_other``. A value kept
by name in one batch and folded in another has only its named part in its count: for every
kept name, ``kept count <= true count <= kept count + unseen_other``. A value frequent over
the window but never among a batch's K most frequent may be absent by name (its rows are in
``unseen_other``). Merging is exact, field for field, while a column has at most K distinct
unseen values in the merged parts; beyond that the kept names depend on how traffic was
batched, never the totals.

**Bounded numbers.** Reading a document (``Sketch.from_dict``) refuses anything the builder
cannot have written: counts that are not integers from 0 to ``MAX_COUNT``; totals that
disagree (every column's bins, unseen and missing counts add up to the rows it saw); a
minimum or maximum that is not a finite number, or a sum outside ``count * [min, max]`` or
beyond ``exact_sum.MAX_BITS`` bits (refused before any big integer is built); timestamps
outside the calendar; more than ``MAX_UNSEEN_LIMIT`` unseen names, or a name longer than
``MAX_CATEGORY_CHARS``. ``SketchPlan.check`` then refuses a sketch that is well formed but
not binned on the plan's baseline (another version, a bin short, a feature missing).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from mlops.domain import serving
from mlops.domain.config import MAX_UNSEEN_CATEGORIES, DriftConfig
from mlops.domain.exact_sum import exact_sum, from_hex, scaled, to_float, to_hex
from mlops.domain.serving import Serving
from mlops.errors import MlopsError

SKETCH_SCHEMA = 2  # 2: unseen categories bounded (top K by name + the others' count)
MAX_CATEGORY_CHARS = 64  # an unseen value is cut to this many characters before counting
DEFAULT_MAX_UNSEEN = DriftConfig().max_unseen_categories  # K when none is given
MAX_UNSEEN_LIMIT = MAX_UNSEEN_CATEGORIES  # the largest K a config may set, a document hold
MAX_COUNT = 2**53 - 1  # beyond this a count is not exact in float64 (nor in most JSON readers)
MAX_TIMESTAMP_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z
MAX_VARIANTS = 4  # production, canary, shadow (and room for one more)
_MAX_TEXT = 1024  # model, version and fingerprint fields


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
        count = _count(raw["count"])
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
            missing=_count(raw["missing"]),
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
            unseen_other=_count(raw["unseen_other"]),
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
    # Per variant, what a rollout is judged on (``domain.serving``); None in sketches written
    # before it (and in any merge with one of them).
    serving: dict[str, Serving] | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready document; ``from_dict(to_dict())`` is equal to the sketch."""
        kind = "numeric" if isinstance(self.prediction, NumericSketch) else "categorical"
        doc: dict[str, Any] = {
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
        if self.serving is not None:
            doc["serving"] = {k: v.to_dict() for k, v in self.serving.items()}
        return doc

    @classmethod
    def from_dict(cls, raw: Any) -> Sketch:
        """Read a sketch document; raises ``SketchError`` for anything the builder cannot have
        written (see the module's "Bounded numbers")."""
        try:
            if not isinstance(raw, Mapping):
                raise TypeError(f"a sketch is a JSON object, not {type(raw).__name__}")
            if raw.get("schema") != SKETCH_SCHEMA:
                raise ValueError(f"schema {str(raw.get('schema'))[:20]!r} is not {SKETCH_SCHEMA}")
            prediction = raw["prediction"]
            kind = prediction["type"]
            if kind not in ("numeric", "categorical"):
                raise ValueError(f"prediction type {str(kind)[:20]!r}")
            sketch = cls(
                model=_text(raw["model"]),
                version=_text(raw["version"]),
                baseline=_text(raw["baseline"]),
                rows=_count(raw["rows"]),
                truncated=_count(raw["truncated"]),
                first_ts=None if raw["first_ts"] is None else _timestamp(raw["first_ts"]),
                last_ts=None if raw["last_ts"] is None else _timestamp(raw["last_ts"]),
                numeric={_text(k): NumericSketch.from_dict(v) for k, v in _mapping(raw["numeric"])},
                categorical={
                    _text(k): CategoricalSketch.from_dict(v)
                    for k, v in _mapping(raw["categorical"])
                },
                prediction=NumericSketch.from_dict(prediction)
                if kind == "numeric"
                else CategoricalSketch.from_dict(prediction),
                serving=_serving(
                    raw.get("serving"), "regression" if kind == "numeric" else "classification"
                ),
            )
            sketch.check_totals()
            return sketch
        except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as exc:
            raise SketchError(f"not a sketch document: {type(exc).__name__}: {exc}") from exc

    def check_totals(self) -> None:
        """``ValueError`` unless every column saw as many values as there were rows (captured
        rows for the features, every row for the prediction) and the timestamps fit."""
        captured = self.rows - self.truncated
        if captured < 0:
            raise ValueError(f"{self.truncated} truncated rows of {self.rows}")
        if (self.first_ts is None) != (self.rows == 0) or (self.last_ts is None) != (
            self.rows == 0
        ):
            raise ValueError("timestamps are given exactly when there are rows")
        if self.first_ts is not None and self.last_ts is not None and self.first_ts > self.last_ts:
            raise ValueError("first_ts is after last_ts")
        columns: list[tuple[str, ColumnSketch, int]] = [
            *((name, c, captured) for name, c in self.numeric.items()),
            *((name, c, captured) for name, c in self.categorical.items()),
            ("prediction", self.prediction, self.rows),
        ]
        for name, column, expected in columns:
            if column.values != expected:
                raise ValueError(f"{name[:80]!r} counts {column.values} values for {expected} rows")
        if self.serving is not None and sum(v.rows for v in self.serving.values()) != self.rows:
            raise ValueError("the serving digests do not count the sketch's rows")


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

    def check(self, sketch: Sketch, model: str, version: str) -> None:
        """``IncompatibleSketchError`` unless ``sketch`` is of ``model`` v``version`` and was
        binned on this plan's baseline: same fingerprint, features, bins and categories. A
        document can carry the right fingerprint and still not fit (damaged or forged)."""
        where = f"a sketch of {sketch.model[:64]} v{sketch.version[:16]}"
        if (sketch.model, sketch.version) != (model, version):
            raise IncompatibleSketchError(f"{where} where {model} v{version} was expected")
        if sketch.baseline != self.fingerprint:
            raise IncompatibleSketchError(f"{where} binned on another baseline")
        problems = [
            *_shape_problems("numeric", sketch.numeric, self.numeric),
            *_shape_problems("categorical", sketch.categorical, self.categorical),
        ]
        spec = self.prediction_edges
        classes = self.prediction_classes or frozenset()
        problems += _shape_problems(
            "prediction",
            {"prediction": sketch.prediction},
            {"prediction": classes if spec is None else spec},
        )
        if problems:
            raise IncompatibleSketchError(f"{where} does not fit its baseline: {problems[0]}")


def _shape_problems(
    kind: str,
    columns: Mapping[str, ColumnSketch],
    expected: Mapping[str, npt.NDArray[np.float64] | frozenset[str]],
) -> list[str]:
    """Why ``columns`` are not the ones a plan bins ``expected`` into (empty when they are)."""
    if set(columns) != set(expected):
        extra, lacking = sorted(set(columns) - set(expected)), sorted(set(expected) - set(columns))
        return [f"{kind} features differ (missing {lacking[:3]}, extra {extra[:3]})"]
    problems = []
    for name, column in columns.items():
        spec = expected[name]
        if isinstance(spec, frozenset):
            if not isinstance(column, CategoricalSketch):
                problems.append(f"{name!r} is not categorical")
            elif not set(column.counts) <= spec:
                problems.append(f"{name!r} counts categories the baseline lacks by name")
            elif not spec.isdisjoint(column.unseen_top):
                problems.append(f"{name!r} counts a baseline category as unseen")
        elif not isinstance(column, NumericSketch):
            problems.append(f"{name!r} is not numeric")
        elif len(column.counts) != spec.size + 1:
            problems.append(f"{name!r} has {len(column.counts)} bins, not {spec.size + 1}")
    return problems


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
    max_unseen: int = DEFAULT_MAX_UNSEEN,
) -> Sketch:
    """The sketch of ``rows`` (``capture.capture_rows`` output) of one model version.

    ``model``/``version`` default to the first row's; every row must match them
    (``IncompatibleSketchError`` otherwise). With no rows they are required. Each column is
    binned with one vectorised numpy pass; Python only gathers the values out of the rows.
    A categorical column keeps at most ``max_unseen`` unseen categories by name (K).
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
        classes = plan.prediction_classes or frozenset()
        prediction = _categorical_sketch(predictions, classes, max_unseen)
    task = "regression" if plan.prediction_edges is not None else "classification"
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
            name: _categorical_sketch([i.get(name) for i in captured], known, max_unseen)
            for name, known in plan.categorical.items()
        },
        prediction=prediction,
        serving=serving.build(rows, task=task),
    )


def merge(a: Sketch, b: Sketch, *, max_unseen: int = DEFAULT_MAX_UNSEEN) -> Sketch:
    """The sketch of both sketches' rows; commutative, and associative while no column has
    more than ``max_unseen`` unseen names (see the module's "What merging keeps exact")."""
    return merge_all((a, b), max_unseen=max_unseen)


def merge_all(sketches: Iterable[Sketch], *, max_unseen: int = DEFAULT_MAX_UNSEEN) -> Sketch:
    """The sketch of all the sketches' rows, in one pass (an hourly roll-up, a drift window);
    each categorical column keeps its ``max_unseen`` most frequent unseen names.

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
            [s.prediction for s in items if isinstance(s.prediction, CategoricalSketch)],
            max_unseen,
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
            k: _merge_categorical([s.categorical[k] for s in items], max_unseen)
            for k in first.categorical
        },
        prediction=prediction,
        serving=None
        if any(s.serving is None for s in items)
        else serving.merge_variants(s.serving for s in items if s.serving is not None),
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


def _merge_categorical(parts: list[CategoricalSketch], max_unseen: int) -> CategoricalSketch:
    counts: dict[str, int] = {}
    top: dict[str, int] = {}
    for p in parts:
        for category, count in p.counts.items():
            counts[category] = counts.get(category, 0) + count
        for category, count in p.unseen_top.items():
            top[category] = top.get(category, 0) + count
    kept, folded = _top(top, max_unseen)
    return CategoricalSketch(
        counts=dict(sorted(counts.items())),
        unseen_top=kept,
        unseen_other=sum([p.unseen_other for p in parts]) + folded,
        missing=sum([p.missing for p in parts]),
    )


def _top(counts: Mapping[str, int], k: int) -> tuple[dict[str, int], int]:
    """The ``k`` largest counts (ties by name), sorted by name, and the sum of the rest."""
    if len(counts) <= k:
        return dict(sorted(counts.items())), 0
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return dict(sorted(ranked[:k])), sum(c for _, c in ranked[k:])


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
        exact_sum=exact_sum(finite),
        # + 0.0 turns -0.0 into 0.0, so min/max do not depend on which of the two came first.
        min=None if empty else float(finite.min()) + 0.0,
        max=None if empty else float(finite.max()) + 0.0,
    )


def _categorical_sketch(
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
    kept, folded = _top(unseen, max_unseen)
    return CategoricalSketch(
        counts=dict(sorted(baseline.items())),
        unseen_top=kept,
        unseen_other=folded,
        missing=missing,
    )


def _edges(raw: Any) -> npt.NDArray[np.float64]:
    return np.asarray(raw, dtype=np.float64).reshape(-1)


def _counts(raw: Any) -> list[int]:
    if not isinstance(raw, list):
        raise ValueError(f"expected a list of counts, got {type(raw).__name__}")
    return [_count(c) for c in raw]


def _category_counts(raw: Any) -> dict[str, int]:
    if not isinstance(raw, Mapping):
        raise TypeError(f"category counts must be an object, not {type(raw).__name__}")
    # Baseline categories are as long as training made them: the bytes read bound their size.
    if not all(isinstance(k, str) for k in raw):
        raise TypeError("category names must be strings")
    return {k: _count(v) for k, v in raw.items()}


def _mapping(raw: Any) -> Iterable[tuple[Any, Any]]:
    if not isinstance(raw, Mapping):
        raise TypeError(f"expected an object, got {type(raw).__name__}")
    return raw.items()


def _count(value: Any) -> int:
    if type(value) is not int or not 0 <= value <= MAX_COUNT:
        raise ValueError(f"expected a count from 0 to 2**53 - 1, got {str(value)[:40]}")
    return value


def _timestamp(value: Any) -> int:
    if type(value) is not int or not 0 <= value <= MAX_TIMESTAMP_MS:
        raise ValueError(f"expected a timestamp in ms within the calendar, got {str(value)[:40]}")
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


def _text(value: Any) -> str:
    if not isinstance(value, str) or len(value) > _MAX_TEXT:
        raise TypeError(f"expected a string of at most {_MAX_TEXT} characters")
    return value


def _serving(raw: Any, task: str) -> dict[str, Serving] | None:
    if raw is None:
        return None
    if not isinstance(raw, Mapping) or len(raw) > MAX_VARIANTS:
        raise ValueError("serving maps at most a few variants to digests")
    return {_variant(k): Serving.from_dict(v, task=task) for k, v in raw.items()}


def _variant(value: Any) -> str:
    if not isinstance(value, str) or not 0 < len(value) <= 32:
        raise ValueError("a variant is a short name")
    return value
