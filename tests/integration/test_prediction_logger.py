"""The prediction logger through its real handler: CloudWatch Logs subscription events in,
one gzip JSON Lines object per partition, sketches and quarantined lines out, in moto's S3."""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from types import ModuleType
from typing import Any

import boto3
import numpy as np
import pytest
from botocore.awsrequest import AWSResponse, HTTPHeaders

from mlops.adapters import aws
from mlops.domain import capture, event_set
from mlops.domain.baseline import build_baseline
from mlops.domain.config_document import load_config
from mlops.domain.sketch import Sketch, build_sketch
from mlops.domain.synthetic import conditions_for_month, generate
from mlops.errors import InvalidEventError, StorageError
from mlops.services import prediction_logger
from mlops_cli.emulator.sources.logs import awslogs_payload, log_event_id
from mlops_cli.emulator.stack import LambdaContext
from tests.conftest import BUCKET, ROOT, import_fresh, moto_resources

APP = ROOT / "functions" / "prediction_logger" / "app.py"
MODEL = "house-prices"
LOGGER_ENV = {"CAPTURE_BUCKET": BUCKET, "MODEL_BUCKET": BUCKET, "MODEL_NAME": MODEL}
BASELINE_KEY = f"models/{MODEL}/1/baseline.json"
HOUR_10 = int(datetime(2024, 5, 1, 10, 15, tzinfo=UTC).timestamp() * 1000)
HOUR_11 = int(datetime(2024, 5, 1, 11, 5, tzinfo=UTC).timestamp() * 1000)
CAPTURES_10 = f"captures/model={MODEL}/version=1/dt=2024-05-01/hour=10/"
CAPTURES_11 = f"captures/model={MODEL}/version=1/dt=2024-05-01/hour=11/"
SKETCHES_10 = f"sketches/model={MODEL}/version=1/dt=2024-05-01/hour=10/"


def make_baseline() -> dict[str, Any]:
    config = load_config()
    columns = generate(600, conditions_for_month(0), seed=3)
    document = build_baseline(
        config.features, columns, columns["price"], task="regression", metrics={}, bins=20
    )
    parsed: dict[str, Any] = json.loads(json.dumps(document))  # as read back from S3
    return parsed


BASELINE = make_baseline()
HOUSES = [
    {k: v.item() if isinstance(v, np.generic) else v for k, v in house.items()}
    for columns in [generate(40, conditions_for_month(4), seed=11)]
    for house in (
        {name: values[i] for name, values in columns.items() if name != "price"} for i in range(40)
    )
]


# --- lines and events ---------------------------------------------------------------------


def capture_line(
    ts: int, houses: list[dict[str, Any]], version: str = "1", *, evaluation: bool = False
) -> str:
    (line,) = capture.capture_lines(
        model=MODEL,
        version=version,
        alias="production",
        variant=None,
        request_id=str(uuid.uuid4()),
        timestamp_ms=ts,
        latency_ms=0.2,
        instances=houses,
        prediction_ids=[str(uuid.uuid4()) for _ in houses],
        predictions=[300_000.0 + 1000 * i for i in range(len(houses))],
        probabilities=None,
        evaluation=evaluation,
    )
    return line


def feedback_line(ts: int, n: int = 2) -> str:
    items = [{"prediction_id": str(uuid.uuid4()), "actual": 350_000.0 + i} for i in range(n)]
    (line,) = capture.feedback_line(model=MODEL, timestamp_ms=ts, items=items)
    return line


@dataclass(frozen=True)
class Line:
    """One log event of a batch: CloudWatch's id and timestamp, and the message."""

    id: str
    timestamp: int
    message: str


def line(message: str, timestamp: int = HOUR_10) -> Line:
    return Line(log_event_id(timestamp), timestamp, message)


def subscription_event(lines: list[Line]) -> dict[str, Any]:
    return awslogs_payload(
        "/aws/lambda/inference",
        "2024/05/01/[$LATEST]0123456789abcdef",
        "mlops-InferenceCaptures",
        [(x.id, x.timestamp, x.message) for x in lines],
    )


