"""A window's sketches read through hourly roll-ups, against moto: exact merges, O(hours)
reads once rolled up, late batches folded in, corrupt and foreign objects skipped."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import numpy as np
import pytest

from mlops.adapters import aws
from mlops.adapters.sketch_store import SketchStore, hours_of
from mlops.domain.baseline import build_baseline
from mlops.domain.config import load_config
from mlops.domain.sketch import SketchPlan, build_sketch, merge_all
from mlops.domain.synthetic import conditions_for_month, generate
from tests.conftest import BUCKET, moto_resources

MODEL, VERSION = "house-prices", "3"
T0 = datetime(2026, 11, 28, 0, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def plan() -> SketchPlan:
    config = load_config()
    columns = generate(2000, conditions_for_month(0), seed=1)
    features = {f.name: np.asarray(columns[f.name]) for f in config.features}
    baseline = build_baseline(
        config.features,
        features,
        np.asarray(columns["price"], dtype=np.float64),
        task="regression",
        metrics={},
    )
    return SketchPlan.from_baseline(baseline)


def rows(count: int, seed: int, at: datetime) -> list[dict[str, Any]]:
    columns = generate(count, conditions_for_month(0), seed=seed)
    names = [n for n in columns if n != "price"]
    ts = int(at.timestamp() * 1000)
    return [
        {
            "model": MODEL,
            "version": VERSION,
            "ts": ts + i,
            "inputs": {n: columns[n][i] for n in names},
            "prediction": float(columns["price"][i]),
        }
        for i in range(count)
    ]


@pytest.fixture
def store() -> Iterator[SketchStore]:
    with moto_resources():
        yield SketchStore(BUCKET, aws.client("s3"))


def put_batch(plan: SketchPlan, at: datetime, name: str, batch: list[dict[str, Any]]) -> Any:
    sketch = build_sketch(plan, batch)
    key = f"sketches/model={MODEL}/version={VERSION}/dt={at:%Y-%m-%d}/hour={at:%H}/{name}.json"
    boto3.client("s3").put_object(Bucket=BUCKET, Key=key, Body=json.dumps(sketch.to_dict()))
    return sketch


def test_hours_of_a_window_are_whole_utc_hours() -> None:
    assert hours_of(T0, T0 + timedelta(hours=3)) == [T0 + timedelta(hours=h) for h in range(3)]
    # A window starting mid-hour begins at the next whole hour; the end is exclusive
    assert hours_of(T0 + timedelta(minutes=1), T0 + timedelta(hours=2)) == [T0 + timedelta(hours=1)]
    assert hours_of(T0, T0) == []


def test_a_window_merges_every_batch_exactly_and_then_reads_one_object_per_hour(
    store: SketchStore, plan: SketchPlan
) -> None:
    # Given 3 hours with 4 batches each
    written = []
    for hour in range(3):
        at = T0 + timedelta(hours=hour)
        for b in range(4):
            written.append(put_batch(plan, at, f"b{b}", rows(50, hour * 10 + b, at)))
    # When the window is read the first time
    first = store.window(MODEL, VERSION, T0, T0 + timedelta(hours=3), plan.fingerprint)
    # Then the merge equals merging every batch, and each hour got a roll-up
    assert first.sketch == merge_all(written)
    assert (first.batches, first.objects_read, first.rollups_written) == (12, 12, 3)
    # When it is read again: one roll-up per hour, nothing rewritten, the same sketch
    second = store.window(MODEL, VERSION, T0, T0 + timedelta(hours=3), plan.fingerprint)
    assert second.sketch == first.sketch
    assert (second.objects_read, second.rollups_written) == (3, 0)


def test_a_late_batch_is_folded_into_its_hour(store: SketchStore, plan: SketchPlan) -> None:
    early = put_batch(plan, T0, "a", rows(40, 1, T0))
    store.window(MODEL, VERSION, T0, T0 + timedelta(hours=1), plan.fingerprint)
    late = put_batch(plan, T0, "z-late", rows(40, 2, T0))  # delivered after a retry
    again = store.window(MODEL, VERSION, T0, T0 + timedelta(hours=1), plan.fingerprint)
    assert again.sketch == merge_all([early, late])
    assert (again.objects_read, again.rollups_written) == (2, 1)  # the roll-up + the late one


def test_corrupt_and_foreign_sketches_are_skipped_and_reported(
    store: SketchStore, plan: SketchPlan
) -> None:
    good = put_batch(plan, T0, "good", rows(30, 1, T0))
    s3 = boto3.client("s3")
    prefix = f"sketches/model={MODEL}/version={VERSION}/dt={T0:%Y-%m-%d}/hour={T0:%H}/"
    s3.put_object(Bucket=BUCKET, Key=prefix + "corrupt.json", Body=b"{not json")
    foreign = build_sketch(plan, rows(30, 2, T0)).to_dict() | {"baseline": "another-baseline"}
    s3.put_object(Bucket=BUCKET, Key=prefix + "foreign.json", Body=json.dumps(foreign))
    window = store.window(MODEL, VERSION, T0, T0 + timedelta(hours=1), plan.fingerprint)
    assert window.sketch == good
    reasons = {s["key"].rsplit("/", 1)[1]: s["reason"] for s in window.skipped}
    assert reasons["corrupt.json"].startswith("not a sketch")
    assert reasons["foreign.json"] == "binned on another baseline"
    # And they are not read again: the roll-up lists them as covered
    again = store.window(MODEL, VERSION, T0, T0 + timedelta(hours=1), plan.fingerprint)
    assert (again.sketch, again.objects_read) == (good, 1)


def test_a_corrupt_rollup_is_rebuilt_from_its_batches(store: SketchStore, plan: SketchPlan) -> None:
    good = put_batch(plan, T0, "a", rows(30, 1, T0))
    store.window(MODEL, VERSION, T0, T0 + timedelta(hours=1), plan.fingerprint)
    key = f"sketches/model={MODEL}/version={VERSION}/rollup/dt={T0:%Y-%m-%d}/hour={T0:%H}.json"
    boto3.client("s3").put_object(Bucket=BUCKET, Key=key, Body=b"garbage")
    window = store.window(MODEL, VERSION, T0, T0 + timedelta(hours=1), plan.fingerprint)
    assert window.sketch == good
    assert window.skipped[0]["reason"].startswith("roll-up unreadable")


def test_an_empty_window_has_no_sketch(store: SketchStore, plan: SketchPlan) -> None:
    window = store.window(MODEL, VERSION, T0, T0 + timedelta(hours=2), plan.fingerprint)
    assert window.sketch is None
    assert (window.hours, window.batches, window.rollups_written) == (2, 0, 0)
