"""Two models' metric on labeled rows, with a bootstrap interval of the relative change.

The statistics behind the candidate gate (challenger against champion on the same rows: a
paired comparison) and the rollout judge (shadow: paired; canary: two independent samples).
``compare`` returns the metric of each, ``(candidate - production) / |production|`` and its
percentile bootstrap interval at ``confidence``.

Every metric but ROC-AUC is a function of means of per-row values (squared and absolute
errors, correct answers, log losses, per-class true/false positive and false negative
indicators for macro F1, and the target's first two moments for R²), so a resample is a vector
of draw counts and its means one matrix product (2,000 resamples). Over
``MAX_BOOTSTRAP_UNITS`` rows, rows are summed into that many random groups first and the groups
resampled: every row still counts, the interval is that of the mean of iid groups, and the
cost is bounded (100k rows per variant: 0.2-0.35 s of one core). ROC-AUC needs ranks: rows are
sorted by score once and each resample's Mann-Whitney U is sums over runs of equal scores; its
resamples are drawn from a random ``RANKED_MAX_ROWS`` rows per variant (the point value uses
all), which ``sampling`` says.

numpy only and pure: it runs in the gate and evaluator functions, without scipy.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import numpy.typing as npt

from mlops.domain.metrics import EPSILON

FloatArray = npt.NDArray[np.float64]

RESAMPLES = 2_000
MAX_BOOTSTRAP_UNITS = 5_000  # beyond, labels are summed into this many random groups
RANKED_MAX_ROWS = 5_000  # ROC-AUC resamples: from a random subsample this big per variant
RANKED_BUDGET = 10_000_000  # ROC-AUC: resamples x rows x curves (binary: 1; else a class each)
MIN_RESAMPLES = 200  # many classes (macro F1): fewer resamples, not fewer than this
COST_BUDGET = 4e8  # resamples x units x columns, ~0.5 s of matrix products
_CHUNK = 128  # resamples drawn at once: a chunk's weights hold _CHUNK x units floats
MAX_RELATIVE = 1e3  # a relative change is capped here (production's metric at or near 0)


@dataclass(frozen=True)
class Comparison:
    """Candidate against production on the same kind of labeled rows. ``relative_change`` is
    ``(candidate - production) / |production|`` (negative is better for rmse, positive for
    accuracy); ``ci_low``/``ci_high`` its bootstrap interval at ``confidence``. ``paired``:
    the same rows for both (a shadow, the gate). ``sampling`` says what was resampled."""

    metric: str
    greater_is_better: bool
    production: float | None
    candidate: float | None
    relative_change: float | None
    ci_low: float | None
    ci_high: float | None
    confidence: float
    paired: bool
    production_labels: int
    candidate_labels: int
    tolerance: float
    resamples: int
    sampling: str

    @property
    def degradation(self) -> tuple[float | None, float | None, float | None]:
        """(point, low, high) of the relative change in the metric's bad direction."""
        if self.greater_is_better:
            return _negate(self.relative_change), _negate(self.ci_high), _negate(self.ci_low)
        return self.relative_change, self.ci_low, self.ci_high

    def as_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "greater_is_better": self.greater_is_better,
            "production": finite_or_none(self.production),
            "candidate": finite_or_none(self.candidate),
            "relative_change": finite_or_none(self.relative_change),
            "ci_low": finite_or_none(self.ci_low),
            "ci_high": finite_or_none(self.ci_high),
            "confidence": finite_or_none(self.confidence),
            "paired": self.paired,
            "labels": {"production": self.production_labels, "candidate": self.candidate_labels},
            "tolerance": finite_or_none(self.tolerance),
            "resamples": self.resamples,
            "sampling": self.sampling,
        }


