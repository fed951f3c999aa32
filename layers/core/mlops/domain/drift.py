"""Drift: a window of live traffic (a merged sketch, or raw rows) against a version's baseline.

Each column is judged by ``mlops.domain.feature_drift`` (the rules, and why these); the
statistics themselves (numpy only, each checked against scipy) are in
``mlops.domain.drift_statistics``.

Everything is computed on the baseline's bins, so raw rows and the logger's sketch of them get
the same verdict.

- ``drift_share`` = drifted / judged features; the dataset drifts when there are at least
  ``min_rows`` rows and ``drift_share >= config.drift_share``. Below ``min_rows`` nothing is
  judged (the statistics are still reported). A feature the config names and the baseline
  lacks is reported as not judged, with the reason, never fatal.
- The prediction is judged like a feature; it is reported, not counted in the drift share.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from mlops.domain.config import DriftConfig
from mlops.domain.feature_drift import FeatureDrift, categorical_drift, numeric_drift
from mlops.domain.schema import Feature
from mlops.domain.sketch import (
    IncompatibleSketchError,
    Sketch,
    SketchPlan,
    baseline_fingerprint,
    build_sketch,
)
from mlops.domain.sketch_columns import NumericSketch


@dataclass(frozen=True)
class DriftResult:
    """One window's verdict. ``rows`` counts the predictions whose inputs were captured (what
    the feature statistics are about); ``reference_rows`` the baseline's training rows."""

    features: tuple[FeatureDrift, ...]
    prediction: FeatureDrift | None
    rows: int
    reference_rows: int
    drift_share: float
    dataset_drift: bool
    enough_data: bool
    min_rows: int = field(default=0)

    @property
    def drifted_features(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.features if f.drifted)

    def as_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "reference_rows": self.reference_rows,
            "min_rows": self.min_rows,
            "enough_data": self.enough_data,
            "drift_share": self.drift_share,
            "dataset_drift": self.dataset_drift,
            "drifted_features": list(self.drifted_features),
            "features": [f.as_dict() for f in self.features],
            "prediction": None if self.prediction is None else self.prediction.as_dict(),
        }


# --- evaluation ---------------------------------------------------------------------------


def evaluate_sketch(
    baseline: Mapping[str, Any],
    sketch: Sketch,
    config: DriftConfig,
    features: Sequence[Feature] | None = None,
) -> DriftResult:
    """Judge a window's (merged) sketch against the baseline it was binned on.

    ``features`` (the model config's): judge those, in that order, a feature the baseline
    lacks reported as not judged (why in its ``note``); None: every feature of the baseline.
    Constant work per feature and bin, none per row. Raises ``IncompatibleSketchError`` when
    the sketch was made on another baseline.
    """
    fingerprint = baseline_fingerprint(baseline)
    if sketch.baseline != fingerprint:
        raise IncompatibleSketchError(
            f"the sketch of {sketch.model} v{sketch.version} was binned on baseline "
            f"{sketch.baseline[:12]}…, not on this one ({fingerprint[:12]}…)"
        )
    names = [*baseline["numeric"], *baseline["categorical"]]
    missing = [n for n in names if n not in sketch.numeric and n not in sketch.categorical]
    if missing:
        raise IncompatibleSketchError(f"the sketch has no column for {', '.join(missing)}")
    return _evaluate(baseline, sketch, _wanted(baseline, features), config, with_prediction=True)


def evaluate_rows(
    baseline: Mapping[str, Any],
    rows: Sequence[Mapping[str, Any] | None],
    features: Sequence[Feature],
    config: DriftConfig,
    predictions: Sequence[Any] | None = None,
) -> DriftResult:
    """Judge raw rows (a window small enough to read from the captures).

    ``rows`` are either capture rows (as ``capture.capture_rows`` returns and the captures
    store holds: ``inputs`` and ``prediction`` keys, ``inputs`` None when truncated), whose
    predictions are used unless ``predictions`` is given; or the inputs themselves (one mapping
    of feature values per prediction, None for a truncated capture) with ``predictions`` the
    matching predictions (None: no prediction drift). A feature of ``features`` the baseline
    lacks is reported as not judged (why in its ``note``).

    The rows are binned with the logger's own ``build_sketch`` and judged as a sketch is, so
    both paths give the same verdict on the same rows. The raw values are not tested against
    the baseline any further on purpose: the baseline holds bin counts, so between two edges
    its distribution is unknown, and a test of exact values against an assumed shape inside
    the bins (KS on a piecewise-linear CDF, as before) flagged 14-19 % of unchanged windows of
    whole years or rates rounded to 0.01, and 6 % of continuous ones, at the 5 % level.
    """
    if _are_capture_rows(rows, features):
        if predictions is None:
            predictions = [r.get("prediction") if r is not None else None for r in rows]
        rows = [r.get("inputs") if r is not None else None for r in rows]
    if predictions is not None and len(predictions) != len(rows):
        raise ValueError(f"{len(predictions)} predictions for {len(rows)} rows")
    plan = SketchPlan.from_baseline(baseline)
    labels = predictions if predictions is not None else [None] * len(rows)
    captured = [
        {"ts": 0, "model": "-", "version": "-", "inputs": inputs, "prediction": label}
        for inputs, label in zip(rows, labels, strict=True)
    ]
    sketch = build_sketch(plan, captured, model="-", version="-")
    return _evaluate(
        baseline,
        sketch,
        _wanted(baseline, features),
        config,
        with_prediction=predictions is not None,
    )


