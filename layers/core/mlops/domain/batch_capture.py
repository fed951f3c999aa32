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

from collections.abc import Sequence
from typing import Any

import numpy.typing as npt

from mlops.domain.batch_job import BatchJob
from mlops.domain.capture import BATCH
from mlops.domain.labels import hour_of_ms
from mlops.domain.layout import BATCH_CAPTURE_NAME, capture_prefix
from mlops.domain.scoring import Scores


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
