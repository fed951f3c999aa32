"""Quality estimated before labels arrive (DESIGN §5 "Estimates before labels").

**CBPE** (classification, confidence-based performance estimation): at training, the
model's top probability on the holdout is binned (quantile edges, at most ``MAX_BINS``) and
each (predicted class, bin) gets the holdout's share of correct answers, shrunk toward the
bin's share over all classes (``SHRINK`` pseudo-rows) and made non-decreasing in confidence
(pool-adjacent-violators). Live, the logger counts rows per (predicted class, bin): integers,
so hours merge exactly. The expected number of correct answers is then ``sum(count * value)``
and its variance the Poisson-binomial ``sum(count * p * (1 - p))`` plus the calibration's own
uncertainty (``p (1 - p) / (support + SHRINK + 1)`` per cell, from the holdout's size).

**DLE** (regression, direct loss estimation): a small model of the absolute error, fitted
on the holdout (``domain.loss_model``), is scored by the logger on every captured row; hours
keep ``count, sum, sum of squares, sum of fourth powers`` of the estimated error ``a``.
Estimated MAE is ``mae_ratio * mean(a)``, estimated MSE ``mse_ratio * mean(a**2)``; the
ratios and spreads come from cross-fitted (out-of-fold) holdout predictions, so the loss model
is judged on errors it was not fitted on. **MAPE** has no label to divide by: the prediction
stands in for it, ``r = a / |prediction|`` (``relative_errors``), and hours also keep the count
and exact sums of ``r`` and ``r**2``; estimated MAPE is ``mape_ratio * mean(r)``, the holdout
ratio ``sum(|e| / max(|y|, EPSILON)) / sum(r)`` absorbing the stand-in's bias there. A
prediction below ``EPSILON`` in size (or not finite) gives no ``r``: it says nothing about
``|y|``, and ``a / EPSILON`` would swamp every other row; such rows are counted out of the MAPE
estimate, not floored.

Both are **estimates**: they assume the relation between inputs and target has not moved
(covariate shift only). Pure concept drift, where the same inputs get other answers, leaves
them unchanged; only labels show it (docs/estimates.md measures it).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from mlops.domain.metrics import EPSILON

SCHEMA = 1
MAX_BINS = 20
MIN_ROWS_PER_BIN = 50
MAX_CLASSES = 64  # beyond this, no CBPE: the sketch part would grow with the classes
SHRINK = 10.0  # pseudo-rows pulling a (class, bin) toward the bin's value over all classes
Z_95 = 1.959963984540054  # two-sided 95 % normal quantile
LOSS_MODEL = "loss_model.onnx"
MAX_SPREAD = 1e6  # a spread (variance ratio) beyond this is not a loss model's
MAX_MAGNITUDE = 1e300  # a holdout mean error (squared) must stay a finite float64
EXTRAPOLATION = 0.5  # share of the estimate's move from the holdout added as uncertainty
CBPE_METRICS = ("accuracy", "f1_macro")
DLE_METRICS = ("mae", "rmse", "mape")
MAX_RELATIVE = 1e75  # an estimated relative error beyond this has a square beyond any sum's
MAPE_KEYS = ("mape_ratio", "mape_spread", "mape_rel_se", "holdout_mean_rel")
_F1_DRAWS = 400


class CalibrationError(ValueError):
    """A calibration or loss-model description that cannot be trusted (the gate rejects it)."""


# ----------------------------------------------------------------------------- calibration


@dataclass(frozen=True)
class Calibration:
    """CBPE's map: ``values[c][b]`` is the chance that a prediction of class ``c`` whose top
    probability falls in bin ``b`` (``edges``, bins as in ``baseline.json``) is right."""

    classes: tuple[str, ...]
    edges: tuple[float, ...]
    values: dict[str, tuple[float, ...]]
    support: dict[str, tuple[int, ...]]  # holdout rows behind each value
    error_shares: dict[str, dict[str, float]]  # of class c's misses, the share per true class
    holdout_rows: int

    @property
    def bins(self) -> int:
        return len(self.edges) + 1

    def bin_of(self, confidence: npt.NDArray[np.float64]) -> npt.NDArray[np.intp]:
        edges = np.asarray(self.edges, dtype=np.float64)
        return np.searchsorted(edges, confidence, side="right")

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "cbpe",
            "schema": SCHEMA,
            "classes": list(self.classes),
            "edges": list(self.edges),
            "values": {c: list(v) for c, v in self.values.items()},
            "support": {c: list(v) for c, v in self.support.items()},
            "error_shares": {c: dict(v) for c, v in self.error_shares.items()},
            "holdout_rows": self.holdout_rows,
        }

    @classmethod
    def from_dict(cls, raw: Any) -> Calibration:
        """Read and check a calibration; ``CalibrationError`` naming what is wrong: edges
        not strictly increasing inside [0, 1], values outside [0, 1] or decreasing in
        confidence, supports that are not counts adding up to the holdout, shares that are
        not a distribution over the classes."""
        try:
            if not isinstance(raw, Mapping) or raw.get("kind") != "cbpe":
                raise CalibrationError("not a CBPE calibration (kind must be 'cbpe')")
            if raw.get("schema") != SCHEMA:
                raise CalibrationError(f"calibration schema {str(raw.get('schema'))[:20]!r}")
            classes = tuple(_label(c) for c in _list(raw["classes"], "classes"))
            if not 2 <= len(classes) <= MAX_CLASSES or len(set(classes)) != len(classes):
                raise CalibrationError(f"classes: 2 to {MAX_CLASSES} distinct labels")
            edges = tuple(_unit(e, "edges") for e in _list(raw["edges"], "edges"))
            if len(edges) > MAX_BINS - 1 or any(b <= a for a, b in itertools.pairwise(edges)):
                raise CalibrationError(
                    f"edges: at most {MAX_BINS - 1}, strictly increasing within [0, 1]"
                )
            bins = len(edges) + 1
            values = _per_class(raw["values"], classes, bins, "values", _unit)
            support = _per_class(raw["support"], classes, bins, "support", _count)
            for c, row in values.items():
                if any(b < a for a, b in itertools.pairwise(row)):
                    raise CalibrationError(f"values of class {c!r} decrease with confidence")
            holdout = _count(raw["holdout_rows"], "holdout_rows")
            if sum(sum(s) for s in support.values()) != holdout:
                raise CalibrationError("supports do not add up to holdout_rows")
            shares = _shares(raw["error_shares"], classes)
        except (KeyError, TypeError) as exc:
            raise CalibrationError(f"calibration lacks or mistypes a field: {exc}") from exc
        return cls(classes, edges, values, support, shares, holdout)


def fit_calibration(
    predicted: Sequence[Any] | npt.NDArray[Any],
    probabilities: npt.ArrayLike,
    actual: Sequence[Any] | npt.NDArray[Any],
    classes: Sequence[Any],
) -> Calibration | None:
    """CBPE's map from holdout predictions (``probabilities``: one column per class, in
    ``classes`` order); None when there are too many classes or too few rows."""
    labels = [str(c) for c in classes]
    proba = np.asarray(probabilities, dtype=np.float64)
    rows = len(proba)
    if not 2 <= len(labels) <= MAX_CLASSES or rows < 2 * MIN_ROWS_PER_BIN // 5:
        return None
    confidence = np.clip(proba.max(axis=1), 0.0, 1.0)
    guess = np.asarray([str(p) for p in predicted], dtype=object)
    truth = np.asarray([str(a) for a in actual], dtype=object)
    correct = guess == truth
    bins = int(np.clip(rows // MIN_ROWS_PER_BIN, 1, MAX_BINS))
    inner = np.quantile(confidence, np.linspace(0, 1, bins + 1)[1:-1]) if bins > 1 else []
    edges = tuple(float(e) for e in np.unique(np.asarray(inner, dtype=np.float64)))
    edges = tuple(e for e in edges if 0.0 < e <= 1.0)
    index = np.searchsorted(np.asarray(edges), confidence, side="right")
    width = len(edges) + 1
    n_all = np.bincount(index, minlength=width).astype(np.float64)
    k_all = np.bincount(index, weights=correct.astype(np.float64), minlength=width)
    overall = np.asarray(_pav((k_all + 1.0) / (n_all + 2.0), n_all + 2.0))
    values: dict[str, tuple[float, ...]] = {}
    support: dict[str, tuple[int, ...]] = {}
    shares: dict[str, dict[str, float]] = {}
    for c in labels:
        mine = guess == c
        n = np.bincount(index[mine], minlength=width).astype(np.float64)
        k = np.bincount(index[mine], weights=correct[mine].astype(np.float64), minlength=width)
        fitted = _pav((k + SHRINK * overall) / (n + SHRINK), n + SHRINK)
        values[c] = tuple(float(np.clip(v, 0.0, 1.0)) for v in fitted)
        support[c] = tuple(int(v) for v in n)
        misses = truth[mine & ~correct]
        counted = {t: int(np.count_nonzero(misses == t)) for t in labels if t != c}
        total = sum(counted.values())
        shares[c] = (
            {t: v / total for t, v in counted.items() if v}
            if total
            else {t: 1.0 / (len(labels) - 1) for t in labels if t != c}
        )
    # Rows predicted as a label outside ``classes`` cannot happen for a scikit-learn model;
    # the support must still add up, so they count toward no class.
    return Calibration(
        tuple(labels), edges, values, support, shares, sum(sum(s) for s in support.values())
    )


def _pav(values: npt.NDArray[np.float64], weights: npt.NDArray[np.float64]) -> list[float]:
    """Weighted isotonic (non-decreasing) fit by pool-adjacent-violators."""
    blocks: list[list[float]] = []  # [value, weight, length]
    for v, w in zip(values.tolist(), weights.tolist(), strict=True):
        blocks.append([v, w, 1])
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            v2, w2, n2 = blocks.pop()
            v1, w1, n1 = blocks.pop()
            blocks.append([(v1 * w1 + v2 * w2) / (w1 + w2), w1 + w2, n1 + n2])
    return [b[0] for b in blocks for _ in range(int(b[2]))]


# ----------------------------------------------------------------------------- loss model


@dataclass(frozen=True)
class LossModelSpec:
    """DLE's loss model as ``baseline.json`` describes it: the ONNX file next to the model
    (its sha256), the name of its prediction input, and holdout constants (out of fold)."""

    sha256: str
    prediction_input: str
    mae_ratio: float  # sum |e| / sum a
    mse_ratio: float  # sum e**2 / sum a**2
    mae_spread: float  # sum (|e| - mae_ratio a)**2 / sum a**2
    mse_spread: float  # sum (e**2 - mse_ratio a**2)**2 / sum a**4
    mae_rel_se: float  # relative standard error of mae_ratio (the holdout's size)
    mse_rel_se: float
    holdout_rows: int
    # mean a and a**2 over the holdout (out of fold): where the loss model was fitted
    holdout_mean: float = 0.0
    holdout_mean_sq: float = 0.0
    artifact: str = LOSS_MODEL
    # MAPE (``relative_errors``): sum |e| / max(|y|, EPSILON) / sum r, its spread and relative
    # standard error, and mean r over the holdout. None in baselines written before: no MAPE.
    mape_ratio: float | None = None
    mape_spread: float | None = None
    mape_rel_se: float | None = None
    holdout_mean_rel: float | None = None

    @property
    def has_mape(self) -> bool:
        return self.mape_ratio is not None

    @classmethod
    def of(
        cls, sha256: str, prediction_input: str, holdout_rows: int, constants: Mapping[str, float]
    ) -> LossModelSpec:
        return cls(
            sha256=sha256,
            prediction_input=prediction_input,
            mae_ratio=constants["mae_ratio"],
            mse_ratio=constants["mse_ratio"],
            mae_spread=constants["mae_spread"],
            mse_spread=constants["mse_spread"],
            mae_rel_se=constants["mae_rel_se"],
            mse_rel_se=constants["mse_rel_se"],
            holdout_rows=holdout_rows,
            holdout_mean=constants["holdout_mean"],
            holdout_mean_sq=constants["holdout_mean_sq"],
            mape_ratio=constants.get("mape_ratio"),
            mape_spread=constants.get("mape_spread"),
            mape_rel_se=constants.get("mape_rel_se"),
            holdout_mean_rel=constants.get("holdout_mean_rel"),
        )

    def to_dict(self) -> dict[str, Any]:
        mape = (
            {
                "mape_ratio": self.mape_ratio,
                "mape_spread": self.mape_spread,
                "mape_rel_se": self.mape_rel_se,
                "holdout_mean_rel": self.holdout_mean_rel,
            }
            if self.has_mape
            else {}
        )
        return mape | {
            "kind": "dle",
            "schema": SCHEMA,
            "artifact": self.artifact,
            "sha256": self.sha256,
            "prediction_input": self.prediction_input,
            "target": "absolute_error",
            "mae_ratio": self.mae_ratio,
            "mse_ratio": self.mse_ratio,
            "mae_spread": self.mae_spread,
            "mse_spread": self.mse_spread,
            "mae_rel_se": self.mae_rel_se,
            "mse_rel_se": self.mse_rel_se,
            "holdout_rows": self.holdout_rows,
            "holdout_mean": self.holdout_mean,
            "holdout_mean_sq": self.holdout_mean_sq,
        }

    @classmethod
    def from_dict(cls, raw: Any) -> LossModelSpec:
        try:
            if not isinstance(raw, Mapping) or raw.get("kind") != "dle":
                raise CalibrationError("not a DLE description (kind must be 'dle')")
            if raw.get("schema") != SCHEMA or raw.get("artifact") != LOSS_MODEL:
                raise CalibrationError(f"DLE schema must be {SCHEMA}, artifact {LOSS_MODEL}")
            sha = raw["sha256"]
            if not isinstance(sha, str) or len(sha) != 64 or not _is_hex(sha):
                raise CalibrationError("sha256: 64 hexadecimal digits")
            name = raw["prediction_input"]
            if not isinstance(name, str) or not 0 < len(name) <= 160:
                raise CalibrationError("prediction_input: a short name")
            rows = _count(raw["holdout_rows"], "holdout_rows")
            return cls.of(sha, name, rows, read_constants(raw))
        except (KeyError, TypeError) as exc:
            raise CalibrationError(f"DLE description lacks or mistypes a field: {exc}") from exc


def read_constants(raw: Mapping[str, Any]) -> dict[str, float]:
    """DLE's holdout constants from a document (``CalibrationError`` when out of range)."""
    keys = ("mae_ratio", "mse_ratio", "mae_spread", "mse_spread")
    out = {k: _positive(raw[k], k) for k in keys}
    for k in ("holdout_mean", "holdout_mean_sq"):  # in the target's units (squared): no cap
        out[k] = _positive(raw[k], k, limit=MAX_MAGNITUDE)
    for k in ("mae_rel_se", "mse_rel_se"):
        out[k] = _positive(raw[k], k, allow_zero=True)
    present = [k for k in MAPE_KEYS if k in raw]
    if present and len(present) != len(MAPE_KEYS):  # all or none: older baselines have none
        raise CalibrationError(f"MAPE constants: all of {', '.join(MAPE_KEYS)} or none")
    if present:
        out["mape_ratio"] = _positive(raw["mape_ratio"], "mape_ratio")
        out["mape_spread"] = _positive(raw["mape_spread"], "mape_spread")
        out["mape_rel_se"] = _positive(raw["mape_rel_se"], "mape_rel_se", allow_zero=True)
        out["holdout_mean_rel"] = _positive(
            raw["holdout_mean_rel"], "holdout_mean_rel", limit=MAX_MAGNITUDE
        )
    return out


