"""Where the retrainer's rows come from, in moto's S3: training-data objects read at an exact
version within a size limit, the most recent objects for a window, and labeled traffic joined
from the captures and feedback the prediction logger itself stored."""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import moto.s3.models
import pytest

from mlops.adapters.capture_store import jsonl_gz
from mlops.adapters.training_data import DataObject, TrainingDataStore
from mlops.domain.config import ModelConfig
from mlops.domain.config_document import load_config
from mlops.errors import ConflictError, DataValidationError, NotFoundError, StorageError
from tests.conftest import BUCKET, moto_resources
from tests.integration.traffic import Traffic, ms

MODEL = "house-prices"
PREFIX = "training-data/"
HOUSE = {
    "sqft": 1850,
    "bedrooms": 3,
    "bathrooms": 2,
    "year_built": 1995,
    "lot_size": 5000,
    "distance_to_center": 4.5,
    "interest_rate": 6.5,
    "location": "riverside",
    "property_type": "house",
}


@dataclass
class Calls:
    """The parameters of every S3 call the client under test made, by operation."""

    made: list[tuple[str, dict[str, Any]]]

    def of(self, operation: str) -> list[dict[str, Any]]:
        return [params for name, params in self.made if name == operation]


@pytest.fixture
def s3() -> Iterator[Any]:
    with moto_resources():
        yield boto3.client("s3")


@pytest.fixture
def calls(s3: Any) -> Calls:
    recorded = Calls([])

    def record(params: dict[str, Any], model: Any, **_: Any) -> None:
        recorded.made.append((model.name, dict(params)))

    s3.meta.events.register("provide-client-params.s3", record)
    return recorded


@pytest.fixture
def store(s3: Any) -> TrainingDataStore:
    return TrainingDataStore(BUCKET, s3)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[datetime]:
    """moto stamps LastModified from this clock: ``clock[0] += ...`` moves time."""
    now = [datetime(2024, 5, 1, 12, 0, 0)]  # moto keeps naive UTC times
    monkeypatch.setattr(moto.s3.models, "utcnow", lambda: now[0])
    return now


# --- head and read ------------------------------------------------------------------------


def test_head_of_a_missing_key_is_not_found(store: TrainingDataStore) -> None:
    with pytest.raises(NotFoundError, match=r"s3://test-artifacts/training-data/nope\.csv"):
        store.head(PREFIX + "nope.csv")


def test_head_describes_the_stored_object(s3: Any, store: TrainingDataStore) -> None:
    put = s3.put_object(Bucket=BUCKET, Key=PREFIX + "m1.csv", Body=b"a,b\n1,2\n")
    obj = store.head(PREFIX + "m1.csv")
    assert obj.uri == f"s3://{BUCKET}/{PREFIX}m1.csv"
    assert obj.etag == put["ETag"].strip('"')
    assert '"' not in obj.etag
    assert (obj.size, obj.version_id) == (8, None)  # the bucket is not versioned
    assert datetime.fromisoformat(obj.last_modified).tzinfo is not None


def test_an_object_over_the_limit_is_refused_without_downloading(
    s3: Any, store: TrainingDataStore, calls: Calls
) -> None:
    s3.put_object(Bucket=BUCKET, Key=PREFIX + "big.csv", Body=b"x" * 1000)
    obj = store.head(PREFIX + "big.csv")
    with pytest.raises(DataValidationError) as caught:
        store.read(obj, max_bytes=999)
    assert caught.value.message == f"{obj.uri} is 1000 bytes, over the limit of 999"
    assert [p.field for p in caught.value.details] == ["size"]
    assert calls.of("GetObject") == []


def test_an_object_at_the_limit_is_read(s3: Any, store: TrainingDataStore) -> None:
    s3.put_object(Bucket=BUCKET, Key=PREFIX + "m.csv", Body=b"x" * 1000)
    assert store.read(store.head(PREFIX + "m.csv"), max_bytes=1000) == b"x" * 1000


