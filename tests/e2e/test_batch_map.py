"""Batch scoring past the Lambda threshold on the real template: `mlops batch` uploads a CSV
under the batch prefix, BatchScoringFunction starts BatchScoringStateMachine, the local stack
runs its Distributed Map (CSV ItemReader, ItemBatcher, the function per batch in its own
awslambdaric process, ResultWriter) and then its Summarize task, and the summary accounts for
every row: the predictions and the rejected-rows report."""

from __future__ import annotations

import csv
import fnmatch
import io
import json
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from tests.e2e.conftest import MLOPS, Running, start_local, user_env

pytestmark = pytest.mark.e2e
ROWS = 2500


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    # 1 KB: any real file takes the Step Functions path.
    running = start_local(
        tmp_path_factory.mktemp("batch-map"), "--parameter-overrides", "BatchLambdaMaxBytes=1024"
    )
    yield running
    running.process.send_signal(signal.SIGINT)
    running.process.wait(timeout=30)


def client(cwd: Path, service: str) -> Any:
    state = json.loads((cwd / ".mlops" / "local.json").read_text())
    return boto3.client(
        service,
        endpoint_url=state["endpoint"],
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def test_a_file_past_the_threshold_is_scored_by_the_distributed_map(
    stack: Running, tmp_path: Path
) -> None:
    from mlops.domain.synthetic import conditions_for_month, csv_bytes, generate

    # Given 2,500 houses with an id column and three bad rows (in different batches)
    text = csv_bytes(generate(ROWS, conditions_for_month(1), seed=11)).decode()
    rows = [{"house": f"H{i}", **row} for i, row in enumerate(csv.DictReader(io.StringIO(text)))]
    rows[5]["sqft"] = "big"
    rows[1500]["location"] = ""
    rows[2400]["bedrooms"] = "nan"
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    data = tmp_path / "portfolio.csv"
    data.write_text(out.getvalue())

    # When it is scored with `mlops batch`
    run = subprocess.run(
        [*MLOPS, "batch", "--data", str(data), "--id-column", "house", "--json"],
        cwd=stack.cwd,
        env=user_env(stack.cwd),
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )

    # Then the Step Functions path scored every good row and reported every bad one
    assert run.returncode == 0, run.stderr + "\n".join(stack.lines[-30:])
    summary = json.loads(run.stdout.strip().splitlines()[-1])
    assert (summary["status"], summary["engine"]) == ("succeeded", "step-functions")
    assert (summary["rows"], summary["scored"], summary["rejected"]) == (ROWS, ROWS - 3, 3)
    assert sum(summary["rejected_by_reason"].values()) == 3
    # and the objects it names hold them: one prediction per scored row, the rejected rows
    s3 = client(stack.cwd, "s3")
    bucket = summary["input"]["bucket"]
    predictions = _rows(s3, bucket, summary["predictions"])
    rejected = _rows(s3, bucket, summary["rejected_rows"])
    assert len(predictions) == ROWS - 3
    assert {r["house"] for r in predictions} == {f"H{i}" for i in range(ROWS)} - {
        "H5",
        "H1500",
        "H2400",
    }
    assert sorted(r["id"] for r in rejected) == ["H1500", "H2400", "H5"]


def _rows(s3: Any, bucket: str, uri: str) -> list[dict[str, str]]:
    """Every CSV row of the objects ``uri`` names (``s3://bucket/prefix/part-*.csv``)."""
    pattern = uri.removeprefix(f"s3://{bucket}/")
    prefix = pattern.split("*", 1)[0]
    out: list[dict[str, str]] = []
    paginator = s3.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            if fnmatch.fnmatchcase(obj["Key"], pattern):
                body = s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read().decode()
                out.extend(csv.DictReader(io.StringIO(body)))
    return out