def relative_errors(
    estimated: npt.NDArray[np.float64], predicted: npt.NDArray[np.float64]
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_]]:
    """``r = a / |prediction|`` where it exists, and where (a mask over the rows): the
    prediction finite and at least ``EPSILON`` in size (as ``metrics.regression_metrics``
    bounds ``|y|``), ``a`` finite, and ``r`` at most ``MAX_RELATIVE``. ``a`` clipped at 0."""
    size = np.abs(predicted)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        r = np.maximum(estimated, 0.0) / size
    usable = np.isfinite(size) & (size >= EPSILON) & np.isfinite(r) & (r <= MAX_RELATIVE)
    return r[usable], usable


def loss_constants(
    errors: npt.ArrayLike,
    estimated: npt.ArrayLike,
    actual: npt.ArrayLike | None = None,
    predicted: npt.ArrayLike | None = None,
) -> dict[str, float] | None:
    """DLE's holdout constants from true errors and out-of-fold estimated absolute errors
    (``a``, clipped at 0); None when they cannot scale anything (all zero). With the holdout's
    targets and predictions, MAPE's too (``mape_constants``), when they can be had."""
    e = np.abs(np.asarray(errors, dtype=np.float64))
    a = np.maximum(np.asarray(estimated, dtype=np.float64), 0.0)
    s1, s2, s4 = float(a.sum()), float((a**2).sum()), float((a**4).sum())
    if not (s1 > 0 and s2 > 0 and s4 > 0 and math.isfinite(s4)):
        return None
    mae_ratio = float(e.sum()) / s1
    mse_ratio = float((e**2).sum()) / s2
    mae_resid = float(((e - mae_ratio * a) ** 2).sum())
    mse_resid = float(((e**2 - mse_ratio * a**2) ** 2).sum())
    out = {
        "mae_ratio": mae_ratio,
        "mse_ratio": mse_ratio,
        "mae_spread": mae_resid / s2,
        "mse_spread": mse_resid / s4,
        "mae_rel_se": math.sqrt(mae_resid) / (mae_ratio * s1) if mae_ratio > 0 else 0.0,
        "mse_rel_se": math.sqrt(mse_resid) / (mse_ratio * s2) if mse_ratio > 0 else 0.0,
    }
    if not all(math.isfinite(v) and 0 <= v <= MAX_SPREAD for v in out.values()):
        return None
    out |= {"holdout_mean": s1 / a.size, "holdout_mean_sq": s2 / a.size}
    if out["mae_ratio"] <= 0 or out["mse_ratio"] <= 0:
        return None
    if actual is not None and predicted is not None:
        out |= mape_constants(e, a, actual, predicted) or {}
    return out


