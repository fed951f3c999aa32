"""Batch scoring through the real handler (functions/batch_scoring/app.py) on moto, with the
three real-shaped events in events/: an upload notification (scored in the invocation, or
handed to the state machine past the threshold), a Distributed Map batch, and the summary."""

from __future__ import annotations

import copy
import csv
import gzip
import io
import json
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import Any
from urllib.parse import quote_plus

import boto3
import numpy as np
import pytest

from mlops import settings
from mlops.adapters import aws
from mlops.adapters.model_store import ModelStore
from mlops.adapters.registry import Registry
from mlops.domain.config import ModelConfig
from mlops.domain.synthetic import conditions_for_month, csv_bytes, generate
from mlops.errors import InvalidEventError, StorageError
from mlops.services import batch_scoring
from mlops.services.model_loading import load_version
from mlops.services.training import TrainingService
from mlops_cli.emulator.stack import LambdaContext
from tests.conftest import BUCKET, ROOT, TABLE, import_fresh, load_event, moto_resources

APP = ROOT / "functions" / "batch_scoring" / "app.py"
INPUT_BUCKET = "test-batch-input"
MODEL = "house-prices"
MACHINE = "mlops-batch-scoring-test"
ENV = {
    "MODEL_NAME": MODEL,
    "MODEL_BUCKET": BUCKET,
    "CAPTURE_BUCKET": BUCKET,
    "REGISTRY_TABLE": TABLE,
    "BATCH_PREFIX": "batch/",
    "STATE_MACHINE_ARN": f"arn:aws:states:us-east-1:123456789012:stateMachine:{MACHINE}",
    "POWERTOOLS_METRICS_NAMESPACE": "ServerlessMLOps",
}
ASL = (ROOT / "statemachines" / "batch_scoring.asl.json").read_text()


@dataclass
class Batch:
    module: ModuleType
    store: ModelStore
    registry: Registry
    s3: Any

    def invoke(self, event: dict[str, Any]) -> Any:
        return self.module.lambda_handler(event, LambdaContext("batch-test"))

    def upload(
        self, key: str, body: bytes, metadata: dict[str, str] | None = None
    ) -> dict[str, Any]:
        """Put ``body`` under ``key`` and invoke the handler with the upload's notification."""
        put = self.s3.put_object(Bucket=INPUT_BUCKET, Key=key, Body=body, Metadata=metadata or {})
        event = copy.deepcopy(load_event("batch_s3_put.json"))
        obj = event["Records"][0]["s3"]
        obj["bucket"]["name"] = INPUT_BUCKET
        obj["object"].update(
            key=quote_plus(key, safe="/"),
            size=len(body),
            eTag=put["ETag"].strip('"'),
            versionId=put["VersionId"],
        )
        return dict(self.invoke(event))

    def json(self, key: str, bucket: str = INPUT_BUCKET) -> Any:
        return json.loads(self.s3.get_object(Bucket=bucket, Key=key)["Body"].read())

    def text(self, key: str) -> str:
        return self.s3.get_object(Bucket=INPUT_BUCKET, Key=key)["Body"].read().decode()

    def keys(self, prefix: str, bucket: str = INPUT_BUCKET) -> list[str]:
        pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        return sorted(o["Key"] for p in pages for o in p.get("Contents", []))


@pytest.fixture(scope="module")
def trained(config: ModelConfig, month0_csv: bytes) -> dict[str, Any]:
    """v1 in production, v2 registered: their objects and registry items, to load per test."""
    with moto_resources(ENV):
        store = ModelStore(BUCKET, aws.client("s3"))
        registry = Registry(TABLE, aws.client("dynamodb"))
        trainer = TrainingService(store, registry, code_version="test")
        trainer.train_and_register(config, month0_csv, "s3://d/m0.csv")
        month4 = csv_bytes(generate(800, conditions_for_month(4), seed=4))
        trainer.train_and_register(config, month4, "s3://d/m4.csv", promote=False)
        s3 = boto3.client("s3")
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"]]
        return {
            "objects": {k: s3.get_object(Bucket=BUCKET, Key=k)["Body"].read() for k in keys},
            "items": boto3.client("dynamodb").scan(TableName=TABLE)["Items"],
        }


