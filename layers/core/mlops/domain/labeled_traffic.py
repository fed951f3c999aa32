"""Labeled production traffic: captured predictions joined with their late labels.

The prediction logger stores one flat row per prediction (``capture_rows``) and one per label
(``feedback_rows``). A label may arrive before its capture is stored, for an id this stack
never issued, or more than once (a client corrects a label): the LAST label by its timestamp
wins, and every case is counted so the retrainer can report what it trained on.

Memory is O(labels), not O(traffic): labels are read into a map first, then captures stream
past it and only the labeled ones are kept.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from mlops.domain.config import ModelConfig
from mlops.domain.dataset import Dataset
from mlops.domain.schema import Feature, show_value
from mlops.errors import Problem

MAX_REPORTED = 50


@dataclass(frozen=True)
class LabeledTraffic:
    """The joined rows as a ``Dataset`` (config feature order, sorted by capture time) and
    what happened to every row on the way.

    ``captured``: capture rows read; ``labels``: label rows read; ``joined``: rows in the
    dataset; ``unmatched_labels``: labeled ids with no capture (not stored yet, outside the
    window, or never issued); ``duplicate_labels``: label rows superseded by a later one for
    the same id; ``duplicate_captures``: repeated captures of a labeled id (the first is
    kept); ``dropped``: labeled captures with a feature or the label missing or ill-typed for
    the config; ``malformed_rows``: rows without a prediction id. ``objects_read`` and
    ``corrupt_objects`` are filled in by the reader (``adapters.training_data``).
    ``problems``: the first ``MAX_REPORTED`` reasons, for the retrain report.
    """

    dataset: Dataset
    captured: int
    labels: int
    joined: int
    unmatched_labels: int
    duplicate_labels: int
    duplicate_captures: int
    dropped: int
    malformed_rows: int
    problems: tuple[Problem, ...] = ()
    objects_read: int = 0
    corrupt_objects: int = 0

    def counts(self) -> dict[str, int]:
        """The counts alone (for logs and metrics)."""
        return {k: v for k, v in asdict(self).items() if isinstance(v, int)}


@dataclass(frozen=True)
class _Label:
    ts: int
    order: int
    actual: Any


def join(
    capture_rows: Iterable[Mapping[str, Any]],
    feedback_rows: Iterable[Mapping[str, Any]],
    config: ModelConfig,
) -> LabeledTraffic:
    """Join captures with their labels into training rows for ``config``.

    ``feedback_rows`` is consumed first, entirely; ``capture_rows`` may be a generator (it is
    read once). Rows are typed as ``parse_csv`` types a file: numeric features float64 (finite,
    within declared bounds), categorical features non-empty str, regression targets float64,
    classification targets their label as str (the trained classes are strings).
    """
    problems: list[Problem] = []
    labels, label_rows, duplicate_labels, malformed = _latest_labels(feedback_rows, problems)

    seen: set[str] = set()  # labeled ids whose capture was read (kept or dropped)
    kept: list[tuple[int, str, list[Any], Any]] = []
    captured = duplicate_captures = dropped = 0
    for row in capture_rows:
        pid = row.get("prediction_id")
        if not isinstance(pid, str) or not pid:
            malformed += 1
            _report(problems, "capture", "a row without a prediction id")
            continue
        captured += 1
        label = labels.get(pid)
        if label is None:
            continue
        if pid in seen:  # a repeat is a duplicate, never a second chance for a dropped row
            duplicate_captures += 1
            continue
        seen.add(pid)
        parsed = _training_row(pid, row, label.actual, config, problems)
        if parsed is None:
            dropped += 1
            continue
        kept.append((_timestamp(row.get("ts")), pid, *parsed))

    kept.sort(key=lambda item: (item[0], item[1]))
    dataset = _dataset([(values, target) for _, _, values, target in kept], config)
    return LabeledTraffic(
        dataset=dataset,
        captured=captured,
        labels=label_rows,
        joined=dataset.rows,
        unmatched_labels=len(labels.keys() - seen),
        duplicate_labels=duplicate_labels,
        duplicate_captures=duplicate_captures,
        dropped=dropped,
        malformed_rows=malformed,
        problems=tuple(problems),
    )


def _latest_labels(
    feedback_rows: Iterable[Mapping[str, Any]], problems: list[Problem]
) -> tuple[dict[str, _Label], int, int, int]:
    """The last label per id (by ``ts``, then by arrival), label rows, superseded, malformed."""
    latest: dict[str, _Label] = {}
    rows = duplicates = malformed = 0
    for order, row in enumerate(feedback_rows):
        pid = row.get("prediction_id")
        if not isinstance(pid, str) or not pid or "actual" not in row:
            malformed += 1
            _report(problems, "feedback", "a row without a prediction id or an actual value")
            continue
        rows += 1
        label = _Label(_timestamp(row.get("ts")), order, row["actual"])
        earlier = latest.get(pid)
        if earlier is not None:
            duplicates += 1
            if (earlier.ts, earlier.order) > (label.ts, label.order):
                continue
        latest[pid] = label
    return latest, rows, duplicates, malformed


def _training_row(
    pid: str,
    row: Mapping[str, Any],
    actual: Any,
    config: ModelConfig,
    problems: list[Problem],
) -> tuple[list[Any], Any] | None:
    """Typed feature values and target, or None (the first reason reported)."""
    inputs = row.get("inputs")
    if not isinstance(inputs, Mapping):
        reason = "truncated capture" if row.get("truncated") is True else "no inputs"
        _report(problems, f"prediction {pid}", f"{reason}: the features are unknown")
        return None
    values: list[Any] = []
    for feature in config.features:
        if feature.name not in inputs:
            _report(problems, f"prediction {pid}.{feature.name}", "missing feature")
            return None
        value, problem = _feature_value(inputs[feature.name], feature)
        if problem:
            _report(problems, f"prediction {pid}.{feature.name}", problem)
            return None
        values.append(value)
    target, problem = _target_value(actual, config)
    if problem:
        _report(problems, f"prediction {pid}.{config.target}", problem)
        return None
    return values, target


def _feature_value(value: Any, feature: Feature) -> tuple[Any, str | None]:
    if feature.type == "categorical":
        if isinstance(value, str) and value:
            return value, None
        return None, f"expected a non-empty string, got {show_value(value)}"
    number = _finite(value)
    if number is None:
        return None, f"expected a finite number, got {show_value(value)}"
    if feature.min is not None and number < feature.min:
        return None, f"{number:g} is below the declared min {feature.min:g}"
    if feature.max is not None and number > feature.max:
        return None, f"{number:g} is above the declared max {feature.max:g}"
    return number, None


def _target_value(actual: Any, config: ModelConfig) -> tuple[Any, str | None]:
    if config.task == "regression":
        number = _finite(actual)
        if number is not None:
            return number, None
        return None, f"expected a finite number, got {show_value(actual)}"
    # Classes are trained as strings (CSV cells); an integer label is the same class.
    if isinstance(actual, str) and actual:
        return actual, None
    if _is_int(actual):
        return str(actual), None
    return None, f"expected a class label, got {show_value(actual)}"


def _dataset(rows: list[tuple[list[Any], Any]], config: ModelConfig) -> Dataset:
    """A ``Dataset`` in config order; its sha256 is over the joined content (header, then one
    JSON array per row), so the same labeled traffic gives the same digest."""
    digest = hashlib.sha256()
    digest.update(json.dumps([*config.feature_names, config.target]).encode() + b"\n")
    for values, target in rows:
        digest.update(json.dumps([*values, target], allow_nan=False).encode() + b"\n")
    columns = {
        f.name: np.asarray(
            [values[i] for values, _ in rows],
            dtype=np.float64 if f.type == "numeric" else object,
        )
        for i, f in enumerate(config.features)
    }
    target = np.asarray(
        [t for _, t in rows], dtype=np.float64 if config.task == "regression" else object
    )
    return Dataset(columns=columns, target=target, rows=len(rows), sha256=digest.hexdigest())


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _timestamp(value: Any) -> int:
    """A row's ``ts`` (ms); 0, the earliest, if it has none (the logger always writes one)."""
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _finite(value: Any) -> float | None:
    """``value`` as a finite float64, or None (a bool, a string, NaN, beyond float64)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:  # an integer literal beyond float64
        return None
    return number if math.isfinite(number) else None


def _report(problems: list[Problem], where: str, problem: str) -> None:
    if len(problems) < MAX_REPORTED:
        problems.append(Problem(where, problem))