def mape_constants(
    errors: npt.NDArray[np.float64],
    estimated: npt.NDArray[np.float64],
    actual: npt.ArrayLike,
    predicted: npt.ArrayLike,
) -> dict[str, float] | None:
    """MAPE's holdout constants over the rows that give ``r`` (``relative_errors``): true
    relative errors ``|e| / max(|y|, EPSILON)`` (as ``metrics.regression_metrics``) against
    ``r``; None when they cannot scale anything or are out of range (a target of 0 on the
    holdout makes its true relative error ~1e16: no MAPE estimate, MAE and RMSE stay)."""
    y = np.asarray(actual, dtype=np.float64)
    r, usable = relative_errors(estimated, np.asarray(predicted, dtype=np.float64))
    true_rel = errors[usable] / np.maximum(np.abs(y[usable]), EPSILON)
    s1, s2 = float(r.sum()), float((r**2).sum())
    if not (s1 > 0 and s2 > 0 and math.isfinite(s2) and np.isfinite(true_rel).all()):
        return None
    ratio = float(true_rel.sum()) / s1
    resid = float(((true_rel - ratio * r) ** 2).sum())
    out = {
        "mape_ratio": ratio,
        "mape_spread": resid / s2,
        "mape_rel_se": math.sqrt(resid) / (ratio * s1) if ratio > 0 else 0.0,
    }
    if not (all(math.isfinite(v) and 0 <= v <= MAX_SPREAD for v in out.values()) and ratio > 0):
        return None
    return out | {"holdout_mean_rel": s1 / r.size}