@dataclass(frozen=True)
class Sample:
    """Labeled predictions whose prediction and label are usable, with what the metric needs
    of the probabilities (``scores``: the label's probability for log_loss, every class's for
    roc_auc, else None)."""

    ids: list[str]
    predictions: list[Any]
    actuals: list[Any]
    scores: list[Any]

    def take(self, index: Sequence[int]) -> Sample:
        return Sample(
            [self.ids[i] for i in index],
            [self.predictions[i] for i in index],
            [self.actuals[i] for i in index],
            [self.scores[i] for i in index],
        )

    @classmethod
    def of_outputs(
        cls,
        metric: str,
        values: Sequence[Any],
        actuals: Sequence[Any],
        probabilities: npt.ArrayLike | None = None,
        classes: Sequence[Any] = (),
    ) -> Sample:
        """A model's outputs on labeled rows (a probability column per class, in ``classes``
        order): the gate's samples, where every row was answered by both models."""
        scores: list[Any] = [None] * len(values)
        if probabilities is not None and metric in ("log_loss", "roc_auc"):
            proba = np.asarray(probabilities, dtype=np.float64)
            if metric == "roc_auc":
                scores = [tuple(row) for row in proba.tolist()]
            else:  # the label's probability; 0 for a label the model never saw
                column = {str(c): i for i, c in enumerate(classes)}
                scores = [
                    float(proba[i, column[str(a)]]) if str(a) in column else 0.0
                    for i, a in enumerate(actuals)
                ]
        return cls([str(i) for i in range(len(values))], list(values), list(actuals), scores)


def compare(
    production: Sample,
    candidate: Sample,
    *,
    task: str,
    classes: Sequence[Any],
    metric: str,
    greater_is_better: bool,
    paired: bool,
    confidence: float,
    tolerance: float,
    rng: np.random.Generator,
    resamples: int = RESAMPLES,
) -> Comparison:
    """At most ``resamples`` bootstrap resamples (fewer when the cost budget says so)."""
    n_prod, n_cand = len(production.ids), len(candidate.ids)
    empty = Comparison(
        metric=metric,
        greater_is_better=greater_is_better,
        production=None,
        candidate=None,
        relative_change=None,
        ci_low=None,
        ci_high=None,
        confidence=confidence,
        paired=paired,
        production_labels=n_prod,
        candidate_labels=n_cand,
        tolerance=tolerance,
        resamples=0,
        sampling="no labeled predictions on one side" if min(n_prod, n_cand) == 0 else "",
    )
    if min(n_prod, n_cand) == 0:
        return empty
    if metric == "roc_auc":
        prod_stats, cand_stats, resamples, sampling = _bootstrap_ranked(
            classes, production, candidate, paired, rng, most=resamples
        )
    else:
        prod_stats, cand_stats, resamples, sampling = _bootstrap_means(
            production, candidate, task=task, metric=metric, paired=paired, rng=rng,
            most=resamples,
        )  # fmt: skip
    prod_value, cand_value = prod_stats[0], cand_stats[0]  # row 0: the whole sample
    if not (math.isfinite(prod_value) and math.isfinite(cand_value)):
        return replace(
            empty, sampling=f"{metric} undefined on this sample (e.g. a class never labeled)"
        )
    change = _relative(np.asarray([cand_value]), np.asarray([prod_value]))[0]
    ci_low = ci_high = None
    if min(n_prod, n_cand) >= 2 and resamples:
        changes = _relative(cand_stats[1:], prod_stats[1:])
        changes = changes[np.isfinite(changes)]
        if changes.size >= resamples // 2:  # else too many resamples had no value
            tail = (1 - confidence) / 2
            ci_low, ci_high = (float(q) for q in np.quantile(changes, [tail, 1 - tail]))
    return replace(
        empty,
        production=float(prod_value),
        candidate=float(cand_value),
        relative_change=float(change),
        ci_low=ci_low,
        ci_high=ci_high,
        resamples=resamples,
        sampling=sampling,
    )