def test_a_body_longer_than_announced_is_still_refused(s3: Any, store: TrainingDataStore) -> None:
    # Given a description that understates the size (the check before the GET passes)
    s3.put_object(Bucket=BUCKET, Key=PREFIX + "m.csv", Body=b"x" * 1000)
    obj = replace(store.head(PREFIX + "m.csv"), size=10)
    # Then the download stops at the limit
    with pytest.raises(DataValidationError, match="over the limit of 100"):
        store.read(obj, max_bytes=100)


def test_read_returns_the_version_that_was_checked(s3: Any, store: TrainingDataStore) -> None:
    # Given a versioned bucket and a key overwritten after it was checked
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    s3.put_object(Bucket=BUCKET, Key=PREFIX + "m.csv", Body=b"first\n")
    checked = store.head(PREFIX + "m.csv")
    s3.put_object(Bucket=BUCKET, Key=PREFIX + "m.csv", Body=b"second version\n")
    # When it is read
    data = store.read(checked, max_bytes=100)
    # Then the bytes are those of the version checked, which head can also name
    assert checked.version_id is not None
    assert data == b"first\n"
    again = store.head(PREFIX + "m.csv", version_id=checked.version_id)
    assert (again.size, again.etag) == (checked.size, checked.etag)
    assert store.head(PREFIX + "m.csv").size == len(b"second version\n")


def test_an_overwrite_between_head_and_read_is_a_conflict(
    s3: Any, store: TrainingDataStore
) -> None:
    # Given an unversioned bucket: the ETag is all that pins the content
    s3.put_object(Bucket=BUCKET, Key=PREFIX + "m.csv", Body=b"first\n")
    checked = store.head(PREFIX + "m.csv")
    s3.put_object(Bucket=BUCKET, Key=PREFIX + "m.csv", Body=b"other\n")
    with pytest.raises(ConflictError, match=checked.etag):
        store.read(checked, max_bytes=100)


def test_a_key_deleted_between_head_and_read_is_not_found(
    s3: Any, store: TrainingDataStore
) -> None:
    s3.put_object(Bucket=BUCKET, Key=PREFIX + "m.csv", Body=b"first\n")
    checked = store.head(PREFIX + "m.csv")
    s3.delete_object(Bucket=BUCKET, Key=PREFIX + "m.csv")
    with pytest.raises(NotFoundError):
        store.read(checked, max_bytes=100)


def test_a_body_longer_than_its_content_length_is_cut_at_the_limit(
    s3: Any, store: TrainingDataStore
) -> None:
    # Given a response that also understates its length (the body is the last line of defence)
    s3.put_object(Bucket=BUCKET, Key=PREFIX + "m.csv", Body=b"x" * 1000)
    obj = replace(store.head(PREFIX + "m.csv"), size=10)

    def understate(parsed: dict[str, Any], **_: Any) -> None:
        parsed["ContentLength"] = 10

    s3.meta.events.register("after-call.s3.GetObject", understate)
    with pytest.raises(DataValidationError, match="over the limit of 100 bytes"):
        store.read(obj, max_bytes=100)


# --- recent ---------------------------------------------------------------------------------


def put_at(s3: Any, clock: list[datetime], key: str, when: int, body: bytes = b"a\n1\n") -> None:
    clock[0] = datetime(2024, 5, 1, 12, 0, 0) + timedelta(seconds=when)
    s3.put_object(Bucket=BUCKET, Key=key, Body=body)