# ----------------------------------------------------------------------------- estimates


@dataclass(frozen=True)
class Estimate:
    """One estimated metric over some rows, with a two-sided 95 % interval."""

    metric: str
    value: float
    low: float
    high: float
    rows: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "value": self.value,
            "low": self.low,
            "high": self.high,
            "rows": self.rows,
        }


def cbpe(calibration: Calibration, counts: Mapping[str, Sequence[int]]) -> list[Estimate]:
    """Estimated accuracy (normal interval: Poisson-binomial variance plus the calibration's)
    and macro F1 (plug-in from the expected confusion; interval from seeded draws of both
    sources) over rows counted per (predicted class, confidence bin)."""
    c_idx = {c: i for i, c in enumerate(calibration.classes)}
    n = np.zeros((len(c_idx), calibration.bins), dtype=np.float64)
    for c, row in counts.items():
        if c in c_idx:
            n[c_idx[c]] = np.asarray(row, dtype=np.float64)
    rows = int(n.sum())
    if rows == 0:
        return []
    p = np.asarray([calibration.values[c] for c in calibration.classes], dtype=np.float64)
    support = np.asarray([calibration.support[c] for c in calibration.classes], dtype=np.float64)
    cal_var = p * (1 - p) / (support + SHRINK + 1)
    expected = float((n * p).sum())
    variance = float((n * p * (1 - p)).sum() + (n**2 * cal_var).sum())
    sd = math.sqrt(max(variance, 0.0)) / rows
    accuracy = expected / rows
    out = [
        Estimate(
            "accuracy",
            accuracy,
            max(0.0, accuracy - Z_95 * sd),
            min(1.0, accuracy + Z_95 * sd),
            rows,
        )
    ]
    shares = np.zeros((len(c_idx), len(c_idx)), dtype=np.float64)
    for c, row_shares in calibration.error_shares.items():
        for t, share in row_shares.items():
            shares[c_idx[c], c_idx[t]] = share
    point = float(_f1_macro((n * p).sum(axis=1), n.sum(axis=1), shares))
    rng = np.random.default_rng(20261207)
    drawn_p = np.clip(p + rng.standard_normal((_F1_DRAWS, *p.shape)) * np.sqrt(cal_var), 0.0, 1.0)
    hits = rng.binomial(n.astype(np.int64), drawn_p).sum(axis=2).astype(np.float64)
    draws = _f1_macro(hits, n.sum(axis=1), shares)
    low, high = np.quantile(draws, [0.025, 0.975])
    out.append(Estimate("f1_macro", point, float(min(low, point)), float(max(high, point)), rows))
    return out


