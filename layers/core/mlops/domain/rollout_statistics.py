"""What a rollout's traffic measures, per variant and between them: the labeled sample each
variant's quality is compared on (labels joined as ``quality.join`` joins them), latency
quantiles, the share of paired predictions that disagree and the PSI of the candidate's
predictions against production's. The rules that act on these are ``domain.rollout_policy``'s.

numpy only and pure, as ``domain.rollout``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from mlops.domain import serving
from mlops.domain.comparison import Sample
from mlops.domain.drift_statistics import psi
from mlops.domain.serving import Serving, is_number, usable_prediction

FloatArray = npt.NDArray[np.float64]

PSI_BINS = 10  # prediction PSI: on production's deciles
MIN_PSI_ROWS = 100  # per variant; fewer and the PSI is noise (9 bins x (1/n + 1/m))
DISAGREEMENT_RTOL = 0.01  # regression: |c - p| > 1% of max(|p|, median |p|)
_FLOAT = frozenset({float})


@dataclass(frozen=True)
class Traffic:
    """One variant's capture rows, read in one pass."""

    rows: int
    predictions: int  # rows with a usable prediction
    failed: int  # production rows whose candidate failed
    answers: dict[int, Any]  # usable predictions by prediction id hash (a bottom-K sample)
    latency: FloatArray  # one per request (a bottom-K sample)
    sample: Sample


def latest_labels(feedback: Sequence[Mapping[str, Any]]) -> dict[str, tuple[int, Any]]:
    """The last label per prediction id (feedback can be corrected), as ``quality.join``."""
    labels: dict[str, tuple[int, Any]] = {}
    for row in feedback:
        pid, ts = row.get("prediction_id"), row.get("ts")
        if not isinstance(pid, str) or not isinstance(ts, int):
            continue
        if pid not in labels or ts >= labels[pid][0]:
            labels[pid] = (ts, row.get("actual"))
    return labels


def labeled_sample(
    rows: Sequence[Mapping[str, Any]],
    labels: Mapping[str, tuple[int, Any]],
    *,
    task: str,
    scores: Callable[[Any, Any], Any] | None,
    delay_ms: int,
) -> Sample:
    """One variant's labeled predictions, in one pass over its rows. Labels are joined by
    ``quality.join``'s rule: a label counts only if it came within ``delay_ms`` after the
    prediction, and a prediction is counted once (``quality.join`` itself would rebuild the
    labels per variant and read the rows again)."""
    usable = usable_prediction(task)
    joined: set[str] = set()
    sample = Sample([], [], [], [])
    for row in rows:
        pid, prediction = row.get("prediction_id"), row.get("prediction")
        if not isinstance(pid, str):
            continue
        label = labels.get(pid)
        if label is None or pid in joined:
            continue
        ts = row.get("ts")
        if not isinstance(ts, int) or not 0 <= label[0] - ts <= delay_ms:
            continue
        joined.add(pid)
        actual = label[1]
        if not usable(prediction) or not usable(actual):
            continue
        score = None if scores is None else scores(row.get("probabilities"), actual)
        if scores is not None and score is None:
            continue
        sample.ids.append(pid)
        sample.predictions.append(prediction)
        sample.actuals.append(actual)
        sample.scores.append(score)
    if scores is not None and sample.ids:
        finite = np.isfinite(np.asarray(sample.scores, dtype=np.float64))
        keep = finite if finite.ndim == 1 else np.all(finite, axis=1)
        if not np.all(keep):
            sample = sample.take(np.flatnonzero(keep).tolist())
    return sample


def labels_since(ids: Sequence[str], rows: Sequence[Mapping[str, Any]], since_ms: int) -> int:
    """How many of the labeled ``ids`` name a row predicted at or after ``since_ms`` (a
    ramp's step counts its own labels)."""
    recent = {
        row.get("prediction_id")
        for row in rows
        if isinstance(row.get("ts"), int) and row["ts"] >= since_ms
    }
    return sum(1 for pid in ids if pid in recent)