def _bootstrap_means(
    production: Sample,
    candidate: Sample,
    *,
    task: str,
    metric: str,
    paired: bool,
    rng: np.random.Generator,
    most: int = RESAMPLES,
) -> tuple[FloatArray, FloatArray, int, str]:
    """The metric of each variant on the whole sample (index 0) and on each resample."""
    prod_values = _row_values(task, metric, production)
    cand_values = _row_values(task, metric, candidate)
    statistic = _STATISTICS[metric]
    n_prod, n_cand = len(prod_values), len(cand_values)
    units = min(max(n_prod, n_cand), MAX_BOOTSTRAP_UNITS)
    columns = prod_values.shape[1] + cand_values.shape[1]
    resamples = max(MIN_RESAMPLES, min(most, int(COST_BUDGET / (units * columns))))
    if paired:
        means = _resampled_means(np.hstack([prod_values, cand_values]), resamples, rng)
        split = prod_values.shape[1]
        prod_means, cand_means = means[:, :split], means[:, split:]
    else:
        prod_means = _resampled_means(prod_values, resamples, rng)
        cand_means = _resampled_means(cand_values, resamples, rng)
    sizes = f"{n_cand:,} paired labels" if paired else f"{n_prod:,} + {n_cand:,} labels"
    sampling = f"{'paired' if paired else 'independent'} bootstrap of {sizes}"
    if max(n_prod, n_cand) > MAX_BOOTSTRAP_UNITS:
        sampling += (
            f", summed into {MAX_BOOTSTRAP_UNITS:,} random groups per variant (every label counts)"
        )
    return statistic(prod_means), statistic(cand_means), resamples, sampling


def _resampled_means(values: FloatArray, resamples: int, rng: np.random.Generator) -> FloatArray:
    """Column means of ``values`` (rows x columns): the whole sample's, then ``resamples``
    bootstrap resamples' ((1 + resamples) x columns). A resample is a vector of draw counts,
    so its means are one matrix product; over ``MAX_BOOTSTRAP_UNITS`` rows, random groups of
    rows are the units drawn (their sums and sizes), which bounds the cost."""
    n, width = values.shape
    if n > MAX_BOOTSTRAP_UNITS:
        group = rng.permutation(n) % MAX_BOOTSTRAP_UNITS
        sums: FloatArray = np.column_stack(
            [
                np.bincount(group, weights=values[:, j], minlength=MAX_BOOTSTRAP_UNITS)
                for j in range(width)
            ]
        )
        sizes: FloatArray = np.bincount(group, minlength=MAX_BOOTSTRAP_UNITS).astype(np.float64)
    else:
        sums, sizes = values, np.ones(n)
    units = len(sizes)
    out = np.empty((resamples + 1, width))
    out[0] = values.mean(axis=0)
    for start in range(0, resamples, _CHUNK):
        weights = _draw_counts(rng, min(_CHUNK, resamples - start), units)
        out[1 + start : 1 + start + len(weights)] = (weights @ sums) / (weights @ sizes)[:, None]
    return out


def _draw_counts(rng: np.random.Generator, resamples: int, units: int) -> FloatArray:
    """How many times each unit is drawn in each of ``resamples`` bootstrap resamples."""
    # int32 draws: a third faster than int64, and the bulk of the cost
    draws = rng.integers(0, units, size=(resamples, units), dtype=np.int32)
    draws += (units * np.arange(resamples, dtype=np.int32))[:, None]  # one bincount for all
    counts = np.bincount(draws.ravel(), minlength=resamples * units)
    return counts.reshape(resamples, units).astype(np.float64)


def _row_values(task: str, metric: str, sample: Sample) -> FloatArray:
    """Per-row values whose means the metric is a function of (``_STATISTICS``), so it agrees
    with ``metrics.regression_metrics``/``classification_metrics`` on the whole sample."""
    if task == "regression":
        y = np.asarray(sample.actuals, dtype=np.float64)
        error = np.asarray(sample.predictions, dtype=np.float64) - y
        if metric == "rmse":
            return (error**2)[:, None]
        if metric == "mae":
            return np.abs(error)[:, None]
        if metric == "mape":
            return (np.abs(error) / np.maximum(np.abs(y), EPSILON))[:, None]
        centred = y - y.mean()  # R² from moments: centred once, so no cancellation
        moments: FloatArray = np.column_stack([error**2, centred, centred**2])
        return moments
    actual = np.asarray([str(v) for v in sample.actuals])
    predicted = np.asarray([str(v) for v in sample.predictions])
    if metric == "accuracy":
        correct: FloatArray = (actual == predicted).astype(np.float64)
        return correct[:, None]
    if metric == "log_loss":
        picked = np.asarray(sample.scores, dtype=np.float64)  # the label's probability
        return (-np.log(np.clip(picked, EPSILON, 1.0 - EPSILON)))[:, None]
    labels = np.union1d(actual, predicted)  # f1_macro: tp, fp, fn indicators per label
    is_actual = actual[:, None] == labels[None, :]
    is_predicted = predicted[:, None] == labels[None, :]
    return np.hstack(
        [is_actual & is_predicted, is_predicted & ~is_actual, is_actual & ~is_predicted]
    ).astype(np.float64)


