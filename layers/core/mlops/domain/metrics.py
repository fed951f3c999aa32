"""Model quality metrics in numpy alone.

The candidate gate scores the challenger and the production model with onnxruntime in the
serving runtime, where scikit-learn (and scipy) cannot be shipped; these reproduce
``sklearn.metrics`` (tests compare them on the same data) for the metrics the config names.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

# log_loss clips probabilities as scikit-learn does on float64, so a confident miss is finite.
EPSILON = float(np.finfo(np.float64).eps)


def regression_metrics(y: npt.ArrayLike, predicted: npt.ArrayLike) -> dict[str, float]:
    y = np.asarray(y, dtype=np.float64)
    p = np.asarray(predicted, dtype=np.float64)
    error = p - y
    total = float(np.sum((y - y.mean()) ** 2))
    residual = float(np.sum(error**2))
    # scikit-learn: a constant target scores 1 if predicted exactly, else 0.
    exact = 1.0 if residual == 0 else 0.0
    r2 = 1.0 - residual / total if total > 0 else exact
    scale = np.maximum(np.abs(y), EPSILON)
    return {
        "rmse": float(np.sqrt(np.mean(error**2))),
        "mae": float(np.mean(np.abs(error))),
        "r2": float(r2),
        "mape": float(np.mean(np.abs(error) / scale)),
    }


def classification_metrics(
    y: Sequence[Any] | npt.NDArray[Any],
    predicted: Sequence[Any] | npt.NDArray[Any],
    probabilities: npt.ArrayLike,
    classes: Sequence[Any],
) -> dict[str, float]:
    """``probabilities`` has one column per entry of ``classes``, in that order; labels are
    compared as text (CSV labels are text, a model may answer integers)."""
    labels = [str(c) for c in classes]
    y_text = np.asarray([str(v) for v in y])
    p_text = np.asarray([str(v) for v in predicted])
    proba = np.asarray(probabilities, dtype=np.float64)
    out = {
        "accuracy": float(np.mean(y_text == p_text)),
        "f1_macro": _f1_macro(y_text, p_text),
        "log_loss": _log_loss(y_text, proba, labels),
    }
    if set(y_text.tolist()) == set(labels):  # ROC-AUC needs every class in the holdout
        if len(labels) == 2:
            out["roc_auc"] = roc_auc(y_text == labels[1], proba[:, 1])
        else:  # one-vs-rest, macro average (scikit-learn's multi_class="ovr")
            out["roc_auc"] = float(
                np.mean([roc_auc(y_text == c, proba[:, i]) for i, c in enumerate(labels)])
            )
    return out


def roc_auc(positive: npt.NDArray[np.bool_], score: npt.ArrayLike) -> float:
    """Area under the ROC curve by the rank-sum (Mann-Whitney U) identity, ties averaged."""
    score = np.asarray(score, dtype=np.float64)
    n_pos = int(np.count_nonzero(positive))
    n_neg = len(score) - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = _average_ranks(score)
    u = float(np.sum(ranks[positive])) - n_pos * (n_pos + 1) / 2
    return u / (n_pos * n_neg)


def _average_ranks(values: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    order = np.argsort(values, kind="mergesort")
    sorted_values = values[order]
    # Runs of equal values share the mean of their 1-based positions.
    starts = np.flatnonzero(np.r_[True, sorted_values[1:] != sorted_values[:-1]])
    ends = np.r_[starts[1:], len(values)]
    mean_rank = (starts + ends + 1) / 2.0
    ranks = np.empty(len(values), dtype=np.float64)
    ranks[order] = np.repeat(mean_rank, ends - starts)
    return ranks


def _f1_macro(y: npt.NDArray[Any], predicted: npt.NDArray[Any]) -> float:
    """Macro F1 over the labels present in ``y`` or ``predicted``; 0 where undefined."""
    scores = []
    for label in np.union1d(y, predicted):
        tp = np.count_nonzero((predicted == label) & (y == label))
        fp = np.count_nonzero((predicted == label) & (y != label))
        fn = np.count_nonzero((predicted != label) & (y == label))
        denominator = 2 * tp + fp + fn
        scores.append(2 * tp / denominator if denominator else 0.0)
    return float(np.mean(scores)) if scores else 0.0


def _log_loss(y: npt.NDArray[Any], proba: npt.NDArray[np.float64], labels: list[str]) -> float:
    index = {label: i for i, label in enumerate(labels)}
    rows = np.asarray([index.get(v, -1) for v in y])
    if np.any(rows < 0):  # a label the model has never seen: its probability is 0
        picked = np.where(rows >= 0, proba[np.arange(len(y)), np.maximum(rows, 0)], 0.0)
    else:
        picked = proba[np.arange(len(y)), rows]
    # As scikit-learn (>= 1.5) does: no renormalisation of rows that do not sum to 1, clipped
    # to [eps, 1 - eps]. The float32 ONNX outputs are scored in float64, so a confident miss
    # costs what it costs on scikit-learn's float64 predict_proba (the training-time metric).
    return float(-np.mean(np.log(np.clip(picked, EPSILON, 1.0 - EPSILON))))


def naive_predictions(
    task: str, y: Sequence[Any] | npt.NDArray[Any], classes: Sequence[Any]
) -> tuple[npt.NDArray[Any], npt.NDArray[np.float64] | None]:
    """What a model that ignores its inputs would answer on ``y``'s rows: the mean for
    regression; the majority class with the class shares as probabilities otherwise. The bar
    a first model must clear."""
    if task == "regression":
        target = np.asarray(y, dtype=np.float64)
        return np.full(len(target), target.mean()), None
    labels = [str(c) for c in classes]
    text = [str(v) for v in y]
    shares = np.asarray([text.count(c) for c in labels], dtype=np.float64) / max(len(text), 1)
    majority = labels[int(np.argmax(shares))]
    return np.asarray([majority] * len(text), dtype=object), np.tile(shares, (len(text), 1))
