"""Labeled predictions, folded hour by hour as labels arrive (DESIGN §5, cost model).

A prediction id is a UUIDv7 (``domain.ids``): it names the hour its capture is stored under.
So a label is joined by reading that one capture hour, once, when the label arrives; the
joined row is kept in the hour's *labeled* document (``labels/model=<m>/<hour>/labeled.json.gz``),
and live quality, the rollout judge and training sets read those documents: O(labels + hours)
per run, never the window's captures again.

``fold`` merges new labels into an hour's labeled rows with ``quality.join``'s rules: one row
per (prediction id, version, variant) (a shadow shares its prediction's id), the last label by
its timestamp wins, and whether a label counts (within ``label_delay`` of its prediction) is
decided when the rows are read, as before. An hour keeps at most ``max_rows`` rows; beyond, new
ones are counted as dropped (a label flood cannot grow a document without bound). A label of
an evaluation or batch prediction (``"source": "evaluation"`` or ``"batch"``) is recognised and
left out: the labeled documents hold live traffic only, so live quality, the rollout judge and
the gate's recent labeled traffic never count a holdout sent through ``/predict`` or a batch.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from mlops.domain.capture import is_live
from mlops.domain.ids import uuid7_ms

LABELS_SCHEMA = 1
MAX_ROWS_PER_HOUR = 200_000
# What a labeled row keeps of its capture row (plus ``actual`` and ``label_ts``).
CAPTURE_FIELDS = (
    "prediction_id",
    "ts",
    "version",
    "variant",
    "inputs",
    "prediction",
    "probabilities",
)


@dataclass(frozen=True)
class Label:
    ts: int  # when it arrived, ms
    actual: Any


def hour_of_ms(ms: int) -> str:
    """The ``dt=YYYY-MM-DD/hour=HH`` partition of a UTC millisecond."""
    return f"{datetime.fromtimestamp(ms / 1000, UTC):dt=%Y-%m-%d/hour=%H}"


def capture_hour(prediction_id: str) -> str | None:
    """The capture partition a (time-ordered) prediction id was stored under, or None."""
    ms = uuid7_ms(prediction_id)
    return None if ms is None else hour_of_ms(ms)


def latest_labels(feedback: Iterable[Mapping[str, Any]], model: str) -> dict[str, Label]:
    """The last label per prediction id of ``model``'s feedback rows (by arrival time)."""
    labels: dict[str, Label] = {}
    for row in feedback:
        pid, ts = row.get("prediction_id"), row.get("ts")
        if row.get("model") != model or not isinstance(pid, str) or not isinstance(ts, int):
            continue
        if pid not in labels or ts >= labels[pid].ts:
            labels[pid] = Label(ts, row.get("actual"))
    return labels


@dataclass(frozen=True)
class Folded:
    rows: list[dict[str, Any]]
    joined: set[str]  # prediction ids that found their capture (evaluation ones included)
    added: int
    updated: int
    dropped: int  # over ``max_rows``
    evaluation: int = 0  # labels of evaluation (or batch) predictions: found, left out


def fold(
    existing: list[dict[str, Any]],
    captures: Iterable[Mapping[str, Any]],
    labels: Mapping[str, Label],
    *,
    max_rows: int = MAX_ROWS_PER_HOUR,
) -> Folded:
    """``existing`` labeled rows of an hour with ``labels`` joined to that hour's ``captures``."""
    rows = [dict(r) for r in existing]
    index = {_key(r): i for i, r in enumerate(rows)}
    joined: set[str] = set()
    evaluation: set[str] = set()
    added = updated = dropped = 0
    for capture in captures:
        pid = capture.get("prediction_id")
        if not isinstance(pid, str) or pid not in labels or not isinstance(capture.get("ts"), int):
            continue
        joined.add(pid)
        if not is_live(capture):  # evaluation or batch: found, left out
            evaluation.add(pid)
            continue
        label = labels[pid]
        key = _key(capture)
        at = index.get(key)
        if at is not None:
            if label.ts >= rows[at]["label_ts"] and (
                label.ts,
                label.actual,
            ) != (rows[at]["label_ts"], rows[at]["actual"]):
                rows[at] = rows[at] | {"actual": label.actual, "label_ts": label.ts}
                updated += 1
            continue
        if len(rows) >= max_rows:
            dropped += 1
            continue
        row = {k: capture[k] for k in CAPTURE_FIELDS if k in capture}
        row |= {"actual": label.actual, "label_ts": label.ts}
        index[key] = len(rows)
        rows.append(row)
        added += 1
    return Folded(rows, joined, added, updated, dropped, len(evaluation))


def as_join_inputs(
    rows: Iterable[Mapping[str, Any]],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Labeled rows as the capture and feedback rows ``quality.join`` (and the rollout judge,
    and ``labeled_traffic.join``) take, so the one join rule decides what counts."""
    captures, feedback = [], []
    for row in rows:
        captures.append({k: row[k] for k in CAPTURE_FIELDS if k in row})
        feedback.append(
            {
                "prediction_id": row["prediction_id"],
                "ts": row["label_ts"],
                "actual": row["actual"],
            }
        )
    return captures, feedback


def _key(row: Mapping[str, Any]) -> tuple[str, str, str]:
    return (str(row.get("prediction_id")), str(row.get("version")), str(row.get("variant")))