def metric_rows(task: str, metric: str, sample: Sample) -> FloatArray:
    """Per-row values (rows x columns) whose column means the metric is a function of (every
    metric but ROC-AUC): what the rollout's sequential test linearises."""
    return _row_values(task, metric, sample)


def metric_statistic(metric: str) -> Callable[[FloatArray], FloatArray]:
    """The metric from rows of column means (``metric_rows``'s)."""
    return _STATISTICS[metric]


def _rmse(means: FloatArray) -> FloatArray:
    return np.sqrt(means[:, 0])


def _mean(means: FloatArray) -> FloatArray:
    return means[:, 0]


def _r2(means: FloatArray) -> FloatArray:
    residual, centred, square = means[:, 0], means[:, 1], means[:, 2]
    total = square - centred**2
    # scikit-learn: a constant target scores 1 if predicted exactly, else 0.
    constant = total <= 1e-12 * square
    exact = np.where(residual == 0, 1.0, 0.0)
    return np.where(constant, exact, 1.0 - residual / np.where(constant, 1.0, total))


def _f1_macro(means: FloatArray) -> FloatArray:
    tp, fp, fn = np.split(means, 3, axis=1)
    denominator = 2 * tp + fp + fn
    present = denominator > 0  # labels seen in the (re)sample, as metrics._f1_macro
    scores = np.divide(2 * tp, denominator, out=np.zeros_like(tp), where=present)
    counted: FloatArray = np.sum(scores, axis=1) / np.maximum(np.sum(present, axis=1), 1)
    return counted


_STATISTICS: dict[str, Callable[[FloatArray], FloatArray]] = {
    "rmse": _rmse,
    "mae": _mean,
    "mape": _mean,
    "r2": _r2,
    "accuracy": _mean,
    "log_loss": _mean,
    "f1_macro": _f1_macro,
}