def test_recent_lists_the_newest_objects_first(
    s3: Any, store: TrainingDataStore, clock: list[datetime]
) -> None:
    # Given objects written in an order unrelated to their names, and things that are not data
    for name, when in [("c.csv", 1), ("a.csv", 4), ("d.csv", 2), ("b.csv", 3), ("e.csv", 5)]:
        put_at(s3, clock, PREFIX + name, when)
    put_at(s3, clock, PREFIX, 9, b"")  # a console "folder"
    put_at(s3, clock, PREFIX + "sub/", 9, b"")
    put_at(s3, clock, PREFIX + "empty.csv", 9, b"")
    put_at(s3, clock, "elsewhere/z.csv", 9)
    # When the three most recent are asked for
    newest = store.recent(PREFIX, 3)
    # Then they come newest first, data objects only, described enough to read them
    assert [o.key for o in newest] == [PREFIX + "e.csv", PREFIX + "a.csv", PREFIX + "b.csv"]
    assert newest[0].last_modified == "2024-05-01T12:00:05+00:00"
    assert store.read(newest[0], max_bytes=100) == b"a\n1\n"


def test_recent_leaves_out_the_excluded_key(
    s3: Any, store: TrainingDataStore, clock: list[datetime]
) -> None:
    for i in range(4):
        put_at(s3, clock, f"{PREFIX}m{i}.csv", i)
    keys = [o.key for o in store.recent(PREFIX, 2, exclude_key=PREFIX + "m3.csv")]
    assert keys == [PREFIX + "m2.csv", PREFIX + "m1.csv"]


def test_recent_with_a_large_limit_returns_everything_and_ties_go_to_the_greater_key(
    s3: Any, store: TrainingDataStore, clock: list[datetime]
) -> None:
    put_at(s3, clock, PREFIX + "x.csv", 1)
    put_at(s3, clock, PREFIX + "y.csv", 1)
    assert [o.key for o in store.recent(PREFIX, 10)] == [PREFIX + "y.csv", PREFIX + "x.csv"]
    assert store.recent(PREFIX, 0) == []


def test_recent_reads_every_page(s3: Any, clock: list[datetime], calls: Calls) -> None:
    # Given more objects than a page holds, the newest listed on the last page
    for i in range(11):
        put_at(s3, clock, f"{PREFIX}m{i:02d}.csv", i)
    store = TrainingDataStore(BUCKET, s3, page_size=3)
    # When the two newest are asked for
    newest = store.recent(PREFIX, 2)
    # Then every page was listed and the newest are found
    assert [o.key for o in newest] == [PREFIX + "m10.csv", PREFIX + "m09.csv"]
    assert len(calls.of("ListObjectsV2")) == 4


# --- labeled traffic ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def config() -> ModelConfig:
    return load_config()


@pytest.fixture
def traffic(s3: Any) -> Traffic:
    return Traffic.in_bucket(s3)


def keys(s3: Any, prefix: str) -> list[str]:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
    return sorted(o["Key"] for page in pages for o in page.get("Contents", []))


MIDNIGHT = datetime(2024, 5, 2, tzinfo=UTC)


def test_labeled_traffic_over_midnight_joins_every_version(
    store: TrainingDataStore, traffic: Traffic, config: ModelConfig
) -> None:
    # Given predictions by two versions either side of midnight, labeled after midnight
    before = traffic.predict(MIDNIGHT - timedelta(minutes=30), [HOUSE, {**HOUSE, "sqft": 900}])
    after = traffic.predict(MIDNIGHT + timedelta(minutes=20), [{**HOUSE, "sqft": 3000}], "2")
    traffic.label(MIDNIGHT + timedelta(minutes=40), {before[0]: 410_000, after[0]: 620_000})
    # When the window [23:00, 00:59] is read
    result = store.labeled_traffic(
        MODEL, MIDNIGHT - timedelta(hours=1), MIDNIGHT + timedelta(minutes=59), config
    )
    # Then both labeled predictions are rows, in capture-time order
    data = result.dataset
    assert data.columns["sqft"].tolist() == [1850.0, 3000.0]
    assert data.target.tolist() == [410_000.0, 620_000.0]
    assert (result.captured, result.labels, result.joined) == (3, 2, 2)
    assert (result.objects_read, result.corrupt_objects) == (3, 0)


