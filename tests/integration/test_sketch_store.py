"""A window's sketches read through hourly roll-ups, against moto: exact merges, O(hours)
reads once rolled up, late batches folded in, corrupt and foreign objects skipped."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import numpy as np
import pytest

from mlops.adapters import aws
from mlops.adapters.capture_store import CaptureStore
from mlops.adapters.model_store import ModelStore
from mlops.adapters.sketch_store import (
    FINAL_AFTER,
    MAX_ROLLUP_BYTES,
    MAX_SKETCH_BYTES,
    SketchStore,
    SketchWindow,
    hours_of,
)
from mlops.domain import event_set
from mlops.domain.baseline import build_baseline
from mlops.domain.config_document import load_config
from mlops.domain.sketch import Sketch, SketchPlan, build_sketch
from mlops.domain.sketch_merge import merge_all
from mlops.domain.synthetic import conditions_for_month, generate
from mlops.services.prediction_logger import LogEvent, PredictionLoggerService, batch_id
from mlops_cli.emulator.sources.logs import log_event_id
from tests.conftest import BUCKET, moto_resources
from tests.integration.test_prediction_logger import HOUSES, capture_line

MODEL, VERSION = "house-prices", "3"
T0 = datetime(2026, 11, 28, 0, 0, tzinfo=UTC)
NOW = T0 + timedelta(hours=3)  # the hours read are not final yet: late batches may come


@pytest.fixture(scope="module")
def baseline() -> dict[str, Any]:
    config = load_config()
    columns = generate(2000, conditions_for_month(0), seed=1)
    features = {f.name: np.asarray(columns[f.name]) for f in config.features}
    document = build_baseline(
        config.features,
        features,
        np.asarray(columns["price"], dtype=np.float64),
        task="regression",
        metrics={},
    )
    parsed: dict[str, Any] = json.loads(json.dumps(document))  # as the logger reads it
    return parsed


@pytest.fixture(scope="module")
def plan(baseline: dict[str, Any]) -> SketchPlan:
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


def put_batch(
    plan: SketchPlan,
    at: datetime,
    name: str,
    batch: list[dict[str, Any]],
    *,
    events: list[str] | None = None,
    max_unseen: int = 64,
) -> Any:
    """A batch sketch as the logger writes it (``events``: its log event ids, None: the
    document does not list them)."""
    sketch = build_sketch(plan, batch, max_unseen=max_unseen)
    key = f"sketches/model={MODEL}/version={VERSION}/dt={at:%Y-%m-%d}/hour={at:%H}/{name}.json"
    doc = sketch.to_dict()
    if events is not None:
        doc["events"] = event_set.encode(event_set.digests(events))
    boto3.client("s3").put_object(Bucket=BUCKET, Key=key, Body=json.dumps(doc))
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
    first = store.window(MODEL, VERSION, T0, T0 + timedelta(hours=3), plan, now=NOW)
    # Then the merge equals merging every batch, and each hour got a roll-up
    assert first.sketch == merge_all(written)
    assert (first.batches, first.objects_read, first.rollups_written) == (12, 12, 3)
    # When it is read again: one roll-up per hour, nothing rewritten, the same sketch
    second = store.window(MODEL, VERSION, T0, T0 + timedelta(hours=3), plan, now=NOW)
    assert second.sketch == first.sketch
    assert (second.objects_read, second.rollups_written) == (3, 0)


def test_a_late_batch_is_folded_into_its_hour(store: SketchStore, plan: SketchPlan) -> None:
    early = put_batch(plan, T0, "a", rows(40, 1, T0))
    store.window(MODEL, VERSION, T0, T0 + timedelta(hours=1), plan, now=NOW)
    late = put_batch(plan, T0, "z-late", rows(40, 2, T0))  # delivered after a retry
    again = store.window(MODEL, VERSION, T0, T0 + timedelta(hours=1), plan, now=NOW)
    assert again.sketch == merge_all([early, late])
    assert (again.objects_read, again.rollups_written) == (2, 1)  # the roll-up + the late one


def lists(store: SketchStore) -> list[str]:
    """The prefixes ``store`` lists from now on."""
    seen: list[str] = []
    store._s3.meta.events.register(
        "provide-client-params.s3.ListObjectsV2",
        lambda params, **_: seen.append(str(params.get("Prefix"))),
    )
    return seen


@pytest.mark.parametrize(
    ("after_end", "final"),
    [
        (FINAL_AFTER - timedelta(milliseconds=1), False),
        (FINAL_AFTER, True),  # exactly on the bound: no retried delivery can come any more
    ],
)
def test_an_hour_is_final_from_the_loggers_retry_horizon_and_never_listed_again(
    store: SketchStore, plan: SketchPlan, after_end: timedelta, final: bool
) -> None:
    early = put_batch(plan, T0, "a", rows(40, 1, T0))
    at = T0 + timedelta(hours=1) + after_end
    store.window(MODEL, VERSION, T0, T0 + timedelta(hours=1), plan, now=at)
    rollup = json.loads(
        boto3.client("s3")
        .get_object(
            Bucket=BUCKET,
            Key=f"sketches/model={MODEL}/version={VERSION}/rollup/dt=2026-11-28/hour=00.json",
        )["Body"]
        .read()
    )
    assert rollup["final"] is final
    # A fresh reader (another run) of a final hour reads its roll-up and lists nothing
    fresh = SketchStore(BUCKET, boto3.client("s3"))
    listed = lists(fresh)
    later = at + timedelta(hours=1)
    window = fresh.window(MODEL, VERSION, T0, T0 + timedelta(hours=1), plan, now=later)
    assert window.sketch == early
    assert listed == (
        [] if final else [f"sketches/model={MODEL}/version={VERSION}/dt=2026-11-28/hour=00/"]
    )
    # ... and the same reader's next read of it makes no request at all
    before = window.objects_read
    again = fresh.window(MODEL, VERSION, T0, T0 + timedelta(hours=1), plan, now=later)
    assert again.sketch == early
    assert again.objects_read == 0
    assert before == 1


def test_inside_a_run_an_hour_is_read_once_and_after_it_read_again(
    store: SketchStore, plan: SketchPlan
) -> None:
    early = put_batch(plan, T0, "a", rows(40, 1, T0))
    with store.run():
        first = store.window(MODEL, VERSION, T0, T0 + timedelta(hours=1), plan, now=NOW)
        again = store.window(MODEL, VERSION, T0, T0 + timedelta(hours=1), plan, now=NOW)
        assert (first.sketch, again.sketch) == (early, early)
        assert (again.objects_read, again.batches) == (0, 1)  # no request, the same figures
    late = put_batch(plan, T0, "z-late", rows(40, 2, T0))  # an hour not final: may still grow
    after = store.window(MODEL, VERSION, T0, T0 + timedelta(hours=1), plan, now=NOW)
    assert after.sketch == merge_all([early, late])


def test_a_final_hour_without_traffic_is_listed_once(store: SketchStore, plan: SketchPlan) -> None:
    listed = lists(store)
    after = T0 + timedelta(hours=1) + FINAL_AFTER
    for _ in range(2):
        window = store.window(MODEL, VERSION, T0, T0 + timedelta(hours=1), plan, now=after)
        assert window.sketch is None
    assert len(listed) == 1


def test_a_rollup_written_before_the_horizon_is_marked_final_once_after_it(
    store: SketchStore, plan: SketchPlan
) -> None:
    early = put_batch(plan, T0, "a", rows(40, 1, T0))
    store.window(MODEL, VERSION, T0, T0 + timedelta(hours=1), plan, now=NOW)
    late = put_batch(plan, T0, "z-late", rows(40, 2, T0))  # within the horizon: counted
    after = T0 + timedelta(hours=1) + FINAL_AFTER
    window = store.window(MODEL, VERSION, T0, T0 + timedelta(hours=1), plan, now=after)
    assert window.sketch == merge_all([early, late])
    marked = store.window(MODEL, VERSION, T0, T0 + timedelta(hours=1), plan, now=after)
    assert marked.rollups_written == 0  # remembered: read and written once


def test_corrupt_and_foreign_sketches_are_skipped_and_reported(
    store: SketchStore, plan: SketchPlan
) -> None:
    good = put_batch(plan, T0, "good", rows(30, 1, T0))
    s3 = boto3.client("s3")
    prefix = f"sketches/model={MODEL}/version={VERSION}/dt={T0:%Y-%m-%d}/hour={T0:%H}/"
    s3.put_object(Bucket=BUCKET, Key=prefix + "corrupt.json", Body=b"{not json")
    foreign = build_sketch(plan, rows(30, 2, T0)).to_dict() | {"baseline": "another-baseline"}
    s3.put_object(Bucket=BUCKET, Key=prefix + "foreign.json", Body=json.dumps(foreign))
    window = store.window(MODEL, VERSION, T0, T0 + timedelta(hours=1), plan, now=NOW)
    assert window.sketch == good
    reasons = {s["key"].rsplit("/", 1)[1]: s["reason"] for s in window.skipped}
    assert reasons["corrupt.json"].startswith("not a sketch")
    assert reasons["foreign.json"].endswith("binned on another baseline")
    # And they are not read again: the roll-up lists them as covered
    again = store.window(MODEL, VERSION, T0, T0 + timedelta(hours=1), plan, now=NOW)
    assert (again.sketch, again.objects_read) == (good, 1)


def test_a_corrupt_rollup_is_rebuilt_from_its_batches(store: SketchStore, plan: SketchPlan) -> None:
    good = put_batch(plan, T0, "a", rows(30, 1, T0))
    store.window(MODEL, VERSION, T0, T0 + timedelta(hours=1), plan, now=NOW)
    key = f"sketches/model={MODEL}/version={VERSION}/rollup/dt={T0:%Y-%m-%d}/hour={T0:%H}.json"
    boto3.client("s3").put_object(Bucket=BUCKET, Key=key, Body=b"garbage")
    window = store.window(MODEL, VERSION, T0, T0 + timedelta(hours=1), plan, now=NOW)
    assert window.sketch == good
    assert window.skipped[0]["reason"].startswith("roll-up unreadable")


def test_an_empty_window_has_no_sketch(store: SketchStore, plan: SketchPlan) -> None:
    window = store.window(MODEL, VERSION, T0, T0 + timedelta(hours=2), plan, now=NOW)
    assert window.sketch is None
    assert (window.hours, window.batches, window.rollups_written) == (2, 0, 0)


# --- objects that cannot be trusted: skipped, listed, never fatal ------------------------------

HOUR_PREFIX = f"sketches/model={MODEL}/version={VERSION}/dt={T0:%Y-%m-%d}/hour={T0:%H}/"
ROLLUP_KEY = f"sketches/model={MODEL}/version={VERSION}/rollup/dt={T0:%Y-%m-%d}/hour={T0:%H}.json"
EVENTS_KEY = ROLLUP_KEY.removesuffix(".json") + ".events"


def read_hour(store: SketchStore, plan: SketchPlan, **kwargs: Any) -> SketchWindow:
    return store.window(MODEL, VERSION, T0, T0 + timedelta(hours=1), plan, now=NOW, **kwargs)


def put(key: str, body: bytes | str) -> None:
    boto3.client("s3").put_object(Bucket=BUCKET, Key=key, Body=body)


def document(plan: SketchPlan, change: Callable[[dict[str, Any]], object]) -> bytes:
    """A real sketch document of 30 rows, then damaged by ``change``."""
    doc = build_sketch(plan, rows(30, 7, T0)).to_dict()
    change(doc)
    return json.dumps(doc).encode()


def bin_short(doc: dict[str, Any]) -> None:
    """One bin fewer, its count moved into the previous bin: every total still agrees."""
    counts = doc["numeric"]["sqft"]["counts"]
    counts[-2] += counts.pop()


DEEP = b"[" * 100_000 + b"]" * 100_000  # 200 kB: the parser's recursion gives up first

# Seventeen kinds of batch sketch one cannot trust (the review's and their neighbours).
BAD_BATCHES: dict[str, Callable[[SketchPlan], bytes]] = {
    "not-json": lambda p: b"{not json",
    "empty": lambda p: b"",
    "not-utf8": lambda p: b'\xff\xfe{"schema": 2}',
    "null": lambda p: b"null",
    "a-list": lambda p: b"[]",
    "a-number": lambda p: b"1",
    "nested-too-deep": lambda p: DEEP,
    "schema-1": lambda p: document(p, lambda d: d.update(schema=1)),
    "another-baseline": lambda p: document(p, lambda d: d.update(baseline="0" * 64)),
    "another-version": lambda p: document(p, lambda d: d.update(version="4")),
    "a-bin-short": lambda p: document(p, bin_short),
    "a-feature-missing": lambda p: document(p, lambda d: d["numeric"].pop("sqft")),
    "rows-1e30": lambda p: document(p, lambda d: d.update(rows=10**30)),
    "rows-not-the-bin-totals": lambda p: document(p, lambda d: d.update(rows=31)),
    "hex-sum-bomb": lambda p: document(
        p, lambda d: d["numeric"]["sqft"].update(sum="0x1p+200000000")
    ),
    "nan-minimum": lambda p: document(p, lambda d: d["numeric"]["sqft"].update(min=math.nan)),
    "events-not-base64": lambda p: document(p, lambda d: d.update(events="%%%")),
    "2000-unseen-names": lambda p: document(
        p,
        lambda d: d["categorical"]["location"].update(unseen_top={f"n{i}": 1 for i in range(2000)}),
    ),
    "oversized": lambda p: b" " * (MAX_SKETCH_BYTES + 1) + b"{}",
}


@pytest.mark.parametrize("kind", sorted(BAD_BATCHES))
def test_a_batch_sketch_one_cannot_trust_is_skipped_listed_and_not_read_again(
    store: SketchStore, plan: SketchPlan, kind: str
) -> None:
    # Given a good batch and one that cannot be trusted, in the same hour
    good = put_batch(plan, T0, "good", rows(30, 1, T0))
    put(HOUR_PREFIX + f"{kind}.json", BAD_BATCHES[kind](plan))
    # When the window is read
    window = read_hour(store, plan)
    # Then the hour is the good batch, the bad one is listed, and the roll-up is written
    assert window.sketch == good
    assert [s["key"] for s in window.skipped] == [HOUR_PREFIX + f"{kind}.json"]
    assert (window.skipped_count, window.rollups_written) == (1, 1)
    # And the next read neither reads it again nor forgets it
    again = read_hour(store, plan)
    assert (again.sketch, again.objects_read, again.rollups_written) == (good, 1, 0)
    assert again.skipped == window.skipped


def test_an_oversized_object_is_not_read_whole(store: SketchStore, plan: SketchPlan) -> None:
    put(HOUR_PREFIX + "huge.json", b" " * (2 * MAX_SKETCH_BYTES))
    window = read_hour(store, plan)
    assert window.bytes_read <= MAX_SKETCH_BYTES + 1
    assert "bytes, above the 4,194,304 read" in window.skipped[0]["reason"]


def rolled_up(store: SketchStore, plan: SketchPlan) -> Sketch:
    good = put_batch(plan, T0, "good", rows(30, 1, T0), events=["e-1", "e-2", "e-3"])
    assert read_hour(store, plan).sketch == good
    return good


def rollup_with(change: Callable[[dict[str, Any]], object]) -> bytes:
    doc = json.loads(boto3.client("s3").get_object(Bucket=BUCKET, Key=ROLLUP_KEY)["Body"].read())
    change(doc)
    return json.dumps(doc).encode()


BAD_ROLLUPS: dict[str, Callable[[], bytes]] = {
    "null": lambda: b"null",
    "a-list": lambda: b"[]",
    "a-number": lambda: b"1",
    "nested-too-deep": lambda: DEEP,
    "garbage": lambda: b"garbage",
    "a-bin-short": lambda: rollup_with(lambda d: bin_short(d["sketch"])),
    "a-feature-missing": lambda: rollup_with(lambda d: d["sketch"]["numeric"].pop("sqft")),
    "another-version": lambda: rollup_with(lambda d: d["sketch"].update(version="4")),
    "batches-not-a-list": lambda: rollup_with(lambda d: d.update(batches="abc")),
    "batches-of-another-hour": lambda: rollup_with(lambda d: d.update(batches=["elsewhere"])),
    "schema-1": lambda: rollup_with(lambda d: d.update(schema=1)),
    "oversized": lambda: b" " * (MAX_ROLLUP_BYTES + 1),
}


@pytest.mark.parametrize("kind", sorted(BAD_ROLLUPS))
def test_a_rollup_one_cannot_trust_is_listed_and_rebuilt_from_its_batches(
    store: SketchStore, plan: SketchPlan, kind: str
) -> None:
    # Given an hour rolled up, whose roll-up is then damaged
    good = rolled_up(store, plan)
    put(ROLLUP_KEY, BAD_ROLLUPS[kind]())
    # When the window is read
    window = read_hour(store, plan)
    # Then the hour is rebuilt from its batches, listed, and the roll-up rewritten
    assert window.sketch == good
    assert [s["key"] for s in window.skipped] == [ROLLUP_KEY]
    assert window.skipped[0]["reason"].startswith("roll-up unreadable, rebuilt")
    assert window.rollups_written == 1
    # And the next read is one good roll-up again
    again = read_hour(store, plan)
    assert (again.sketch, again.objects_read, again.skipped) == (good, 1, [])


@pytest.mark.parametrize("damage", [b"", b"\x00" * 7, b"\x01" * 8])
def test_an_hour_whose_counted_events_are_lost_is_recounted(
    store: SketchStore, plan: SketchPlan, damage: bytes
) -> None:
    # Given an hour rolled up from a batch with event digests, and a late batch
    rolled_up(store, plan)
    if damage:
        put(EVENTS_KEY, damage)
    else:
        boto3.client("s3").delete_object(Bucket=BUCKET, Key=EVENTS_KEY)
    late = put_batch(plan, T0, "late", rows(20, 2, T0), events=["late-1", "late-2"])
    # When it is read: the digests do not match what the roll-up counted
    window = read_hour(store, plan)
    # Then the hour is recounted from its batches, exactly
    assert window.sketch == merge_all([build_sketch(plan, rows(30, 1, T0)), late])
    assert window.skipped[0]["key"] == EVENTS_KEY


# --- bounded: a flooded hour keeps K names per feature -----------------------------------------


def test_a_flooded_hour_keeps_k_unseen_names_and_counts_every_unseen_value(
    store: SketchStore, plan: SketchPlan
) -> None:
    # Given 20 batches of 100 rows, each row in a location of its own
    for b in range(20):
        batch = rows(100, b, T0)
        for i, r in enumerate(batch):
            r["inputs"]["location"] = f"{b:02d}-{i:02d}-" + "q" * 26
        put_batch(plan, T0, f"b{b:02d}", batch, max_unseen=5)
    # When the window is read with K = 5
    window = read_hour(store, plan, max_unseen=5)
    assert window.sketch is not None
    location = window.sketch.categorical["location"]
    # Then 5 names are kept, and the 2,000 unseen values are all counted
    assert (len(location.unseen_top), location.unseen) == (5, 2000)
    size = boto3.client("s3").head_object(Bucket=BUCKET, Key=ROLLUP_KEY)["ContentLength"]
    assert size < 20_000


# --- rows counted once when a redelivery re-batches the same log events -----------------------


@pytest.fixture
def logger(store: SketchStore, baseline: dict[str, Any]) -> PredictionLoggerService:
    s3 = aws.client("s3")
    put(f"models/{MODEL}/{VERSION}/baseline.json", json.dumps(baseline))
    return PredictionLoggerService(
        CaptureStore(BUCKET, s3), ModelStore(BUCKET, s3), model_name=MODEL
    )


def log_events(count: int) -> list[LogEvent]:
    """``count`` log events of T0's hour, each a request of 3 houses of production v3."""
    ts = int(T0.timestamp() * 1000) + 60_000
    return [
        LogEvent(
            log_event_id(ts + i),
            ts + i,
            capture_line(ts + i, HOUSES[3 * i : 3 * i + 3], version=VERSION),
        )
        for i in range(count)
    ]