def make_batch(trained: dict[str, Any], **env: str) -> Iterator[Batch]:
    with moto_resources(ENV | env):
        s3, db = boto3.client("s3"), boto3.client("dynamodb")
        for key, body in trained["objects"].items():
            s3.put_object(Bucket=BUCKET, Key=key, Body=body)
        for item in trained["items"]:
            db.put_item(TableName=TABLE, Item=item)
        s3.create_bucket(Bucket=INPUT_BUCKET)
        s3.put_bucket_versioning(Bucket=INPUT_BUCKET, VersioningConfiguration={"Status": "Enabled"})
        boto3.client("stepfunctions").create_state_machine(
            name=MACHINE,
            definition=ASL.replace("${BatchScoringFunctionArn}", "arn:aws:lambda:::function:x"),
            roleArn="arn:aws:iam::123456789012:role/test",
        )
        settings.batch_settings.cache_clear()
        batch_scoring.batch_service.cache_clear()
        module = import_fresh("batch_app_under_test", APP)
        yield Batch(
            module,
            ModelStore(BUCKET, aws.client("s3")),
            Registry(TABLE, aws.client("dynamodb")),
            s3,
        )
        sys.modules.pop("batch_app_under_test", None)
        settings.batch_settings.cache_clear()
        batch_scoring.batch_service.cache_clear()


@pytest.fixture
def batch(trained: dict[str, Any]) -> Iterator[Batch]:
    yield from make_batch(trained, CHUNK_ROWS="40")


@pytest.fixture
def tiny_threshold(trained: dict[str, Any]) -> Iterator[Batch]:
    yield from make_batch(trained, LAMBDA_MAX_BYTES="1000")


def houses(rows: int, seed: int = 3) -> list[dict[str, str]]:
    """Synthetic houses as CSV rows (header -> cell), the target included (ignored)."""
    data = csv_bytes(generate(rows, conditions_for_month(1), seed=seed)).decode()
    return list(csv.DictReader(io.StringIO(data)))


def as_csv(rows: list[dict[str, str]], header: list[str] | None = None) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=header or list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode()


