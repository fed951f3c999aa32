"""Batch predictions as capture rows (``"source": "batch"``), in the prediction logger's format.

The batch function writes them to S3 itself, one gzip JSON Lines object per chunk, under the
capture partition of the job's start hour (``captures/model=/version=/dt=/hour=/``, what the
Glue ``captures`` table reads), named ``batch-<job id>-<first row>.jsonl.gz``. Going through
CloudWatch Logs, as ``/predict`` does, would make ingest cost follow rows.

Every row says ``source = batch``: drift sketches, live quality, the rollout judge and labeled
traffic count live rows only (``capture.is_live``), and the traffic readers skip ``batch-``
objects by name, so a label sent for a batch prediction id is never joined to a live verdict.
Prediction ids are UUIDv7 of the job's start (``domain.ids``), as ``/predict`` issues them, so
``/feedback`` accepts a label for one.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from mlops.domain.batch_job import BatchJob
from mlops.domain.capture import BATCH
from mlops.domain.labels import hour_of_ms
from mlops.domain.layout import BATCH_CAPTURE_NAME, capture_prefix
from mlops.domain.scoring import Scores
from mlops.domain.strict_json import finite


def batch_capture_key(job: BatchJob, first_row: int) -> str:
    hour = hour_of_ms(job.started_ms)
    name = f"{BATCH_CAPTURE_NAME}{job.job_id}-{first_row:012d}.jsonl.gz"
    return f"{capture_prefix(job.model, job.model_version)}{hour}/{name}"


def batch_capture_rows(
    job: BatchJob,
    features: Sequence[str],
    columns: dict[str, npt.NDArray[Any]],
    scores: Scores,
    prediction_ids: list[str],
) -> list[dict[str, Any]]:
    """One row per scored prediction (``prediction_id`` first: the traffic reader's fast path
    looks for it there), as ``capture.capture_rows`` makes them from a ``/predict`` line."""
    values = [columns[name].tolist() for name in features]
    inputs = [dict(zip(features, row, strict=True)) for row in zip(*values, strict=True)]
    probabilities = scores.probability_dicts()
    rows = []
    for i, pid in enumerate(prediction_ids):
        row: dict[str, Any] = {
            "prediction_id": pid,
            "request_id": job.job_id,
            "ts": job.started_ms,
            "model": job.model,
            "version": job.model_version,
            "variant": None,
            "inputs": inputs[i],
            "prediction": scores.values[i],
            "latency_ms": None,
        }
        if probabilities is not None:
            row["probabilities"] = probabilities[i]
        row["source"] = BATCH
        rows.append(row)
    return rows


def capture_jsonl(
    job: BatchJob,
    features: Sequence[str],
    columns: dict[str, npt.NDArray[Any]],
    scores: Scores,
    prediction_ids: list[str],
) -> str:
    """``batch_capture_rows`` as JSON Lines, the same objects, a column at a time: each value
    is encoded once per column (a float's ``repr`` is its JSON; a category's JSON is cached),
    then one ``%`` format per row. ``json.dumps`` per row cost half the throughput of scoring."""
    if not _finite(scores):  # a model emitted NaN or infinity: the exact encoder writes null
        rows = batch_capture_rows(job, features, columns, scores, prediction_ids)
        return "".join(json.dumps(_nulled(r), separators=(",", ":")) + "\n" for r in rows)
    fields: list[list[str]] = [prediction_ids]
    fields += [_encoded(columns[name]) for name in features]
    fields.append(_encoded_values(scores.values))
    # Slots are NUL (JSON text never holds a raw one); the rest is escaped for ``%``.
    inputs = ",".join(f"{json.dumps(name)}:\x00" for name in features)
    head = (
        '{"prediction_id":"\x00","request_id":'
        + json.dumps(job.job_id)
        + f',"ts":{int(job.started_ms)},"model":{json.dumps(job.model)}'
        + f',"version":{json.dumps(job.model_version)},"variant":null,"inputs":{{{inputs}}}'
        + ',"prediction":\x00,"latency_ms":null'
    )
    if scores.probabilities is not None:
        keys = [json.dumps(str(c)) for c in scores.classes]
        head += ',"probabilities":{' + ",".join(f"{k}:\x00" for k in keys) + "}"
        fields += [
            list(map(repr, np.round(scores.probabilities[:, j].astype(np.float64), 6).tolist()))
            for j in range(len(keys))
        ]
    head += f',"source":"{BATCH}"}}\n'
    template = head.replace("%", "%%").replace("\x00", "%s")
    return "".join(template % values for values in zip(*fields, strict=True))


def _encoded(column: npt.NDArray[Any]) -> list[str]:
    if column.dtype == np.float64:
        return list(map(repr, column.tolist()))  # validated finite: repr is valid JSON
    return _encoded_values(column.tolist())


def _encoded_values(values: Iterable[Any]) -> list[str]:
    cache: dict[Any, str] = {}
    out = []
    for value in values:
        text = cache.get(value)
        if text is None:
            text = repr(value) if type(value) is float else json.dumps(value)
            cache[value] = text
        out.append(text)
    return out


def _finite(scores: Scores) -> bool:
    numbers = [v for v in scores.values if isinstance(v, float)]
    if numbers and not bool(np.isfinite(np.asarray(numbers)).all()):
        return False
    return scores.probabilities is None or bool(np.isfinite(scores.probabilities).all())


def _nulled(row: dict[str, Any]) -> dict[str, Any]:
    return dict(finite(row))
