"""Mergeable drift sketches: live traffic of one model version, as counts on its baseline.

The prediction logger builds one sketch per batch; the evaluator merges sketches of a window
instead of rescanning captures, so drift costs O(sketches), not O(rows). Counts, minima and
maxima merge exactly by nature; sums are kept as exact integers (``domain.exact_sum``), so the
sum and the mean do not depend on how traffic was batched, and no total can overflow.

The columns, their building and their bounded size are in ``mlops.domain.sketch_columns``;
merging sketches, and what a merge keeps exact, in ``mlops.domain.sketch_merge``.

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
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from mlops.domain import serving
from mlops.domain.config import DriftConfig
from mlops.domain.estimate import Calibration, CalibrationError, LossModelSpec
from mlops.domain.estimate_sketch import (
    NO_RELATIVE,
    ConfidenceCounts,
    EstimatePart,
    LossSums,
    build_cbpe,
    build_dle,
    part_from_dict,
)
from mlops.domain.serving import Serving
from mlops.domain.sketch_columns import (
    CategoricalSketch,
    ColumnSketch,
    NumericSketch,
    as_numbers,
    categorical_sketch,
    numeric_sketch,
    read_count,
)
from mlops.errors import MlopsError

SKETCH_SCHEMA = 2  # 2: unseen categories bounded (top K by name + the others' count)
DEFAULT_MAX_UNSEEN = DriftConfig().max_unseen_categories  # K when none is given
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
    # What quality estimation needs (``domain.estimate_sketch``); None when the version has
    # no calibration or loss model, and in sketches written before estimates.
    estimate: EstimatePart | None = None

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
        if self.estimate is not None:
            doc["estimate"] = self.estimate.to_dict()
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
                rows=read_count(raw["rows"]),
                truncated=read_count(raw["truncated"]),
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
                estimate=None if raw.get("estimate") is None else part_from_dict(raw["estimate"]),
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
        if self.estimate is not None and (
            self.estimate.scored + self.estimate.unscored != self.rows
        ):
            raise ValueError("the estimate part does not count the sketch's rows")


@dataclass(frozen=True)
class SketchPlan:
    """What building a sketch needs from a ``baseline.json``: edges as arrays, category sets
    and the fingerprint. Build it once per cached baseline, not per batch."""

    fingerprint: str
    numeric: dict[str, npt.NDArray[np.float64]]
    categorical: dict[str, frozenset[str]]
    prediction_edges: npt.NDArray[np.float64] | None  # regression
    prediction_classes: frozenset[str] | None  # classification
    # Quality estimation (``baseline["estimate"]``): CBPE's calibration or DLE's loss model;
    # ``estimate_problem`` says why a baseline's estimate section cannot be used.
    calibration: Calibration | None = None
    loss_model: LossModelSpec | None = None
    estimate_problem: str | None = None

    @classmethod
    def from_baseline(cls, baseline: Mapping[str, Any]) -> SketchPlan:
        prediction = baseline["prediction"]
        regression = "edges" in prediction
        calibration, loss_model, problem = read_estimate(baseline.get("estimate"), regression)
        return cls(
            calibration=calibration,
            loss_model=loss_model,
            estimate_problem=problem,
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
        problems += self._estimate_problems(sketch.estimate)
        if problems:
            raise IncompatibleSketchError(f"{where} does not fit its baseline: {problems[0]}")

    def _estimate_problems(self, part: EstimatePart | None) -> list[str]:
        if part is None:
            return []
        if isinstance(part, ConfidenceCounts):
            if self.calibration is None:
                return ["a CBPE part where the baseline has no calibration"]
            if part.bins != self.calibration.bins:
                return [f"a CBPE part of {part.bins} bins, not {self.calibration.bins}"]
            if not set(part.counts) <= set(self.calibration.classes):
                return ["a CBPE part counts classes the model does not have"]
            return []
        if self.loss_model is None:
            return ["a DLE part where the baseline has no loss model"]
        return []


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
    losses: Sequence[float | None] | None = None,
) -> Sketch:
    """The sketch of ``rows`` (``capture.capture_rows`` output) of one model version.

    ``model``/``version`` default to the first row's; every row must match them
    (``IncompatibleSketchError`` otherwise). With no rows they are required. Each column is
    binned with one vectorised numpy pass; Python only gathers the values out of the rows.
    A categorical column keeps at most ``max_unseen`` unseen categories by name (K).
    ``losses``: the loss model's estimated absolute error per row (None where it could not
    score one), for a version with a loss model; without them every row is unscored. With
    the rows' predictions they also give MAPE's relative errors (``estimate_sketch``).
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
    numbers = as_numbers(predictions) if plan.prediction_edges is not None else None
    if numbers is not None and plan.prediction_edges is not None:
        prediction: ColumnSketch = numeric_sketch(numbers, plan.prediction_edges)
    else:
        classes = plan.prediction_classes or frozenset()
        prediction = categorical_sketch(predictions, classes, max_unseen)
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
            name: numeric_sketch(as_numbers([i.get(name) for i in captured]), edges)
            for name, edges in plan.numeric.items()
        },
        categorical={
            name: categorical_sketch([i.get(name) for i in captured], known, max_unseen)
            for name, known in plan.categorical.items()
        },
        prediction=prediction,
        serving=serving.build(rows, task=task),
        estimate=_estimate_part(plan, rows, losses, numbers),
    )


def _estimate_part(
    plan: SketchPlan,
    rows: list[Mapping[str, Any]],
    losses: Sequence[float | None] | None,
    predictions: npt.NDArray[np.float64] | None,
) -> EstimatePart | None:
    if plan.calibration is not None:
        return build_cbpe(plan.calibration, rows)
    if plan.loss_model is None:
        return None
    if losses is None or len(losses) != len(rows):
        return LossSums(0, 0, 0, 0, len(rows), NO_RELATIVE)
    # A regression plan always has prediction edges; without them no row has an r.
    return build_dle(losses, predictions if predictions is not None else np.full(len(rows), np.nan))


def read_estimate(
    raw: Any, regression: bool
) -> tuple[Calibration | None, LossModelSpec | None, str | None]:
    """A baseline's estimate section: (calibration, loss model, why neither can be used)."""
    if raw is None:
        return None, None, None
    try:
        if regression:
            return None, LossModelSpec.from_dict(raw), None
        return Calibration.from_dict(raw), None, None
    except CalibrationError as exc:
        return None, None, str(exc)


def _edges(raw: Any) -> npt.NDArray[np.float64]:
    return np.asarray(raw, dtype=np.float64).reshape(-1)


def _mapping(raw: Any) -> Iterable[tuple[Any, Any]]:
    if not isinstance(raw, Mapping):
        raise TypeError(f"expected an object, got {type(raw).__name__}")
    return raw.items()


def _timestamp(value: Any) -> int:
    if type(value) is not int or not 0 <= value <= MAX_TIMESTAMP_MS:
        raise ValueError(f"expected a timestamp in ms within the calendar, got {str(value)[:40]}")
    return value


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