def digest(rows: Sequence[Mapping[str, Any]], task: str) -> Serving:
    """All of one version's rows as one digest, whatever their variants."""
    return serving.merge(serving.build(rows, task=task).values()) if rows else serving.EMPTY


def pair(production: Sample, candidate: Sample) -> tuple[Sample, Sample]:
    """The labeled predictions both variants answered, in the same order."""
    position = {pid: i for i, pid in enumerate(candidate.ids)}
    prod_index = [i for i, pid in enumerate(production.ids) if pid in position]
    return production.take(prod_index), candidate.take(
        [position[production.ids[i]] for i in prod_index]
    )


def percentile(values: FloatArray, q: float) -> float | None:
    return float(np.percentile(values, q)) if values.size else None


def disagreement(task: str, production: Traffic, candidate: Traffic) -> tuple[float | None, int]:
    """Share of the predictions both variants answered (same prediction id) that differ."""
    pairs = [
        (p, candidate.answers[pid])
        for pid, p in production.answers.items()
        if pid in candidate.answers
    ]
    if not pairs:
        return None, 0
    if task == "classification":
        differ = sum(1 for p, c in pairs if str(p) != str(c))
        return differ / len(pairs), len(pairs)
    prod = np.asarray([p for p, _ in pairs], dtype=np.float64)
    cand = np.asarray([c for _, c in pairs], dtype=np.float64)
    # As the export parity rule: relative to the output's scale, not to a prediction near 0.
    scale = np.maximum(np.abs(prod), float(np.median(np.abs(prod))))
    return float(np.mean(np.abs(cand - prod) > DISAGREEMENT_RTOL * scale)), len(pairs)


def prediction_psi(task: str, production: Traffic, candidate: Traffic) -> float | None:
    """PSI of the candidate's predictions against production's, on production's deciles."""
    if task != "regression":
        return None
    prod = np.fromiter(production.answers.values(), dtype=np.float64)
    cand = np.fromiter(candidate.answers.values(), dtype=np.float64)
    if prod.size < MIN_PSI_ROWS or cand.size < MIN_PSI_ROWS:
        return None
    edges = np.unique(np.quantile(prod, np.linspace(0, 1, PSI_BINS + 1)[1:-1]))
    bins = len(edges) + 1
    return psi(
        np.bincount(np.searchsorted(edges, prod, side="right"), minlength=bins),
        np.bincount(np.searchsorted(edges, cand, side="right"), minlength=bins),
    )


def score_reader(metric: str, keys: list[str]) -> Callable[[Any, Any], Any] | None:
    """What a labeled row's probabilities must give the metric, as ``(probabilities, actual)
    -> floats | None`` (None: the row is not usable): the label's probability for log_loss (0
    for a label the model never saw, as ``metrics``), every class's for roc_auc. Floats pass
    on their type alone, this runs on every labeled row; ``labeled_sample`` drops non-finite
    ones in bulk."""
    if metric == "log_loss":
        known = frozenset(keys)

        def of_label(probabilities: Any, actual: Any) -> float | None:
            if not isinstance(probabilities, Mapping):
                return None
            text = str(actual)
            value = probabilities.get(text, 0.0) if text in known else 0.0
            if type(value) is float:
                return value
            return float(value) if is_number(value) else None

        return of_label
    if metric == "roc_auc":
        absent = (0.0,) * len(keys)

        def of_classes(probabilities: Any, actual: Any) -> tuple[float, ...] | None:
            if not isinstance(probabilities, Mapping):
                return None
            # A tuple of floats: the garbage collector stops tracking it (a list it would scan)
            values = tuple(map(probabilities.get, keys, absent))
            if _FLOAT.issuperset(map(type, values)):
                return values
            if all(map(is_number, values)):
                return tuple(float(v) for v in values)
            return None

        return of_classes
    return None