def test_objects_outside_the_window_are_neither_read_nor_joined(
    s3: Any, store: TrainingDataStore, traffic: Traffic, config: ModelConfig, calls: Calls
) -> None:
    # Given traffic before, inside and after the window [23:00, 00:59]
    early = traffic.predict(MIDNIGHT - timedelta(hours=3), [HOUSE])
    inside = traffic.predict(MIDNIGHT - timedelta(minutes=10), [HOUSE, HOUSE])
    traffic.label(MIDNIGHT - timedelta(hours=2, minutes=50), {early[0]: 1.0})
    traffic.label(MIDNIGHT + timedelta(minutes=5), {inside[0]: 2.0, early[0]: 3.0})
    traffic.label(MIDNIGHT + timedelta(hours=2), {inside[1]: 4.0})
    calls.made.clear()
    # When the window is read
    result = store.labeled_traffic(
        MODEL, MIDNIGHT - timedelta(hours=1), MIDNIGHT + timedelta(minutes=59), config
    )
    # Then only objects of its hours were fetched, listed by day, never the whole bucket
    fetched = sorted(p["Key"] for p in calls.of("GetObject"))
    listed = {p["Prefix"] for p in calls.of("ListObjectsV2")}
    in_window = [
        k for k in keys(s3, "") if "/dt=2024-05-01/hour=23/" in k or "/dt=2024-05-02/hour=00/" in k
    ]
    assert fetched == in_window
    assert len(fetched) == 2  # one capture object, one feedback object
    assert listed == {
        "feedback/dt=2024-05-01/",
        "feedback/dt=2024-05-02/",
        f"captures/model={MODEL}/",
        f"captures/model={MODEL}/version=1/dt=2024-05-01/",
        f"captures/model={MODEL}/version=1/dt=2024-05-02/",
    }
    # And the label for a capture outside the window is counted, not joined
    assert result.dataset.target.tolist() == [2.0]
    assert (result.labels, result.unmatched_labels, result.captured) == (2, 1, 2)


def test_corrupt_objects_are_skipped_and_counted(
    s3: Any, store: TrainingDataStore, traffic: Traffic, config: ModelConfig
) -> None:
    # Given good traffic and, in its partitions, a broken gzip, a bad JSON line, a non-object
    ids = traffic.predict(MIDNIGHT + timedelta(minutes=1), [HOUSE])
    traffic.label(MIDNIGHT + timedelta(minutes=2), {ids[0]: 5.0})
    hour = "dt=2024-05-02/hour=00"
    bad_gzip = f"captures/model={MODEL}/version=1/{hour}/0bad.jsonl.gz"
    s3.put_object(Bucket=BUCKET, Key=bad_gzip, Body=gzip.compress(b'{"a":1}\n')[:-6])
    bad_line = f"feedback/{hour}/0bad.jsonl.gz"
    s3.put_object(Bucket=BUCKET, Key=bad_line, Body=gzip.compress(b'{"prediction_id":\n'))
    not_objects = f"captures/model={MODEL}/version=2/{hour}/0list.jsonl.gz"
    s3.put_object(Bucket=BUCKET, Key=not_objects, Body=gzip.compress(b"[1, 2]\n"))
    # When the window is read
    result = store.labeled_traffic(MODEL, MIDNIGHT, MIDNIGHT + timedelta(minutes=30), config)
    # Then the good rows are joined and the broken objects named and counted
    assert result.dataset.target.tolist() == [5.0]
    assert (result.objects_read, result.corrupt_objects) == (5, 3)
    assert {p.field for p in result.problems} == {bad_gzip, bad_line, not_objects}