def control_event() -> dict[str, Any]:
    data = {
        "messageType": "CONTROL_MESSAGE",
        "owner": "CloudwatchLogs",
        "logGroup": "",
        "logStream": "",
        "subscriptionFilters": [],
        "logEvents": [
            {
                "id": "",
                "timestamp": HOUR_10,
                "message": "CWL CONTROL MESSAGE: Checking health of destination Lambda.",
            }
        ],
    }
    raw = gzip.compress(json.dumps(data).encode())
    return {"awslogs": {"data": base64.b64encode(raw).decode()}}


def batch_id(lines: list[Line]) -> str:
    return hashlib.sha256("\n".join(sorted(x.id for x in lines)).encode()).hexdigest()[:32]


# --- the handler in moto --------------------------------------------------------------------


@dataclass
class Logger:
    invoke: Callable[[dict[str, Any]], dict[str, Any]]
    s3: Any

    def keys(self, prefix: str = "") -> list[str]:
        pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
        return sorted(o["Key"] for page in pages for o in page.get("Contents", []))

    def body(self, key: str) -> bytes:
        return bytes(self.s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())

    def rows(self, key: str) -> list[dict[str, Any]]:
        text = gzip.decompress(self.body(key)).decode()
        return [json.loads(x) for x in text.splitlines()]

    def stored(self) -> dict[str, bytes]:
        """Every object but the model's, with its bytes."""
        return {k: self.body(k) for k in self.keys() if not k.startswith("models/")}


def load_handler_module() -> ModuleType:
    """Import functions/prediction_logger/app.py afresh, as a new Lambda container would."""
    prediction_logger.logger_service.cache_clear()
    return import_fresh("prediction_logger_app_under_test", APP)


def start(env: dict[str, str] | None = None, *, baseline: bool = True) -> Iterator[Logger]:
    with moto_resources({**LOGGER_ENV, **(env or {})}):
        s3 = boto3.client("s3")
        if baseline:
            s3.put_object(Bucket=BUCKET, Key=BASELINE_KEY, Body=json.dumps(BASELINE).encode())
        module = load_handler_module()

        def invoke(event: dict[str, Any]) -> dict[str, Any]:
            return dict(module.lambda_handler(event, LambdaContext("prediction-logger-test")))

        yield Logger(invoke, s3)
    prediction_logger.logger_service.cache_clear()
    sys.modules.pop("prediction_logger_app_under_test", None)


@pytest.fixture
def app() -> Iterator[Logger]:
    yield from start()


@pytest.fixture
def app_without_baseline() -> Iterator[Logger]:
    yield from start(baseline=False)


def published(capsys: pytest.CaptureFixture[str]) -> dict[str, float]:
    """The one EMF document Powertools' Metrics printed at flush, as metric name → value."""
    out = capsys.readouterr().out
    documents = [json.loads(x) for x in out.splitlines() if x.startswith("{")]
    (document,) = [d for d in documents if "_aws" in d]
    (directive,) = document["_aws"]["CloudWatchMetrics"]
    names = [metric["Name"] for metric in directive["Metrics"]]
    # EMF allows a number or a list of numbers; each metric is added once per batch.
    return {n: sum(document[n]) if isinstance(document[n], list) else document[n] for n in names}


# --- tests ----------------------------------------------------------------------------------