def _bootstrap_ranked(
    classes: Sequence[Any],
    production: Sample,
    candidate: Sample,
    paired: bool,
    rng: np.random.Generator,
    *,
    most: int = RESAMPLES,
) -> tuple[FloatArray, FloatArray, int, str]:
    """ROC-AUC on the whole sample (index 0) and on resamples: ranks, not means, so no groups;
    the resamples are drawn from a random ``RANKED_MAX_ROWS`` labels per variant at most."""
    labels = [str(c) for c in classes]
    prod_codes, prod_proba = _ranked(production, labels)
    cand_codes, cand_proba = _ranked(candidate, labels)
    n_prod, n_cand = len(prod_codes), len(cand_codes)
    curves = 1 if len(labels) == 2 else len(labels)
    resamples = max(MIN_RESAMPLES, min(most, RANKED_BUDGET // (curves * RANKED_MAX_ROWS)))
    prod_keep = _subsample(rng, n_prod)
    cand_keep = prod_keep if paired else _subsample(rng, n_cand)
    prod_stats = np.empty(resamples + 1)
    cand_stats = np.empty(resamples + 1)
    prod_stats[0] = _weighted_auc(prod_codes, prod_proba, np.ones((1, n_prod)))[0]
    cand_stats[0] = _weighted_auc(cand_codes, cand_proba, np.ones((1, n_cand)))[0]
    prod_codes, prod_proba = prod_codes[prod_keep], prod_proba[prod_keep]
    cand_codes, cand_proba = cand_codes[cand_keep], cand_proba[cand_keep]
    for start in range(0, resamples, _CHUNK):
        size = min(_CHUNK, resamples - start)
        prod_weights = _draw_counts(rng, size, len(prod_codes))
        cand_weights = prod_weights if paired else _draw_counts(rng, size, len(cand_codes))
        done = slice(1 + start, 1 + start + size)
        prod_stats[done] = _weighted_auc(prod_codes, prod_proba, prod_weights)
        cand_stats[done] = _weighted_auc(cand_codes, cand_proba, cand_weights)
    sizes = f"{n_cand:,} paired labels" if paired else f"{n_prod:,} + {n_cand:,} labels"
    sampling = f"{'paired' if paired else 'independent'} bootstrap of {sizes}"
    if max(n_prod, n_cand) > RANKED_MAX_ROWS:
        sampling += f", the interval from a random {RANKED_MAX_ROWS:,} per variant"
    return prod_stats, cand_stats, resamples, sampling


def _subsample(rng: np.random.Generator, n: int) -> npt.NDArray[np.int64]:
    if n <= RANKED_MAX_ROWS:
        return np.arange(n)
    return np.sort(rng.choice(n, RANKED_MAX_ROWS, replace=False))


def _ranked(sample: Sample, labels: list[str]) -> tuple[npt.NDArray[np.int64], FloatArray]:
    """Label codes (-1: a label not among the classes) and the probability matrix."""
    index = {label: i for i, label in enumerate(labels)}
    codes = np.asarray([index.get(str(a), -1) for a in sample.actuals], dtype=np.int64)
    proba = np.asarray(sample.scores, dtype=np.float64).reshape(len(codes), len(labels))
    return codes, proba


def _weighted_auc(
    codes: npt.NDArray[np.int64], proba: FloatArray, weights: FloatArray
) -> FloatArray:
    """ROC-AUC of each resample (a row of ``weights``: how often each row was drawn), as
    ``metrics.classification_metrics`` computes it: the Mann-Whitney U with ties counted
    half, one-vs-rest macro average beyond two classes, NaN unless every class and only the
    classes are labeled. Rows are sorted by score once; per resample it is sums, not ranks."""
    k = proba.shape[1]
    if k < 2 or len(codes) == 0:
        return np.full(len(weights), math.nan)
    one_hot = (codes[:, None] == np.arange(k)[None, :]).astype(np.float64)
    per_class = weights @ one_hot
    unseen = weights @ (codes < 0).astype(np.float64)
    defined = (unseen == 0) & np.all(per_class > 0, axis=1)
    curves = []
    for c in [1] if k == 2 else range(k):
        order = np.argsort(proba[:, c], kind="mergesort")
        score = proba[order, c]
        starts = np.flatnonzero(np.r_[True, score[1:] != score[:-1]])  # runs of equal scores
        drawn = weights[:, order]
        positive = codes[order] == c
        pos = np.add.reduceat(drawn * positive, starts, axis=1)
        neg = np.add.reduceat(drawn * ~positive, starts, axis=1)
        below = np.cumsum(neg, axis=1) - neg  # negatives scored lower than each run
        u = np.sum(pos * (below + 0.5 * neg), axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            curves.append(u / (np.sum(pos, axis=1) * np.sum(neg, axis=1)))
    auc: FloatArray = np.where(defined, np.mean(curves, axis=0), math.nan)
    return auc


def _relative(candidate: FloatArray, production: FloatArray) -> FloatArray:
    """``(candidate - production) / |production|``, capped at ``MAX_RELATIVE``."""
    with np.errstate(divide="ignore", invalid="ignore"):
        change = (candidate - production) / np.abs(production)
    change = np.where(production == 0, np.sign(candidate - production) * MAX_RELATIVE, change)
    capped: FloatArray = np.clip(change, -MAX_RELATIVE, MAX_RELATIVE)
    return capped


def finite_or_none(value: float | None) -> float | None:
    """JSON holds no NaN or infinity: those are "no value"."""
    if value is None or not math.isfinite(value):
        return None
    return float(value)


def _negate(value: float | None) -> float | None:
    return None if value is None else -value
