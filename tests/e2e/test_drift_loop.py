"""Drift end to end on the local stack, as on AWS: drifted traffic over HTTP → capture lines →
the logger's sketches and captures → the scheduled DriftEvaluatorFunction (its own process,
fired by the template's schedule, accelerated) → a drift report (JSON + HTML) and a
RetrainRequested event on the bus → the rule → RetrainerFunction."""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import numpy as np
import pytest

from mlops.domain.synthetic import conditions_for_month, generate
from mlops_cli.emulator.runner import RunningStack, start_local
from mlops_cli.emulator.stack import free_port
from tests.conftest import ROOT

pytestmark = pytest.mark.e2e
FEATURES = [
    "sqft", "bedrooms", "bathrooms", "year_built", "lot_size", "distance_to_center",
    "interest_rate", "location", "property_type",
]  # fmt: skip


@pytest.fixture(scope="module")
def running() -> Iterator[RunningStack]:
    stack = start_local(
        ROOT / "template.yaml", port=free_port(), quiet_functions=True, schedule_seconds=4
    )
    yield stack
    stack.stop()


def s3(running: RunningStack) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=running.stack.endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def documents(running: RunningStack, prefix: str) -> list[dict[str, Any]]:
    client = s3(running)
    bucket = running.target.output("ArtifactsBucketName")
    listed = client.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
    return [
        json.loads(client.get_object(Bucket=bucket, Key=o["Key"])["Body"].read())
        for o in listed
        if o["Key"].endswith(".json") and "/state/" not in o["Key"]
    ]


def eventually(check: Callable[[], Any], timeout: float = 90.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (result := check()) and time.monotonic() < deadline:
        time.sleep(0.5)
    return result


def post(url: str, body: dict[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(
        url, json.dumps(body).encode(), {"content-type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return dict(json.loads(response.read()))


def test_drifted_traffic_yields_a_drift_report_and_a_retrain_request(
    running: RunningStack,
) -> None:
    # When month 6 of the market (new district, higher rates, bigger homes) is served
    columns = generate(600, conditions_for_month(6), seed=66)
    for start in range(0, 600, 100):
        instances = [
            {n: (v.item() if isinstance(v := columns[n][i], np.generic) else v) for n in FEATURES}
            for i in range(start, start + 100)
        ]
        answer = post(f"{running.api.url}/predict", {"instances": instances})
        assert len(answer["predictions"]) == 100

    # Then a scheduled evaluation sees it and reports drift
    def drifted() -> dict[str, Any] | None:
        return next(
            (d for d in documents(running, "reports/drift/") if d["verdict"]["status"] == "drift"),
            None,
        )

    report = eventually(drifted)
    assert report is not None, [d["verdict"] for d in documents(running, "reports/drift/")]
    assert report["mode"] == "exact"
    assert report["rows"] == 600
    assert {"interest_rate", "location"} <= set(report["verdict"]["drifted"])
    assert report["verdict"]["retrain_requested"]

    # And the request reached the retrainer through the bus rule: the only data under the
    # training prefix is the file v1 was trained from, kept there at start, and the shipped
    # policy trains on the upload alone, so it answers under its own request: nothing new
    def answered() -> dict[str, Any] | None:
        return next(
            (
                d
                for d in documents(running, "reports/retrain/")
                if (d.get("trigger") or {}).get("kind") == "retrain_request"
                and d.get("kind") != "training_data"  # the data report comes first
            ),
            None,
        )

    retrain = eventually(answered)
    assert retrain is not None
    assert retrain["trigger"]["report_uri"].endswith(".json")
    assert "reports/drift/" in retrain["trigger"]["report_uri"]
    assert retrain["kind"] == "retrain_skipped"
    assert "is the data v1 was trained from" in retrain["reason"]