def logged(events: list[LogEvent]) -> Sketch:
    """The sketch the logger wrote for a delivery of exactly ``events``."""
    key = f"{HOUR_PREFIX}{batch_id(e.id for e in events)}.json"
    body = boto3.client("s3").get_object(Bucket=BUCKET, Key=key)["Body"].read()
    return Sketch.from_dict(json.loads(body))


def test_a_redelivery_re_batched_within_what_was_stored_is_counted_once(
    store: SketchStore, plan: SketchPlan, logger: PredictionLoggerService
) -> None:
    # Given 10 log events delivered as one batch, then again as 5 + 5
    events = log_events(10)
    logger.store_batch(events)
    logger.store_batch(events[:5])
    logger.store_batch(events[5:])
    # When the hour is read
    window = read_hour(store, plan)
    # Then the 30 rows are counted once: the hour is the sketch of the 10 events, and either
    # the 10 or the two halves were duplicates (whichever batch key came first)
    assert window.sketch == logged(events)
    assert window.sketch.rows == 30
    assert (window.duplicates, window.batches, window.skipped) in ((1, 3, []), (2, 3, []))


def test_a_redelivery_that_holds_batches_read_earlier_is_counted_once(
    store: SketchStore, plan: SketchPlan, logger: PredictionLoggerService
) -> None:
    # Given 5 + 5 events stored and rolled up, then the same 10 delivered as one batch
    events = log_events(10)
    logger.store_batch(events[:5])
    logger.store_batch(events[5:])
    first = read_hour(store, plan).sketch
    logger.store_batch(events)
    # When the hour is read again
    window = read_hour(store, plan)
    # Then nothing changed: the new batch was a duplicate
    assert window.sketch == first
    assert window.sketch is not None
    assert (window.sketch.rows, window.duplicates, window.rebuilt_hours) == (30, 1, 0)