def _f1_macro(
    hits: npt.NDArray[np.float64], predicted: npt.NDArray[np.float64], shares: Any
) -> Any:
    """Macro F1 of the expected confusion (per row of ``hits``, the last axis being the
    classes): class ``c``'s misses spread over the true classes as on the holdout."""
    false_pos = predicted - hits
    false_neg = false_pos @ shares  # misses of c counted against their true class
    denominator = 2 * hits + false_pos + false_neg
    f1 = np.divide(2 * hits, denominator, out=np.zeros_like(hits), where=denominator > 0)
    return f1.mean(axis=-1)


def dle(
    spec: LossModelSpec,
    count: int,
    s1: float,
    s2: float,
    s4: float,
    *,
    relative: tuple[int, float, float] | None = None,
) -> list[Estimate]:
    """Estimated MAE and RMSE over ``count`` rows whose estimated absolute errors ``a`` sum
    to ``s1``, their squares to ``s2`` and fourth powers to ``s4``, with 95 % intervals; and
    MAPE when the spec has its constants and ``relative`` gives the rows with an estimated
    relative error ``r`` (count, sum of r, sum of r**2)."""
    if count <= 0:
        return []
    mape_estimates = _mape(spec, relative)
    mae = spec.mae_ratio * s1 / count
    mse = spec.mse_ratio * s2 / count
    mae_sd = math.sqrt(spec.mae_spread * s2 / count**2 + (mae * spec.mae_rel_se) ** 2)
    mse_sd = math.sqrt(spec.mse_spread * s4 / count**2 + (mse * spec.mse_rel_se) ** 2)
    # A tree ensemble shrinks toward its training mean: where traffic moved away from the
    # holdout, its estimate moved less than the error did, never more. A share of the move
    # (``EXTRAPOLATION``) widens the interval on the side it moved to, only.
    mae_low, mae_high = _bounds(mae, mae_sd, spec.mae_ratio * spec.holdout_mean)
    mse_low, mse_high = _bounds(mse, mse_sd, spec.mse_ratio * spec.holdout_mean_sq)
    return [
        Estimate("mae", mae, max(0.0, mae_low), mae_high, count),
        Estimate("rmse", math.sqrt(mse), math.sqrt(max(0.0, mse_low)), math.sqrt(mse_high), count),
        *mape_estimates,
    ]


