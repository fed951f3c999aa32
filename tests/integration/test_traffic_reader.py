"""Captures and feedback of a window, as live quality reads them (moto)."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from mlops.adapters import aws
from mlops.adapters.training_data import TrainingDataStore
from tests.conftest import BUCKET, moto_resources

T0 = datetime(2026, 11, 28, 22, 0, tzinfo=UTC)


def put(key: str, rows: list[dict[str, Any]] | bytes) -> None:
    body = (
        rows
        if isinstance(rows, bytes)
        else gzip.compress("".join(json.dumps(r) + "\n" for r in rows).encode())
    )
    boto3.client("s3").put_object(Bucket=BUCKET, Key=key, Body=body)


@pytest.fixture
def store() -> Iterator[TrainingDataStore]:
    with moto_resources():
        yield TrainingDataStore(BUCKET, aws.client("s3"))


def test_a_window_reads_its_hours_captures_of_each_version_and_the_model_s_feedback(
    store: TrainingDataStore,
) -> None:
    hour = "dt=2026-11-28/hour=22"
    later = "dt=2026-11-29/hour=01"
    put(f"captures/model=m/version=1/{hour}/a.jsonl.gz", [{"prediction_id": "a", "version": "1"}])
    put(f"captures/model=m/version=2/{later}/b.jsonl.gz", [{"prediction_id": "b", "version": "2"}])
    put("captures/model=m/version=2/dt=2026-11-30/hour=00/c.jsonl.gz", [{"prediction_id": "c"}])
    put(f"feedback/{later}/f.jsonl.gz", [{"prediction_id": "a", "model": "m"}, {"model": "other"}])
    put(f"captures/model=m/version=1/{hour}/broken.jsonl.gz", b"not gzip")
    captures, feedback, counts = store.traffic("m", T0, T0 + timedelta(hours=4))
    # Then the window (across midnight) holds both versions' captures, not the later one
    assert sorted(r["prediction_id"] for r in captures) == ["a", "b"]
    assert feedback == [{"prediction_id": "a", "model": "m"}]
    assert counts["corrupt_objects"] == 1
    assert counts["problems"][0]["field"].endswith("broken.jsonl.gz")
    # And one version alone when asked
    only, _, _ = store.traffic("m", T0, T0 + timedelta(hours=4), version="2")
    assert [r["prediction_id"] for r in only] == ["b"]


def test_labeled_only_keeps_just_the_captures_live_quality_can_join(
    store: TrainingDataStore,
) -> None:
    hour = "dt=2026-11-28/hour=22"
    rows = [{"prediction_id": f"p{i}", "version": "1"} for i in range(100)]
    put(f"captures/model=m/version=1/{hour}/a.jsonl.gz", rows)
    put(f"feedback/{hour}/f.jsonl.gz", [{"prediction_id": "p7", "model": "m"}])
    captures, _, _ = store.traffic("m", T0, T0 + timedelta(hours=1), labeled_only=True)
    assert captures == [{"prediction_id": "p7", "version": "1"}]
