"""Batch predictions are captured (``source = batch``) beside live traffic, in the same hour
partitions, and never move a live verdict: neither their rows nor labels sent for their
prediction ids reach the rollout judge, live quality or labeled traffic. (Mirrors
test_evaluation_traffic.py for evaluation traffic.)"""

from __future__ import annotations

import csv
import gzip
import io
import json
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest

from mlops.adapters import aws
from mlops.adapters.batch_store import BatchStore
from mlops.adapters.state_machine import StateMachine
from mlops.domain.layout import CAPTURES
from mlops.services.batch_scoring import BatchScoringService
from mlops.services.rollout import RolloutService
from mlops.settings import BatchSettings
from tests.conftest import BUCKET, TABLE, http_event, load_event
from tests.integration.conftest import invoker
from tests.integration.rollout_stack import MODEL, Stack, market_csv, predict

INPUT = "test-batch-input"


def run_batch(stack: Stack, now: datetime, rows: int) -> list[dict[str, str]]:
    """A batch job of ``rows`` houses, started ``now`` (the live traffic's hour); its
    predictions as the part CSV lists them."""
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=INPUT)
    body = market_csv(4, rows, seed=77)
    put = s3.put_object(Bucket=INPUT, Key="batch/month4.csv", Body=body)
    service = BatchScoringService(
        BatchStore(aws.client("s3")),
        stack.store,
        stack.registry,
        StateMachine("arn:aws:states:us-east-1:123456789012:stateMachine:x", None),
        BatchSettings(
            model_name=MODEL,
            model_bucket=BUCKET,
            capture_bucket=BUCKET,
            registry_table=TABLE,
            batch_prefix="batch/",
            state_machine_arn="arn:aws:states:us-east-1:123456789012:stateMachine:x",
        ),
        clock_ms=lambda: int(now.timestamp() * 1000),
    )
    event = load_event("batch_s3_put.json")
    obj = event["Records"][0]["s3"]
    obj["bucket"]["name"] = INPUT
    obj["object"].update(key="batch/month4.csv", eTag=put["ETag"].strip('"'), versionId=None)
    (job,) = service.start(event)
    assert job["status"] == "succeeded"
    key = f"batch-output/{job['job_id']}/parts/part-{1:012d}.csv"
    text = s3.get_object(Bucket=INPUT, Key=key)["Body"].read().decode()
    return list(csv.DictReader(io.StringIO(text)))


def test_batch_rows_and_their_labels_never_move_live_verdicts(
    rollout_stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a 50 % canary with 300 labeled live predictions
    from tests.integration.rollout_stack import market_rows

    stack = rollout_stack
    stack.configure(metric="mape")
    stack.rollouts.start("2", mode="canary", percent=50.0, reason="test")
    invoke = invoker(stack.handler())
    instances, prices = market_rows(4, 300, seed=41)
    capsys.readouterr()
    for start in range(0, 300, 10):
        answer = predict(invoke, {"instances": instances[start : start + 10]})
        items = [
            {"prediction_id": pid, "actual": float(prices[start + i])}
            for i, pid in enumerate(answer["prediction_ids"])
        ]
        assert invoke(http_event("http_feedback.json", {"feedback": items}))["statusCode"] == 202
    served = capsys.readouterr().out
    live = [json.loads(x) for x in served.splitlines() if '"type":"capture"' in x]
    now = datetime.now(UTC)
    # When a batch of 200 rows is scored in the same hour, and labels are sent for every one
    # of its prediction ids (wildly wrong ones, which would sink any quality they reached)
    predicted = run_batch(stack, now, 200)
    assert len(predicted) == 200
    labels = [{"prediction_id": r["prediction_id"], "actual": 1.0} for r in predicted]
    for start in range(0, 200, 100):
        body = {"feedback": labels[start : start + 100]}
        assert invoke(http_event("http_feedback.json", body))["statusCode"] == 202
    stack.store_output(served + capsys.readouterr().out)
    # Then the batch rows sit in the capture partitions beside the live ones, flagged
    s3 = boto3.client("s3")
    keys = [
        o["Key"]
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=CAPTURES)
        for o in page.get("Contents", [])
    ]
    batch_keys = [k for k in keys if k.rsplit("/", 1)[1].startswith("batch-")]
    assert len(batch_keys) == 1
    rows = [
        json.loads(line)
        for line in gzip.decompress(s3.get_object(Bucket=BUCKET, Key=batch_keys[0])["Body"].read())
        .decode()
        .splitlines()
    ]
    assert {r["source"] for r in rows} == {"batch"}
    # And the rollout judge (from digests and labeled documents, and from every capture)
    # counts the live rows and labels only
    common: dict[str, Any] = {
        "model": MODEL,
        "store": stack.store,
        "registry": stack.registry,
        "actor": "test",
        "clock": lambda: now,
    }
    digests = RolloutService(
        **common, sketches=stack.rollouts._sketches, labels=stack.rollouts._labels
    ).evaluate(act=False)
    captures = RolloutService(**common, traffic=stack.rollouts._traffic).evaluate(act=False)
    assert digests is not None
    assert captures is not None
    per_variant = {
        variant: sum(len(c["prediction_ids"]) for c in live if c["variant"] == variant)
        for variant in ("production", "canary")
    }
    for verdict in (digests.verdict, captures.verdict):
        variants = verdict["variants"]
        assert variants["production"]["rows"] == per_variant["production"]
        assert variants["candidate"]["rows"] == per_variant["canary"]
        assert variants["production"]["labels"] == per_variant["production"]
        assert variants["candidate"]["labels"] == per_variant["canary"]
    # The fold joined the live labels only; the batch ones wait unjoined (counted), then expire
    folded = digests.verdict["sources"]["labels"]["folded"]
    assert (folded["labels"], folded["joined"], folded["pending"]) == (500, 300, 200)