def read_csv(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def expected(batch: Batch, version: str, rows: list[dict[str, str]]) -> list[float]:
    """What the registered version answers for ``rows``, scored directly."""
    loaded = load_version(batch.store, batch.registry, MODEL, version)
    columns = {
        f.name: np.asarray(
            [float(r[f.name]) if f.type == "numeric" else r[f.name].strip() for r in rows],
            dtype=np.float64 if f.type == "numeric" else object,
        )
        for f in loaded.manifest.signature.features
    }
    return [float(v) for v in loaded.model.score(columns).values]


def summary_of(batch: Batch, result: dict[str, Any]) -> dict[str, Any]:
    (job,) = result["jobs"]
    return dict(batch.json(job["summary"].split("/", 3)[3]))


# --- small files: scored in the invocation ----------------------------------------------------


def test_an_upload_is_scored_in_chunks_with_every_bad_row_reported(batch: Batch) -> None:
    # Given 100 houses, three of them bad (a word, a value past its bound, an empty category)
    rows = houses(100)
    rows[4]["sqft"] = "abc"
    rows[50]["bedrooms"] = "21"  # max 20
    rows[99]["location"] = "  "
    rows[7]["bedrooms"] = "20"  # exactly on the bound: fine
    # When it is uploaded under the batch prefix (chunks of 40 rows)
    summary = summary_of(batch, batch.upload("batch/portfolio.csv", as_csv(rows)))
    # Then 97 rows are scored with the production version, 3 reported, none dropped
    assert summary["status"] == "succeeded"
    assert summary["engine"] == "lambda"
    assert (summary["rows"], summary["scored"], summary["rejected"]) == (100, 97, 3)
    assert summary["rejected_by_reason"] == {"above_max": 1, "empty": 1, "not_a_number": 1}
    assert summary["model_version"] == "1"
    assert summary["parts"] == 3
    prefix = f"batch-output/{summary['job_id']}/parts/"
    parts = [k for k in batch.keys(prefix) if "/part-" in k and k.endswith(".csv")]
    assert parts == [f"{prefix}part-{n:012d}.csv" for n in (1, 41, 81)]
    predicted = [r for k in parts for r in read_csv(batch.text(k))]
    good = [i for i in range(100) if i not in (4, 50, 99)]
    assert [int(r["row"]) for r in predicted] == [i + 1 for i in good]
    assert [float(r["prediction"]) for r in predicted] == pytest.approx(
        expected(batch, "1", [rows[i] for i in good]), rel=1e-12
    )
    assert {r["model_version"] for r in predicted} == {"1"}
    rejected = [r for k in batch.keys(prefix) if "/rejected-" in k for r in read_csv(batch.text(k))]
    assert [(r["row"], r["field"], r["code"]) for r in rejected] == [
        ("5", "sqft", "not_a_number"),
        ("51", "bedrooms", "above_max"),
        ("100", "location", "empty"),
    ]
    assert "'abc'" in rejected[0]["reason"]


def test_batch_predictions_are_captured_apart_from_live_traffic(batch: Batch) -> None:
    rows = houses(30)
    summary = summary_of(batch, batch.upload("batch/captured.csv", as_csv(rows)))
    keys = batch.keys(f"captures/model={MODEL}/version=1/", bucket=BUCKET)
    assert len(keys) == 1
    assert keys[0].rsplit("/", 1)[1] == f"batch-{summary['job_id']}-{1:012d}.jsonl.gz"
    body = batch.s3.get_object(Bucket=BUCKET, Key=keys[0])["Body"].read()
    captured = [json.loads(line) for line in gzip.decompress(body).decode().splitlines()]
    predicted = read_csv(batch.text(f"batch-output/{summary['job_id']}/parts/part-{1:012d}.csv"))
    assert [c["prediction_id"] for c in captured] == [r["prediction_id"] for r in predicted]
    assert {c["source"] for c in captured} == {"batch"}
    assert {c["request_id"] for c in captured} == {summary["job_id"]}
    assert captured[0]["inputs"]["location"] == rows[0]["location"]
    assert captured[0]["inputs"]["sqft"] == float(rows[0]["sqft"])


def test_capture_off_writes_no_capture_and_no_prediction_ids(trained: dict[str, Any]) -> None:
    for batch in make_batch(trained, BATCH_CAPTURE="false"):
        summary = summary_of(batch, batch.upload("batch/quiet.csv", as_csv(houses(5))))
        assert summary["scored"] == 5
        assert batch.keys("captures/", bucket=BUCKET) == []
        part = read_csv(batch.text(f"batch-output/{summary['job_id']}/parts/part-{1:012d}.csv"))
        assert "prediction_id" not in part[0]


def test_an_id_column_and_a_version_named_in_the_object_metadata(batch: Batch) -> None:
    rows = [{"loan": f"L-{i:03d}", **r} for i, r in enumerate(houses(6))]
    rows[2]["sqft"] = ""
    metadata = {"mlops-version": "2", "mlops-id-column": "loan"}
    summary = summary_of(batch, batch.upload("batch/loans.csv", as_csv(rows), metadata))
    assert (summary["model_version"], summary["id_column"]) == ("2", "loan")
    prefix = f"batch-output/{summary['job_id']}/parts/"
    predicted = read_csv(batch.text(f"{prefix}part-{1:012d}.csv"))
    assert [r["loan"] for r in predicted] == ["L-000", "L-001", "L-003", "L-004", "L-005"]
    assert [float(r["prediction"]) for r in predicted] == pytest.approx(
        expected(batch, "2", [rows[i] for i in (0, 1, 3, 4, 5)]), rel=1e-12
    )
    (rejected,) = read_csv(batch.text(f"{prefix}rejected-{1:012d}.csv"))
    assert (rejected["row"], rejected["id"], rejected["field"]) == ("3", "L-002", "sqft")


@pytest.mark.parametrize(
    ("body", "metadata", "says"),
    [
        (b"\x1f\x8b\x08\x00rest", {}, "binary"),
        ("sqft,location\n1,\xe9\n".encode("latin-1"), {}, "not UTF-8"),
        (b"", {}, "empty"),
        (b"name,value\nx,1\n", {}, "header cannot be scored"),
        (b'sqft,"bedrooms\n1,2\n', {}, "not a CSV"),
        (None, {"mlops-version": "9"}, "not registered"),
        (None, {"mlops-version": "one"}, "version"),
    ],
    ids=["gzip", "latin-1", "empty", "no features", "open quote", "unknown version", "bad version"],
)
def test_a_file_that_cannot_be_scored_gets_a_rejected_summary(
    batch: Batch, body: bytes | None, metadata: dict[str, str], says: str
) -> None:
    data = as_csv(houses(3)) if body is None else body
    summary = summary_of(batch, batch.upload("batch/bad.csv", data, metadata))
    assert summary["status"] == "rejected"
    assert says in summary["error"]
    assert summary["scored"] == 0


def test_a_redelivered_upload_overwrites_its_job(batch: Batch) -> None:
    first = summary_of(batch, batch.upload("batch/twice.csv", as_csv(houses(10))))
    event = copy.deepcopy(load_event("batch_s3_put.json"))
    listed = batch.s3.list_object_versions(Bucket=INPUT_BUCKET, Prefix="batch/twice.csv")
    obj = event["Records"][0]["s3"]
    obj["bucket"]["name"] = INPUT_BUCKET
    obj["object"].update(key="batch/twice.csv", versionId=listed["Versions"][0]["VersionId"])
    again = summary_of(batch, dict(batch.invoke(event)))
    assert again["job_id"] == first["job_id"]
    assert len(batch.keys(f"batch-output/{first['job_id']}/parts/part-")) == 1


# --- large files: the state machine -----------------------------------------------------------


def test_past_the_threshold_the_state_machine_starts_once_with_the_job(
    tiny_threshold: Batch,
) -> None:
    batch = tiny_threshold
    body = as_csv(houses(40))
    result = batch.upload("batch/big.csv", body)
    (job,) = result["jobs"]
    assert job["engine"] == "step-functions"
    sfn = boto3.client("stepfunctions")
    (execution,) = sfn.list_executions(stateMachineArn=ENV["STATE_MACHINE_ARN"])["executions"]
    assert execution["name"] == job["job_id"]
    started = json.loads(sfn.describe_execution(executionArn=execution["executionArn"])["input"])
    assert started["job"]["key"] == "batch/big.csv"
    assert started["job"]["size"] == len(body)
    assert started["job"]["map_results_prefix"].startswith(f"batch-output/{job['job_id']}/")
    marker = batch.json(f"batch-output/{job['job_id']}/job.json")
    assert marker["status"] == "running"


def test_past_the_threshold_a_bad_header_is_rejected_without_a_state_machine(
    tiny_threshold: Batch,
) -> None:
    batch = tiny_threshold
    summary = summary_of(batch, batch.upload("batch/big.csv", b"a,b\n" + b"1,2\n" * 500))
    assert summary["status"] == "rejected"
    assert "sqft" in json.dumps(summary["problems"])
    sfn = boto3.client("stepfunctions")
    assert sfn.list_executions(stateMachineArn=ENV["STATE_MACHINE_ARN"])["executions"] == []


def map_event(batch: Batch, rows: list[dict[str, str]], start: int) -> dict[str, Any]:
    event = copy.deepcopy(load_event("batch_map_items.json"))
    event["BatchInput"]["job"]["bucket"] = INPUT_BUCKET
    event["Items"] = [{"index": start + i, "row": row} for i, row in enumerate(rows)]
    return event


def test_a_map_batch_writes_its_part_and_returns_its_small_summary(batch: Batch) -> None:
    # The sample event as Step Functions sends it (its second row is bad)
    event = copy.deepcopy(load_event("batch_map_items.json"))
    event["BatchInput"]["job"]["bucket"] = INPUT_BUCKET
    result = batch.invoke(event)
    job = event["BatchInput"]["job"]
    prefix = f"batch-output/{job['job_id']}/parts/"
    assert result == batch.json(f"{prefix}part-{1:012d}.json")
    assert (result["rows"], result["scored"], result["rejected"]) == (3, 2, 1)
    assert result["part_key"] == f"{prefix}part-{1:012d}.csv"
    predicted = read_csv(batch.text(result["part_key"]))
    assert [r["row"] for r in predicted] == ["1", "3"]
    rows = [item["row"] for item in event["Items"]]
    assert [float(r["prediction"]) for r in predicted] == pytest.approx(
        expected(batch, "1", [rows[0], rows[2]]), rel=1e-12
    )
    # A retried batch overwrites its part: same keys, nothing added
    before = batch.keys(prefix)
    batch.invoke(event)
    assert batch.keys(prefix) == before


def test_summarize_adds_up_the_parts(batch: Batch) -> None:
    rows = houses(12)
    rows[10]["year_built"] = "1799"  # min 1800
    for start in (0, 5, 10):
        batch.invoke(map_event(batch, rows[start : start + 5], start))
    event = copy.deepcopy(load_event("batch_summarize.json"))
    event["summarize"]["job"]["bucket"] = INPUT_BUCKET
    event["summarize"]["map"] = {"MapRunArn": None}  # no counts: nothing failed is known
    result = batch.invoke(event)
    summary = batch.json(result["summary"].split("/", 3)[3])
    assert (summary["rows"], summary["scored"], summary["rejected"], summary["parts"]) == (
        12,
        11,
        1,
        3,
    )
    assert summary["rejected_by_reason"] == {"below_min": 1}
    assert (summary["status"], summary["engine"]) == ("succeeded", "step-functions")


def test_summarize_after_a_failed_map_says_so(batch: Batch) -> None:
    batch.invoke(map_event(batch, houses(3), 0))
    event = copy.deepcopy(load_event("batch_summarize.json"))
    event["summarize"]["job"]["bucket"] = INPUT_BUCKET
    del event["summarize"]["map"]
    event["summarize"]["error"] = {"Error": "States.ExceedToleratedFailureThreshold", "Cause": "x"}
    summary = batch.json(batch.invoke(event)["summary"].split("/", 3)[3])
    assert summary["status"] == "partial"
    assert "ExceedToleratedFailureThreshold" in summary["error"]


@pytest.mark.parametrize(
    "event",
    [
        {"Items": [{"row": {}}], "BatchInput": {"job": {}}},
        {
            "Items": [],
            "BatchInput": {"job": load_event("batch_map_items.json")["BatchInput"]["job"]},
        },
        {"summarize": {"job": {"job_id": "../x"}}},
        {"summarize": "job"},
        {"something": "else"},
    ],
    ids=["no job", "no items", "bad job", "summarize not an object", "unknown"],
)
def test_an_event_of_another_shape_is_refused_naming_it(batch: Batch, event: Any) -> None:
    with pytest.raises(InvalidEventError):
        batch.invoke(event)


Check = Callable[[Batch], None]


@pytest.mark.parametrize(("over", "engine"), [(0, "lambda"), (1, "step-functions")])
def test_the_threshold_is_inclusive(trained: dict[str, Any], over: int, engine: str) -> None:
    body = as_csv(houses(20))
    for batch in make_batch(trained, LAMBDA_MAX_BYTES=str(len(body) - over)):
        (job,) = batch.upload("batch/edge.csv", body)["jobs"]
        assert job["engine"] == engine


def test_invalid_utf8_deep_in_a_file_stops_the_job_there_keeping_what_was_scored(
    batch: Batch,
) -> None:
    # Past the 64 KiB the header check reads, and past two chunks of 40 rows
    rows = houses(1600)
    rows[1500]["location"] = "Zürich"
    body = as_csv(rows).replace("Zürich".encode(), "Z\xfcrich".encode("latin-1"))
    assert body.index(b"Z\xfcrich") > 64 * 1024
    summary = summary_of(batch, batch.upload("batch/mixed.csv", body))
    assert summary["status"] == "rejected"
    assert "not UTF-8" in summary["error"]
    assert 0 < summary["scored"] < 1501
    assert summary["rows"] == summary["scored"]


@pytest.mark.parametrize(
    ("memory_mb", "threads"),
    [("1769", 1), ("3537", 1), ("3538", 1), ("5306", 1), ("5307", 2), ("10240", 4)],
)
def test_the_function_memory_sets_the_scoring_threads(
    trained: dict[str, Any], memory_mb: str, threads: int
) -> None:
    # Lambda's memory (AWS_LAMBDA_FUNCTION_MEMORY_SIZE, MB) buys vCPUs at 1,769 MB each: one
    # parses the next chunk, the others score (each bound exactly on it and one below it)
    for batch in make_batch(trained, AWS_LAMBDA_FUNCTION_MEMORY_SIZE=memory_mb):
        summary_of(batch, batch.upload("batch/threads.csv", as_csv(houses(5))))
        service = batch_scoring.batch_service()
        (loaded,) = service._loaded.values()
        options = loaded.model._session.get_session_options()
        assert options.intra_op_num_threads == threads


def test_a_part_that_cannot_be_written_fails_the_job_after_the_parts_before_it(
    batch: Batch, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given S3 refusing the third part's predictions (parts are written on a worker thread
    # while the next chunk is parsed)
    service = batch_scoring.batch_service()
    real_write = service._write_part
    written: list[int] = []

    def write_part(job: Any, loaded: Any, chunk: Any, timings: Any) -> Any:
        if int(chunk.rows[0]) == 81:
            raise StorageError("S3 refused the part")
        written.append(int(chunk.rows[0]))
        return real_write(job, loaded, chunk, timings)

    monkeypatch.setattr(service, "_write_part", write_part)
    # When 120 rows (three chunks of 40) are uploaded
    # Then the error surfaces (Lambda retries the invocation) and the parts before it were
    # written in order, none after
    with pytest.raises(StorageError):
        batch.upload("batch/refused.csv", as_csv(houses(120)))
    assert written == [1, 41]
