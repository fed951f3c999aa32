"""Labels folded into their capture hour, through the real logger's objects on moto: each run
reads only what arrived since the last one, and the window's quality reads one document an
hour (DESIGN §5 cost model)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from mlops.adapters.label_store import LabelStore
from mlops.adapters.training_data import TrainingDataStore
from mlops.domain import quality
from mlops.domain.ids import uuid7s
from mlops.domain.labels import as_join_inputs
from mlops.services.labels import LabelFolder
from tests.conftest import BUCKET, moto_resources
from tests.integration.traffic import MODEL, Traffic

NOW = datetime(2026, 12, 7, 12, 30, tzinfo=UTC)
HOUSE = {"sqft": 1200.0, "location": "riverside"}


@pytest.fixture
def s3() -> Iterator[Any]:
    with moto_resources():
        yield boto3.client("s3")


class Counted:
    """The S3 operations a client made, by name."""

    def __init__(self, s3: Any) -> None:
        self.names: list[str] = []
        s3.meta.events.register(
            "provide-client-params.s3", lambda model, **_: self.names.append(model.name)
        )

    def take(self) -> dict[str, int]:
        counts = {n: self.names.count(n) for n in set(self.names)}
        self.names.clear()
        return counts


def folder(s3: Any, now: list[datetime]) -> LabelFolder:
    return LabelFolder(
        MODEL, TrainingDataStore(BUCKET, s3), LabelStore(BUCKET, s3), clock=lambda: now[0]
    )


def test_a_run_reads_only_the_labels_that_arrived_since_the_last_one(s3: Any) -> None:
    traffic = Traffic.in_bucket(s3)
    now = [NOW]
    # Given 30 hours of predictions, 20 a hour, each hour its own capture objects
    ids = []
    for hour in range(30):
        when = NOW - timedelta(hours=30 - hour)
        ids += traffic.predict(when, [HOUSE] * 20, predictions=[float(hour)] * 20)
    # And labels for a tenth of them arrived an hour ago
    traffic.label(NOW - timedelta(hours=1), dict.fromkeys(ids[::10], 1.0))
    labels = folder(s3, now)
    counted = Counted(s3)
    first = labels.fold(first_hours=96)
    assert (first.labels, first.joined, first.expired, first.unplaceable) == (60, 60, 0, 0)
    # Only the capture hours those labels name were read
    assert first.capture_hours == 30
    counted.take()
    # When the next run finds no new label
    now[0] += timedelta(hours=1)
    second = labels.fold(first_hours=96)
    calls = counted.take()
    # Then it reads no feedback and no capture object: listings of open hours, the state
    assert (second.feedback_objects, second.capture_objects, second.labels) == (0, 0, 0)
    assert calls.get("GetObject", 0) == 1  # the state
    # And a new label batch names one capture hour: that hour alone is read
    traffic.label(now[0] - timedelta(minutes=5), {ids[10]: 2.0})
    third = labels.fold(first_hours=96)
    assert (third.feedback_objects, third.capture_hours, third.updated) == (1, 1, 1)


def test_a_run_folds_once_and_reads_each_labeled_hour_once_and_keeps_nothing_after(
    s3: Any,
) -> None:
    # The drift evaluation and the rollout judge of one invocation share the folder: the
    # judge's fold and reads are the ones the drift evaluation already made
    traffic = Traffic.in_bucket(s3)
    now = [NOW]
    ids = traffic.predict(NOW - timedelta(hours=2), [HOUSE] * 20, predictions=[1.0] * 20)
    traffic.label(NOW - timedelta(hours=1), dict.fromkeys(ids[:5], 1.0))
    labels = folder(s3, now)
    counted = Counted(s3)
    window = (NOW - timedelta(hours=3), NOW)
    with labels.run():
        first = labels.fold(first_hours=24)
        joined, _ = labels.joined(*window, version="1", label_delay_ms=3_600_000 * 24)
        counted.take()
        again = labels.fold(first_hours=48)
        rows, _ = labels.rows(*window)
        assert counted.take() == {}  # not one request
    assert again is first
    assert len(rows) == len(joined.ts) == 5
    # Outside a run nothing is kept: a later label is folded and its hour read anew
    traffic.label(NOW - timedelta(minutes=5), {ids[5]: 2.0})
    later = labels.fold(first_hours=24)
    rows, _ = labels.rows(*window)
    assert (later.labels, len(rows)) == (1, 6)
    assert counted.take().get("GetObject", 0) >= 3  # state, feedback, capture, document


def test_the_window_read_equals_the_join_of_every_capture_and_label(s3: Any) -> None:
    traffic = Traffic.in_bucket(s3)
    now = [NOW]
    ids = []
    for hour in range(12):
        when = NOW - timedelta(hours=12 - hour)
        ids += traffic.predict(when, [HOUSE] * 10, predictions=[float(hour)] * 10)
    traffic.label(NOW - timedelta(hours=3), dict.fromkeys(ids[::3], 1.0))
    labels = folder(s3, now)
    labels.fold(first_hours=24)
    traffic.label(NOW - timedelta(minutes=2), dict.fromkeys(ids[::6], 5.0))  # corrections
    now[0] += timedelta(minutes=20)
    labels.fold(first_hours=24)
    rows, documents = labels.rows(NOW - timedelta(hours=13), NOW + timedelta(hours=1))
    assert documents == 12  # the 12 of the window's 15 hours that hold labeled predictions
    captures, feedback = as_join_inputs(rows)
    store = TrainingDataStore(BUCKET, s3)
    all_captures, all_feedback, _ = store.traffic(
        MODEL, NOW - timedelta(hours=13), NOW + timedelta(hours=1)
    )
    delay = 72 * 3_600_000
    expected = quality.join(all_captures, all_feedback, label_delay_ms=delay)
    got = quality.join(captures, feedback, label_delay_ms=delay)
    # 40 labels; 3 came before their prediction (a label 3 h ago for one 1-2 h ago) and do
    # not count, by the join's own rule
    assert len(got.actuals) == 37
    assert (got.ts, got.predictions, got.actuals) == (
        expected.ts,
        expected.predictions,
        expected.actuals,
    )
    # And the columnar read live quality uses gives the same rows, in the same order
    columnar, hours = labels.joined(
        NOW - timedelta(hours=13), NOW + timedelta(hours=1), version="1", label_delay_ms=delay
    )
    assert hours == 12
    assert (columnar.ts, columnar.predictions, columnar.actuals) == (
        expected.ts,
        expected.predictions,
        expected.actuals,
    )


def test_a_label_before_its_capture_waits_and_an_unknown_id_is_counted(s3: Any) -> None:
    traffic = Traffic.in_bucket(s3)
    now = [NOW]
    labels = folder(s3, now)
    early = uuid7s(int((NOW - timedelta(minutes=10)).timestamp() * 1000), 1)[0]
    traffic.label(
        NOW - timedelta(minutes=5), {early: 3.0, "01234567-89ab-4cde-8f01-23456789abcd": 1.0}
    )
    first = labels.fold(first_hours=24)
    assert (first.joined, first.pending, first.unplaceable) == (0, 1, 1)
    assert first.legacy is True
    # When its capture is stored after the label
    traffic.predict(NOW - timedelta(minutes=10), [HOUSE], ids=[early])
    now[0] += timedelta(minutes=30)
    second = labels.fold(first_hours=24)
    assert (second.joined, second.pending) == (1, 0)
    # And a label whose capture never comes expires after pending_hours
    ghost = uuid7s(int((NOW - timedelta(minutes=1)).timestamp() * 1000), 1)[0]
    traffic.label(now[0], {ghost: 1.0})
    assert labels.fold(first_hours=24).pending == 1
    now[0] += timedelta(hours=4)
    assert labels.fold(first_hours=24).expired == 1


def test_only_the_labeled_rows_of_a_capture_object_are_parsed(s3: Any) -> None:
    traffic = Traffic.in_bucket(s3)
    ids = traffic.predict(NOW - timedelta(hours=1), [HOUSE] * 50)
    store = TrainingDataStore(BUCKET, s3)
    keys = [
        k
        for p in store.version_prefixes(MODEL)
        for k in store.hour_keys(p, f"{NOW - timedelta(hours=1):dt=%Y-%m-%d/hour=%H}")
    ]
    everything, _ = store.rows_of(keys)
    wanted = set(ids[::7])
    some, _ = store.rows_of(keys, ids=wanted)
    assert [r for r in everything if r["prediction_id"] in wanted] == some
    assert len(some) == len(wanted) == 8


def test_a_corrupt_labeled_document_is_replaced_not_fatal(s3: Any) -> None:
    traffic = Traffic.in_bucket(s3)
    now = [NOW]
    ids = traffic.predict(NOW - timedelta(hours=2), [HOUSE] * 3)
    labels = folder(s3, now)
    store = LabelStore(BUCKET, s3)
    hour = f"{NOW - timedelta(hours=2):dt=%Y-%m-%d/hour=%H}"
    s3.put_object(Bucket=BUCKET, Key=store.hour_key(MODEL, hour), Body=b"\x1f\x8bnot gzip")
    traffic.label(NOW - timedelta(minutes=1), dict.fromkeys(ids, 1.0))
    assert labels.fold(first_hours=24).added == 3
    rows, _ = store.hour(MODEL, hour)
    assert len(rows) == 3


def test_a_fold_racing_another_keeps_both_folds_hours_in_the_index(
    s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given two evaluations folding at once: the other writes the state between our read and
    # our write (its hour would never be read again if our write dropped it)
    traffic = Traffic.in_bucket(s3)
    now = [NOW]
    mine = traffic.predict(NOW - timedelta(hours=2), [HOUSE] * 2)
    traffic.label(NOW - timedelta(minutes=3), dict.fromkeys(mine, 1.0))
    store = LabelStore(BUCKET, s3)
    other_hour = f"{NOW - timedelta(hours=5):dt=%Y-%m-%d/hour=%H}"
    put_state = store.put_state
    raced = []

    def racing(model: str, doc: dict[str, Any], etag: str | None) -> None:
        if not raced:
            raced.append(True)
            put_state(model, {"schema": 1, "documents": [other_hour], "folded": {}}, None)
        put_state(model, doc, etag)

    monkeypatch.setattr(store, "put_state", racing)
    labels = LabelFolder(MODEL, TrainingDataStore(BUCKET, s3), store, clock=lambda: now[0])
    summary = labels.fold(first_hours=24)
    # Then our write lost the race, merged, and both hours are in the index
    assert summary.conflicts == 1
    state, _ = LabelStore(BUCKET, s3).state(MODEL)
    mine_hour = f"{NOW - timedelta(hours=2):dt=%Y-%m-%d/hour=%H}"
    assert set(state["documents"]) == {mine_hour, other_hour}