def test_a_redelivery_across_a_batch_read_earlier_recounts_the_hour_exactly(
    store: SketchStore, plan: SketchPlan, logger: PredictionLoggerService
) -> None:
    # Given 5 events stored and rolled up, then the 10 they belong to delivered as one batch
    events = log_events(10)
    logger.store_batch(events[:5])
    read_hour(store, plan)
    logger.store_batch(events)
    # When the hour is read: the new batch holds 5 counted events and 5 new ones
    window = read_hour(store, plan)
    # Then the hour is recounted, largest batch first: the 10 once, the 5 as a duplicate
    assert window.sketch == logged(events)
    assert (window.duplicates, window.rebuilt_hours) == (1, 1)
    # And the late other half changes nothing
    logger.store_batch(events[5:])
    later = read_hour(store, plan)
    assert later.sketch == window.sketch
    assert later.duplicates == 2


def test_batches_that_overlap_only_in_part_are_listed_with_what_is_not_counted(
    store: SketchStore, plan: SketchPlan, logger: PredictionLoggerService
) -> None:
    # Given events 0-5 and 3-9 (neither holds the other) delivered as two batches
    events = log_events(10)
    logger.store_batch(events[:6])
    logger.store_batch(events[3:])
    # When the hour is read
    window = read_hour(store, plan)
    # Then the larger batch is counted, the other skipped and listed with its uncounted events
    assert window.sketch == logged(events[3:])
    (skipped,) = window.skipped
    assert "3 of its events not counted" in skipped["reason"]