def test_captures_are_written_as_one_gzip_jsonl_object_per_hour(app: Logger) -> None:
    # Given three requests in hour 10 (one of them logged late, in hour 11) and one in hour 11
    in_10 = [
        line(capture_line(HOUR_10, HOUSES[0:2])),
        line(capture_line(HOUR_10 + 60_000, HOUSES[2:3])),
        line(capture_line(HOUR_10 + 120_000, HOUSES[3:6]), timestamp=HOUR_11),
    ]
    in_11 = [line(capture_line(HOUR_11, HOUSES[6:7]), timestamp=HOUR_11)]
    # When they arrive in one subscription event
    result = app.invoke(subscription_event(in_10 + in_11))
    # Then each hour (of the record's ts) is one object named by its lines' event ids
    key_10 = f"{CAPTURES_10}{batch_id(in_10)}.jsonl.gz"
    key_11 = f"{CAPTURES_11}{batch_id(in_11)}.jsonl.gz"
    assert app.keys("captures/") == [key_10, key_11]
    # holding exactly the rows of those lines, in event-id order
    expected = [r for x in sorted(in_10, key=lambda x: x.id) for r in rows_of(x)]
    assert app.rows(key_10) == expected
    assert app.rows(key_11) == rows_of(in_11[0])
    assert result["captured_predictions"] == 7


def rows_of(x: Line) -> list[dict[str, Any]]:
    return capture.capture_rows(capture.parse_capture_line(x.message))


def test_feedback_is_written_to_its_own_partition(app: Logger) -> None:
    # Given a capture and two feedback lines in the same hour
    labels = [line(feedback_line(HOUR_10, n=2)), line(feedback_line(HOUR_10 + 1, n=1))]
    app.invoke(subscription_event([line(capture_line(HOUR_10, HOUSES[:1])), *labels]))
    # Then the labels are one feedback object, apart from the captures
    (key,) = app.keys("feedback/")
    assert key == f"feedback/dt=2024-05-01/hour=10/{batch_id(labels)}.jsonl.gz"
    expected = [
        r
        for x in sorted(labels, key=lambda x: x.id)
        for r in capture.feedback_rows(capture.parse_capture_line(x.message))
    ]
    assert app.rows(key) == expected
    assert len(app.keys("captures/")) == 1


def test_a_sketch_of_each_capture_object_is_written_on_the_version_baseline(app: Logger) -> None:
    # Given a batch of captures in one hour
    lines = [line(capture_line(HOUR_10 + i, HOUSES[i * 3 : i * 3 + 3])) for i in range(4)]
    app.invoke(subscription_event(lines))
    # Then its sketch sits next to it, under the same batch id
    (capture_key,) = app.keys("captures/")
    (sketch_key,) = app.keys("sketches/")
    assert sketch_key == f"{SKETCHES_10}{batch_id(lines)}.json"
    # and equals the sketch of exactly the rows stored, on the baseline in S3
    stored = Sketch.from_dict(json.loads(app.body(sketch_key)))
    assert stored == build_sketch(BASELINE, app.rows(capture_key))
    assert stored.rows == 12