def _mape(spec: LossModelSpec, relative: tuple[int, float, float] | None) -> list[Estimate]:
    """Estimated MAPE, built as MAE is, over the rows that have ``r``; none without them."""
    ratio, spread, rel_se = spec.mape_ratio, spec.mape_spread, spec.mape_rel_se
    at_holdout = spec.holdout_mean_rel
    if relative is None or relative[0] <= 0:
        return []
    if ratio is None or spread is None or rel_se is None or at_holdout is None:
        return []
    n, r1, r2 = relative
    mape = ratio * r1 / n
    sd = math.sqrt(spread * r2 / n**2 + (mape * rel_se) ** 2)
    low, high = _bounds(mape, sd, ratio * at_holdout)
    return [Estimate("mape", mape, max(0.0, low), high, n)]


def _bounds(value: float, sd: float, at_holdout: float) -> tuple[float, float]:
    """A 95 % interval around ``value``, widened away from ``at_holdout`` by the allowance."""
    moved = EXTRAPOLATION * abs(value - at_holdout)
    wide = Z_95 * math.sqrt(sd**2 + moved**2)
    if value >= at_holdout:
        return value - Z_95 * sd, value + wide
    return value - wide, value + Z_95 * sd


# ----------------------------------------------------------------------------- reading


def _list(raw: Any, what: str) -> list[Any]:
    if not isinstance(raw, list):
        raise CalibrationError(f"{what}: expected a list")
    return raw