def _are_capture_rows(
    rows: Sequence[Mapping[str, Any] | None], features: Sequence[Feature]
) -> bool:
    if any(f.name in ("inputs", "prediction") for f in features):
        return False
    first = next((r for r in rows if r is not None), None)
    return first is not None and "inputs" in first and "prediction" in first


def _wanted(
    baseline: Mapping[str, Any], features: Sequence[Feature] | None
) -> list[tuple[str, str]]:
    """``(name, kind)`` of each feature to judge: the config's, or the baseline's."""
    if features is None:
        return [
            *((name, "numeric") for name in baseline["numeric"]),
            *((name, "categorical") for name in baseline["categorical"]),
        ]
    return [(f.name, "numeric" if f.type == "numeric" else "categorical") for f in features]


def _evaluate(
    baseline: Mapping[str, Any],
    sketch: Sketch,
    wanted: Sequence[tuple[str, str]],
    config: DriftConfig,
    *,
    with_prediction: bool,
) -> DriftResult:
    rows = sketch.rows - sketch.truncated
    enough = rows >= config.min_rows
    judged = []
    for name, kind in wanted:
        if name not in baseline[kind]:
            judged.append(_absent(name, kind, baseline))
        elif kind == "numeric":
            summary = baseline["numeric"][name]
            column = sketch.numeric[name]
            judged.append(numeric_drift(name, summary, column, config.for_feature(name)))
        else:
            summary = baseline["categorical"][name]
            cats = sketch.categorical[name]
            judged.append(categorical_drift(name, summary, cats, config.for_feature(name)))
    prediction = None
    if with_prediction:
        summary = baseline["prediction"]
        if isinstance(sketch.prediction, NumericSketch):
            prediction = numeric_drift("prediction", summary, sketch.prediction, config)
        else:
            prediction = categorical_drift("prediction", summary, sketch.prediction, config)
    if not enough:
        judged = [_not_judged(f) for f in judged]
        prediction = None if prediction is None else _not_judged(prediction)
    counted = [f for f in judged if f.judged]
    drifted = sum(f.drifted for f in counted)
    share = drifted / len(counted) if counted else 0.0
    return DriftResult(
        features=tuple(judged),
        prediction=prediction,
        rows=rows,
        reference_rows=int(baseline.get("rows", 0)),
        drift_share=share,
        dataset_drift=enough and bool(counted) and share >= config.drift_share,
        enough_data=enough,
        min_rows=config.min_rows,
    )


def _not_judged(feature: FeatureDrift) -> FeatureDrift:
    return replace(feature, drifted=False, warning=False, reasons=(), judged=False)


def _absent(name: str, kind: str, baseline: Mapping[str, Any]) -> FeatureDrift:
    """A feature the config names and the baseline does not have (a config edited after the
    version was trained): reported, not judged, not counted in the drift share."""
    other = "categorical" if kind == "numeric" else "numeric"
    why = (
        f"the baseline has {name!r} as a {other} feature, the config as {kind}"
        if name in baseline[other]
        else f"the baseline has no {kind} feature {name!r} (the config names one)"
    )
    return FeatureDrift(
        name=name,
        type=kind,
        test="not judged",
        statistics={},
        thresholds={},
        drifted=False,
        warning=False,
        reasons=(),
        reference_rows=0,
        current_rows=0,
        missing_rate={},
        histogram={},
        note=f"not judged: {why}",
        judged=False,
    )