def test_a_gzip_bomb_is_skipped(s3: Any, traffic: Traffic, config: ModelConfig) -> None:
    # Given an object that inflates far beyond what a logger batch can hold
    ids = traffic.predict(MIDNIGHT + timedelta(minutes=1), [HOUSE])
    traffic.label(MIDNIGHT + timedelta(minutes=2), {ids[0]: 5.0})
    key = "feedback/dt=2024-05-02/hour=00/0bomb.jsonl.gz"
    s3.put_object(Bucket=BUCKET, Key=key, Body=gzip.compress(b"\n" * 2_000_000))
    store = TrainingDataStore(BUCKET, s3, max_traffic_object_bytes=1_000_000)
    result = store.labeled_traffic(MODEL, MIDNIGHT, MIDNIGHT + timedelta(minutes=30), config)
    assert result.corrupt_objects == 1
    assert "over 1000000 bytes" in result.problems[0].problem
    assert result.joined == 1


def test_feedback_for_another_model_is_not_counted(
    store: TrainingDataStore, traffic: Traffic, config: ModelConfig
) -> None:
    # Given another model's labels in the shared feedback partition (written as its logger would)
    ids = traffic.predict(MIDNIGHT + timedelta(minutes=1), [HOUSE])
    traffic.label(MIDNIGHT + timedelta(minutes=2), {ids[0]: 5.0})
    other = [{"prediction_id": ids[0], "actual": 9.0, "ts": ms(MIDNIGHT) + 180_000, "model": "x"}]
    traffic.s3.put_object(
        Bucket=BUCKET, Key="feedback/dt=2024-05-02/hour=00/0other.jsonl.gz", Body=jsonl_gz(other)
    )
    result = store.labeled_traffic(MODEL, MIDNIGHT, MIDNIGHT + timedelta(minutes=30), config)
    assert result.dataset.target.tolist() == [5.0]
    assert (result.labels, result.duplicate_labels) == (1, 0)


def test_a_corrected_label_in_a_later_object_wins(
    store: TrainingDataStore, traffic: Traffic, config: ModelConfig
) -> None:
    ids = traffic.predict(MIDNIGHT + timedelta(minutes=1), [HOUSE])
    traffic.label(MIDNIGHT + timedelta(minutes=50), {ids[0]: 7.0})
    traffic.label(MIDNIGHT + timedelta(minutes=2), {ids[0]: 5.0})
    result = store.labeled_traffic(MODEL, MIDNIGHT, MIDNIGHT + timedelta(minutes=59), config)
    assert result.dataset.target.tolist() == [7.0]
    assert result.duplicate_labels == 1


def test_a_window_needs_aware_ordered_bounds(store: TrainingDataStore, config: ModelConfig) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        store.labeled_traffic(MODEL, datetime(2024, 5, 1), datetime(2024, 5, 2), config)
    with pytest.raises(ValueError, match="after"):
        store.labeled_traffic(MODEL, MIDNIGHT, MIDNIGHT - timedelta(hours=1), config)


def test_a_data_object_names_its_uri() -> None:
    obj = DataObject("b", "k/x.csv", None, "e", 1, "2024-05-01T00:00:00+00:00")
    assert obj.uri == "s3://b/k/x.csv"


def test_s3_failures_are_storage_errors(s3: Any, config: ModelConfig) -> None:
    # Given a bucket that does not exist
    store = TrainingDataStore("no-such-bucket", s3)
    with pytest.raises(StorageError, match="cannot list s3://no-such-bucket/training-data/"):
        store.recent(PREFIX, 3)
    with pytest.raises(StorageError):
        store.labeled_traffic(MODEL, MIDNIGHT, MIDNIGHT + timedelta(hours=1), config)


def test_head_of_an_unknown_version_is_not_found(s3: Any, store: TrainingDataStore) -> None:
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    s3.put_object(Bucket=BUCKET, Key=PREFIX + "m.csv", Body=b"a\n")
    s3.put_object(Bucket=BUCKET, Key=PREFIX + "other.csv", Body=b"b\n")
    other = store.head(PREFIX + "other.csv").version_id
    with pytest.raises(NotFoundError, match="version"):
        store.head(PREFIX + "m.csv", version_id=other)
