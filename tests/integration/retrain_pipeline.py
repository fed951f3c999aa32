"""The retraining pipeline driven through its real handlers against moto, for the tests:
real-shaped S3 notifications and Lambda destination records, a versioned training bucket, the
idempotency table, and the stack's config in S3."""

from __future__ import annotations

import contextlib
import copy
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import ModuleType
from typing import Any

import boto3
import pytest

from mlops import settings
from mlops.adapters import aws
from mlops.adapters.model_store import ModelStore
from mlops.adapters.registry import Registry
from mlops.domain.synthetic import conditions_for_month, csv_bytes, generate
from mlops_cli.emulator.s3_limits import refuse_long_keys
from mlops_cli.emulator.stack import LambdaContext
from tests.conftest import BUCKET, ROOT, TABLE, import_fresh, load_event, moto_resources
from tests.integration.traffic import Traffic

TRAINING_BUCKET = "test-training-data"
IDEMPOTENCY_TABLE = "test-idempotency"
PREFIX = "training-data/"
MODEL = "house-prices"
ENV = {
    "MODEL_NAME": MODEL,
    "MODEL_BUCKET": BUCKET,
    "CAPTURE_BUCKET": BUCKET,
    "REGISTRY_TABLE": TABLE,
    "TRAINING_BUCKET": TRAINING_BUCKET,
    "TRAINING_PREFIX": PREFIX,
    "IDEMPOTENCY_TABLE": IDEMPOTENCY_TABLE,
    "POWERTOOLS_METRICS_NAMESPACE": "ServerlessMLOps",
}
DEFAULT_CONFIG = (ROOT / "layers/core/mlops/defaults/house_prices.toml").read_text()
FAST_CONFIG = DEFAULT_CONFIG.replace("max_iter = 200", "max_iter = 60")
WINDOW_CONFIG = FAST_CONFIG.replace('training_set = "new_object"', 'training_set = "window"')
# A challenger that passes goes straight to production (the default starts a canary).
DIRECT_CONFIG = FAST_CONFIG.replace('mode = "canary"', 'mode = "direct"')
FIXED_NOW = datetime(2026, 11, 29, 1, 0, 0, tzinfo=UTC)


def month(number: int, rows: int = 1500, seed: int | None = None) -> bytes:
    return csv_bytes(
        generate(rows, conditions_for_month(number), seed=number if seed is None else seed)
    )


@dataclass
class Pipeline:
    retrainer: ModuleType
    gate: ModuleType
    store: ModelStore
    registry: Registry
    s3: Any

    def config(self, text: str) -> None:
        self.s3.put_object(Bucket=BUCKET, Key=f"config/{MODEL}.toml", Body=text.encode())

    def upload(
        self, name: str, body: bytes, metadata: dict[str, str] | None = None
    ) -> dict[str, Any]:
        key = PREFIX + name
        put = self.s3.put_object(
            Bucket=TRAINING_BUCKET, Key=key, Body=body, Metadata=metadata or {}
        )
        event = copy.deepcopy(load_event("s3_put.json"))
        record = event["Records"][0]
        record["s3"]["bucket"]["name"] = TRAINING_BUCKET
        record["s3"]["object"].update(
            key=key.replace(" ", "+"),
            size=len(body),
            eTag=put["ETag"].strip('"'),
            versionId=put["VersionId"],
        )
        return event

    def retrain(self, event: dict[str, Any]) -> dict[str, Any]:
        return dict(self.retrainer.lambda_handler(event, LambdaContext("RetrainerFunction")))

    def record(self, event: dict[str, Any], response: dict[str, Any]) -> dict[str, Any]:
        return {
            "version": "1.0",
            "timestamp": "2026-11-29T01:00:00.000Z",
            "requestContext": {
                "requestId": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
                "functionArn": "arn:aws:lambda:us-east-1:123456789012:function:retrainer:$LATEST",
                "condition": "Success",
                "approximateInvokeCount": 1,
            },
            "requestPayload": event,
            "responseContext": {"statusCode": 200, "executedVersion": "$LATEST"},
            "responsePayload": response,
        }

    def judge(self, event: dict[str, Any], response: dict[str, Any]) -> dict[str, Any]:
        record = self.record(event, response)
        return dict(self.gate.lambda_handler(record, LambdaContext("CandidateGateFunction")))

    def run(self, name: str, body: bytes) -> tuple[dict[str, Any], dict[str, Any]]:
        event = self.upload(name, body)
        response = self.retrain(event)
        return response, self.judge(event, response)

    def serve(self, number: int, rows: int = 600, seed: int = 99) -> None:
        """Month ``number``'s houses served by production an hour ago and labeled since: the
        recent labeled traffic the gate also judges a challenger on."""
        columns = generate(rows, conditions_for_month(number), seed=seed)
        houses = [
            {k: (v[i].item() if hasattr(v[i], "item") else v[i]) for k, v in columns.items()}
            for i in range(rows)
        ]
        when = datetime.now(UTC) - timedelta(hours=1)
        Traffic.in_bucket(self.s3).labeled(when, houses, "price")

    def keys(self, prefix: str) -> list[str]:
        listing = self.s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix)
        return sorted(o["Key"] for o in listing.get("Contents", []))

    def report(self, uri: str) -> dict[str, Any]:
        return dict(self.store.get_json(uri.removeprefix(f"s3://{BUCKET}/")))

    def versions(self) -> list[str]:
        return [v.version for v in self.registry.list_versions(MODEL)]


@contextlib.contextmanager
def pipeline_in_moto() -> Iterator[Pipeline]:
    """moto with the buckets and tables, both handlers imported afresh, the fast config; S3
    refuses a key over 1,024 bytes, as AWS does."""
    with moto_resources(ENV), refuse_long_keys():
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket=TRAINING_BUCKET)
        s3.put_bucket_versioning(
            Bucket=TRAINING_BUCKET, VersioningConfiguration={"Status": "Enabled"}
        )
        boto3.client("dynamodb").create_table(
            TableName=IDEMPOTENCY_TABLE,
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        settings.retrainer_settings.cache_clear()
        settings.gate_settings.cache_clear()
        retrainer = import_fresh("retrainer_under_test", ROOT / "functions/retrainer/app.py")
        gate = import_fresh("gate_under_test", ROOT / "functions/candidate_gate/app.py")
        line = Pipeline(
            retrainer,
            gate,
            ModelStore(BUCKET, aws.client("s3")),
            Registry(TABLE, aws.client("dynamodb")),
            s3,
        )
        line.config(FAST_CONFIG)
        yield line


def only(response: dict[str, Any]) -> dict[str, Any]:
    assert len(response["results"]) == 1
    return dict(response["results"][0])


def decision(response: dict[str, Any]) -> dict[str, Any]:
    assert len(response["decisions"]) == 1
    return dict(response["decisions"][0])


def emitted(capsys: pytest.CaptureFixture[str]) -> dict[str, float]:
    totals: dict[str, float] = {}
    for line in capsys.readouterr().out.splitlines():
        if not line.startswith("{") or "_aws" not in line:
            continue
        blob = json.loads(line)
        for directive in blob["_aws"]["CloudWatchMetrics"]:
            for metric in directive["Metrics"]:
                value = blob[metric["Name"]]
                totals[metric["Name"]] = totals.get(metric["Name"], 0) + (
                    sum(value) if isinstance(value, list) else value
                )
    return totals