def test_evaluation_rows_are_stored_counted_and_left_out_of_the_sketch(
    app: Logger, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given one hour's batch of two live requests and one evaluation request
    live = [line(capture_line(HOUR_10 + i, HOUSES[i * 3 : i * 3 + 3])) for i in range(2)]
    holdout = line(capture_line(HOUR_10 + 5, HOUSES[6:10], evaluation=True))
    capsys.readouterr()
    app.invoke(subscription_event([*live, holdout]))
    # Then the capture object holds all ten rows, the holdout's flagged
    (capture_key,) = app.keys("captures/")
    rows = app.rows(capture_key)
    assert sorted(str(r.get("source")) for r in rows) == ["None"] * 6 + ["evaluation"] * 4
    # And the sketch (with its serving digest) is that of the six live rows and their events
    (sketch_key,) = app.keys("sketches/")
    assert sketch_key == f"{SKETCHES_10}{batch_id(live)}.json"
    doc = json.loads(app.body(sketch_key))
    assert Sketch.from_dict(doc) == build_sketch(BASELINE, [r for r in rows if "source" not in r])
    assert np.array_equal(event_set.decode(doc["events"]), event_set.digests(x.id for x in live))
    # And the rows left out are counted
    metrics = published(capsys)
    assert (metrics["CapturedPredictions"], metrics["EvaluationPredictions"]) == (10, 4)


def test_a_batch_of_evaluation_traffic_alone_writes_no_sketch(app: Logger) -> None:
    app.invoke(subscription_event([line(capture_line(HOUR_10, HOUSES[:3], evaluation=True))]))
    assert len(app.keys("captures/")) == 1
    assert app.keys("sketches/") == []


def test_a_sketch_lists_the_digests_of_the_log_events_it_counts(app: Logger) -> None:
    # Given a batch of four log events in one hour
    lines = [line(capture_line(HOUR_10 + i, HOUSES[i : i + 1])) for i in range(4)]
    app.invoke(subscription_event(lines))
    # Then its sketch names those events (so a re-batched redelivery can be counted once)
    (sketch_key,) = app.keys("sketches/")
    document = json.loads(app.body(sketch_key))
    assert np.array_equal(
        event_set.decode(document["events"]), event_set.digests(x.id for x in lines)
    )
    assert len(event_set.decode(document["events"])) == 4


def flooded(count: int) -> list[dict[str, Any]]:
    """``count`` houses, each in a location of its own that training never saw."""
    return [HOUSES[i % len(HOUSES)] | {"location": f"nowhere-{i:04d}"} for i in range(count)]


def test_sketches_keep_as_many_unseen_names_as_the_stack_config_says(app: Logger) -> None:
    # Given the stack's model config keeping 2 unseen categories by name
    shipped = (ROOT / "layers/core/mlops/defaults/house_prices.toml").read_text()
    config = shipped + "\n[drift]\nmax_unseen_categories = 2\n"
    app.s3.put_object(Bucket=BUCKET, Key=f"config/{MODEL}.toml", Body=config.encode())
    # When a request with five new locations is logged
    app.invoke(subscription_event([line(capture_line(HOUR_10, flooded(5)))]))
    # Then two are kept by name and the other three are counted
    (sketch_key,) = app.keys("sketches/")
    location = Sketch.from_dict(json.loads(app.body(sketch_key))).categorical["location"]
    assert (len(location.unseen_top), location.unseen_other, location.unseen) == (2, 3, 5)


def test_an_unusable_stack_config_leaves_the_default_k_and_says_so(
    app: Logger, caplog: pytest.LogCaptureFixture
) -> None:
    app.s3.put_object(Bucket=BUCKET, Key=f"config/{MODEL}.toml", Body=b"not = [toml")
    app.invoke(subscription_event([line(capture_line(HOUR_10, flooded(70)))]))
    (sketch_key,) = app.keys("sketches/")
    location = Sketch.from_dict(json.loads(app.body(sketch_key))).categorical["location"]
    assert (len(location.unseen_top), location.unseen_other) == (64, 6)
    assert "model config unusable" in caplog.text


def test_the_same_event_delivered_twice_overwrites_instead_of_duplicating(app: Logger) -> None:
    # Given a batch of captures over two hours and feedback, stored once
    event = subscription_event(
        [
            line(capture_line(HOUR_10, HOUSES[:3])),
            line(capture_line(HOUR_11, HOUSES[3:5]), timestamp=HOUR_11),
            line(feedback_line(HOUR_11), timestamp=HOUR_11),
            line("not a record"),
        ]
    )
    app.invoke(event)
    first = app.stored()
    # When CloudWatch Logs (or Lambda's retry) delivers the same event again
    app.invoke(event)
    # Then the same keys hold the same bytes, and every row is there once
    assert app.stored() == first
    gzip_mtimes = {k: v[4:8] for k, v in first.items() if k.endswith(".gz")}
    assert set(gzip_mtimes.values()) == {bytes(4)}  # no clock in the bytes
    captured = [r for k in app.keys("captures/") for r in app.rows(k)]
    assert len(captured) == 5
    assert len({r["prediction_id"] for r in captured}) == 5


def test_the_order_of_lines_in_a_delivery_does_not_change_what_is_written(app: Logger) -> None:
    lines = [line(capture_line(HOUR_10 + i, HOUSES[i : i + 1])) for i in range(5)]
    app.invoke(subscription_event(lines))
    first = app.stored()
    app.invoke(subscription_event(lines[::-1]))
    assert app.stored() == first


def test_a_retry_after_a_half_written_batch_completes_it(app: Logger) -> None:
    # Given a batch whose second object write fails (S3 errors are retried by Lambda)
    event = subscription_event(
        [
            line(capture_line(HOUR_10, HOUSES[:2])),
            line(capture_line(HOUR_11, HOUSES[2:4]), timestamp=HOUR_11),
            line(feedback_line(HOUR_11), timestamp=HOUR_11),
        ]
    )
    puts = 0

    def fail_the_second_put(**_: Any) -> Any:
        nonlocal puts
        puts += 1
        if puts == 2:
            error = {"Error": {"Code": "AccessDenied", "Message": "injected"}}
            http = AWSResponse("https://s3", 403, HTTPHeaders(), None)
            return (http, error | {"ResponseMetadata": {"HTTPStatusCode": 403}})
        return None

    s3 = aws.client("s3")  # the client the handler's adapters use
    s3.meta.events.register("before-call.s3.PutObject", fail_the_second_put)
    try:
        with pytest.raises(StorageError):
            app.invoke(event)
    finally:
        s3.meta.events.unregister("before-call.s3.PutObject", fail_the_second_put)
    assert len(app.stored()) == 1  # half written
    # When Lambda retries the same event
    app.invoke(event)
    # Then the batch is whole: two capture objects, one feedback object, two sketches
    assert [k.split("/")[0] for k in app.stored()] == ["captures"] * 2 + ["feedback"] + [
        "sketches"
    ] * 2
    assert sum(len(app.rows(k)) for k in app.keys("captures/")) == 4


def test_malformed_lines_are_quarantined_and_the_rest_is_written(
    app: Logger, capsys: pytest.CaptureFixture[str]
) -> None:
    good = line(capture_line(HOUR_10, HOUSES[:2]))
    # awslambdaric's text format puts a prefix before a perfectly good record: not parsed
    wrapped = (
        f"[INFO]\t2024-05-01T10:15:00.000Z\t{uuid.uuid4()}\t{capture_line(HOUR_10, HOUSES[2:3])}\n"
    )
    shapeless = json.dumps({"type": "capture", "schema": 1, "model": MODEL, "ts": HOUR_10})
    bad = [
        line("START RequestId: 1 Version: $LATEST"),
        line(wrapped),
        line(shapeless),
        line(capture_line(HOUR_10, HOUSES[3:4]).replace(f'"{MODEL}"', '"another-model"')),
        line(capture_line(HOUR_10, HOUSES[4:5], version="../1")),
    ]
    capsys.readouterr()
    result = app.invoke(subscription_event([good, *bad]))
    # Then the bad lines are kept, with their event ids and why, in one quarantine object
    (key,) = app.keys("quarantine/")
    assert key == f"quarantine/dt=2024-05-01/hour=10/{batch_id(bad)}.jsonl.gz"
    quarantined = {r["id"]: r for r in app.rows(key)}
    assert set(quarantined) == {x.id for x in bad}
    assert all(r["error"] and r["message"] for r in quarantined.values())
    assert quarantined[bad[1].id]["message"] == wrapped
    assert quarantined[bad[1].id]["error"] == "not a JSON record"
    assert quarantined[bad[3].id]["problems"][0]["field"] == "model"
    assert quarantined[bad[4].id]["problems"][0]["field"] == "version"
    # and the good line is stored with its sketch
    (capture_key,) = app.keys("captures/")
    assert app.rows(capture_key) == rows_of(good)
    assert len(app.keys("sketches/")) == 1
    # and the count is published
    metrics = published(capsys)
    assert metrics["MalformedRecords"] == 5
    assert metrics["CapturedPredictions"] == 2
    assert result["malformed_records"] == 5


def test_a_version_without_baseline_is_stored_without_sketch(
    app_without_baseline: Logger, capsys: pytest.CaptureFixture[str]
) -> None:
    app = app_without_baseline
    capsys.readouterr()
    app.invoke(subscription_event([line(capture_line(HOUR_10, HOUSES[:3]))]))
    (key,) = app.keys("captures/")
    assert len(app.rows(key)) == 3
    assert app.keys("sketches/") == []
    metrics = published(capsys)
    assert metrics["MissingBaselines"] == 1
    assert metrics["CaptureObjectsWritten"] == 1


def test_a_baseline_that_appears_later_is_used_by_the_next_batch(
    app_without_baseline: Logger,
) -> None:
    app = app_without_baseline
    app.invoke(subscription_event([line(capture_line(HOUR_10, HOUSES[:1]))]))
    app.s3.put_object(Bucket=BUCKET, Key=BASELINE_KEY, Body=json.dumps(BASELINE).encode())
    app.invoke(subscription_event([line(capture_line(HOUR_10, HOUSES[1:2]))]))
    assert len(app.keys("sketches/")) == 1


def test_metrics_count_a_whole_batch(app: Logger, capsys: pytest.CaptureFixture[str]) -> None:
    lines = [
        line(capture_line(HOUR_10, HOUSES[:2])),
        line(capture_line(HOUR_11, HOUSES[2:5]), timestamp=HOUR_11),
        line(feedback_line(HOUR_10, n=4)),
    ]
    capsys.readouterr()
    app.invoke(subscription_event(lines))
    assert published(capsys) == {
        "CapturedPredictions": 5,
        "EvaluationPredictions": 0,
        "FeedbackLabels": 4,
        "MalformedRecords": 0,
        "MissingBaselines": 0,
        "CaptureObjectsWritten": 5,  # 2 capture objects, 1 feedback, 2 sketches
        "EstimateUnscoredRows": 0,  # this baseline has no estimate section
    }


@pytest.fixture
def app_with_missing_bucket() -> Iterator[Logger]:
    yield from start({"CAPTURE_BUCKET": "no-such-bucket"})


def test_an_s3_failure_raises_so_lambda_retries(app_with_missing_bucket: Logger) -> None:
    event = subscription_event([line(capture_line(HOUR_10, HOUSES[:1]))])
    with pytest.raises(StorageError, match="no-such-bucket"):
        app_with_missing_bucket.invoke(event)


def test_a_control_message_is_acknowledged_and_writes_nothing(app: Logger) -> None:
    result = app.invoke(control_event())
    assert result == {"message_type": "CONTROL_MESSAGE", "stored": False}
    assert app.stored() == {}


@pytest.mark.parametrize(
    "event",
    [
        {"awslogs": {"data": "not base64 gzip"}},
        {"awslogs": {"data": base64.b64encode(gzip.compress(b"[1, 2]")).decode()}},
        {"Records": []},
    ],
    ids=["not-gzip", "not-an-object", "another-source"],
)
def test_an_event_that_is_not_a_subscription_batch_raises(
    app: Logger, event: dict[str, Any]
) -> None:
    with pytest.raises(InvalidEventError):
        app.invoke(event)
    assert app.stored() == {}


def test_the_events_fixture_is_read_and_its_old_style_lines_are_quarantined(app: Logger) -> None:
    # events/cloudwatch_logs.json holds Powertools log lines with "type": "capture" but no
    # capture record's fields (the shape before capture records existed)
    event = json.loads((ROOT / "events" / "cloudwatch_logs.json").read_text())
    result = app.invoke(event)
    assert result["events"] == 2
    assert result["malformed_records"] == 2
    (key,) = app.keys("quarantine/")
    assert key.startswith("quarantine/dt=2026-11-28/hour=23/")
    assert app.keys("captures/") == []