def _label(raw: Any) -> str:
    if not isinstance(raw, str) or not 0 < len(raw) <= 64:
        raise CalibrationError("classes: short text labels")
    return raw


def _unit(raw: Any, what: str) -> float:
    if type(raw) not in (int, float) or not 0.0 <= float(raw) <= 1.0:
        raise CalibrationError(f"{what}: numbers from 0 to 1, got {str(raw)[:40]}")
    return float(raw)


def _count(raw: Any, what: str) -> int:
    if type(raw) is not int or not 0 <= raw <= 2**53 - 1:
        raise CalibrationError(f"{what}: counts from 0 to 2**53 - 1, got {str(raw)[:40]}")
    return raw


def _positive(raw: Any, what: str, *, allow_zero: bool = False, limit: float = MAX_SPREAD) -> float:
    if type(raw) not in (int, float) or not math.isfinite(raw):
        raise CalibrationError(f"{what}: a finite number, got {str(raw)[:40]}")
    value = float(raw)
    if not (value >= 0 if allow_zero else value > 0) or value > limit:
        raise CalibrationError(f"{what}: {value} is outside (0, {limit:g}]")
    return value


def _is_hex(text: str) -> bool:
    return all(ch in "0123456789abcdef" for ch in text)


def _per_class(
    raw: Any, classes: tuple[str, ...], bins: int, what: str, read: Any
) -> dict[str, tuple[Any, ...]]:
    if not isinstance(raw, Mapping) or set(raw) != set(classes):
        raise CalibrationError(f"{what}: one entry per class")
    out = {}
    for c in classes:
        row = _list(raw[c], what)
        if len(row) != bins:
            raise CalibrationError(f"{what} of class {c!r}: {len(row)} bins, not {bins}")
        out[c] = tuple(read(v, what) for v in row)
    return out


def _shares(raw: Any, classes: tuple[str, ...]) -> dict[str, dict[str, float]]:
    if not isinstance(raw, Mapping) or set(raw) != set(classes):
        raise CalibrationError("error_shares: one entry per class")
    out = {}
    for c in classes:
        row = raw[c]
        if not isinstance(row, Mapping) or not set(row) <= set(classes) - {c} or not row:
            raise CalibrationError(f"error_shares of {c!r}: shares over the other classes")
        shares = {t: _unit(v, "error_shares") for t, v in row.items()}
        if abs(sum(shares.values()) - 1.0) > 1e-6:
            raise CalibrationError(f"error_shares of {c!r} do not add up to 1")
        out[c] = shares
    return out
