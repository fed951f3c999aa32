"""`mlops local` as a user runs it: a subprocess serving HTTP on loopback, driven with the CLI."""

from __future__ import annotations

import csv
import fnmatch
import io
import json
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from tests.e2e.conftest import MLOPS, Running, start_local, user_env

pytestmark = pytest.mark.e2e
BATCH_MAP_ROWS = 2500
HOUSE = {
    "sqft": 2100,
    "bedrooms": 4,
    "bathrooms": 2,
    "year_built": 2005,
    "lot_size": 7000,
    "distance_to_center": 9.5,
    "interest_rate": 4.0,
    "location": "suburbs",
    "property_type": "house",
}


def call(url: str, body: Any = None, content_type: str = "application/json") -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"content-type": content_type})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.fixture(scope="module")
def local_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    # A batch threshold between the two batch tests' files: 250 rows (≈ 20 KB) are scored in
    # the invocation, 2,500 (≈ 200 KB) by the Distributed Map.
    running = start_local(
        tmp_path_factory.mktemp("local"),
        "--parameter-overrides",
        f"BatchLambdaMaxBytes={64 * 1024}",
    )
    yield running
    if running.process.poll() is None:
        running.process.kill()


def test_startup_prints_the_contract_lines_with_listening_last(local_stack: Running) -> None:
    printed = [line for line in local_stack.lines if not line.startswith("{")]
    assert any(line.startswith("AWS endpoint: http://127.0.0.1:") for line in printed)
    assert any(line.startswith("Training data: s3://") for line in printed)
    assert printed[-1] == f"Listening on {local_stack.url}"


def test_predictions_over_http_from_the_bootstrapped_v1(local_stack: Running) -> None:
    status, body = call(f"{local_stack.url}/predict", {"instances": [HOUSE, HOUSE]})
    assert status == 200
    assert body["model_version"] == "1"
    assert body["predictions"][0] == body["predictions"][1] > 100_000
    status, health = call(f"{local_stack.url}/health")
    assert (status, health) == (
        200,
        {"status": "ok", "model_version": "1", "alias": "production", "alias_version": "1"},
    )


def test_bad_requests_and_unknown_routes_over_http(local_stack: Running) -> None:
    status, body = call(f"{local_stack.url}/predict", {"instances": [{**HOUSE, "sqft": "x"}]})
    assert status == 400
    assert body["error"]["details"] == [
        {"field": "instances[0].sqft", "problem": 'expected a finite number, got "x"'}
    ]
    status, body = call(f"{local_stack.url}/feedback-does-not-exist", {"x": 1})
    assert status == 404


def test_cli_trains_a_new_version_against_the_running_stack(
    local_stack: Running, tmp_path: Path
) -> None:
    # Given a new month of data written with the CLI
    data = tmp_path / "month3.csv.gz"
    run = subprocess.run(
        [*MLOPS, "generate", "--month", "3", "--rows", "1500", "--out", str(data)],
        check=True,
        capture_output=True,
        text=True,
    )
    assert "Wrote 1500 rows" in run.stdout
    before = json.loads(
        subprocess.run(
            [*MLOPS, "status", "--json"],
            cwd=local_stack.cwd,
            env=user_env(local_stack.cwd),
            capture_output=True,
            check=True,
        ).stdout
    )
    expected = str(max(int(v["version"]) for v in before["versions"]) + 1)
    # When `mlops train` runs from the folder where `mlops local` runs
    run = subprocess.run(
        [*MLOPS, "train", "--data", str(data), "--json"],
        cwd=local_stack.cwd,
        env=user_env(local_stack.cwd),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    assert result["version"] == expected
    assert result["parity"]["passed"]
    # And an operator who reviewed it promotes it (month 3's market moved: the gate, with no
    # labeled traffic to show it, holds it until live labels clear it)
    assert result["status"] == "held", result
    promote = subprocess.run(
        [*MLOPS, "promote", expected, "--force", "--reason", "e2e: reviewed by hand"],
        cwd=local_stack.cwd,
        env=user_env(local_stack.cwd),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert promote.returncode == 0, promote.stderr
    # Then the stack serves it once the alias refresh interval (2 s locally) has passed
    deadline = time.monotonic() + 45
    version = None
    while version != expected and time.monotonic() < deadline:
        time.sleep(0.5)
        version = call(f"{local_stack.url}/predict", {"instances": [HOUSE]})[1]["model_version"]
    assert version == expected
    status = subprocess.run(
        [*MLOPS, "status", "--json"],
        cwd=local_stack.cwd,
        env=user_env(local_stack.cwd),
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(status.stdout)["aliases"] == {"production": expected}


def test_cli_rejects_bad_training_data_with_a_report(local_stack: Running, tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("sqft,price\n1000,1\n")
    run = subprocess.run(
        [*MLOPS, "train", "--data", str(bad)],
        cwd=local_stack.cwd,
        env=user_env(local_stack.cwd),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 1  # the training was refused: bad data, not bad usage
    assert "required column(s) missing" in run.stderr
    assert "bedrooms: required column missing from the header" in run.stderr


def test_the_stacks_s3_refuses_a_key_aws_would_refuse(local_stack: Running) -> None:
    # Given a boto3 client on the endpoint the stack printed
    endpoint = next(
        line.removeprefix("AWS endpoint: ")
        for line in local_stack.lines
        if line.startswith("AWS endpoint: ")
    )
    s3 = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    s3.create_bucket(Bucket="e2e-key-limit")
    # When a key of 1,025 bytes is written, Then S3's answer comes back (moto alone stores it)
    with pytest.raises(ClientError) as caught:
        s3.put_object(Bucket="e2e-key-limit", Key="k" * 1025, Body=b"x")
    assert caught.value.response["Error"]["Code"] == "KeyTooLongError"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    # And 1,024 bytes, the limit, are stored
    s3.put_object(Bucket="e2e-key-limit", Key="k" * 1024, Body=b"x")
    assert s3.head_object(Bucket="e2e-key-limit", Key="k" * 1024)["ContentLength"] == 1


def test_the_artifacts_bucket_carries_the_templates_retention_rules(local_stack: Running) -> None:
    # Given the running stack's artifacts bucket (its name from the stack's outputs)
    state = json.loads((local_stack.cwd / ".mlops" / "local.json").read_text())
    s3 = boto3.client(
        "s3",
        endpoint_url=state["endpoint"],
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    bucket = state["outputs"]["ArtifactsBucketName"]
    # When its lifecycle configuration is read, Then the template's rules are there with the
    # parameters' defaults (stored only: moto never expires an object)
    rules = {r["ID"]: r for r in s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]}
    expiry = {i: (r["Filter"]["Prefix"], r["Expiration"].get("Days")) for i, r in rules.items()}
    assert expiry == {
        "ExpireOldObjectVersions": ("", None),
        "ExpireStagedCandidates": ("staging/", 14),
        "ExpireCaptures": ("captures/", 90),
        "ExpireLabeledPredictions": ("labels/", 90),
        "ExpireFeedback": ("feedback/", 400),
        "ExpireQuarantine": ("quarantine/", 30),
        "ExpireSketches": ("sketches/", 100),
        "ExpireReports": ("reports/", 400),
    }
    kept = rules["ExpireOldObjectVersions"]
    assert kept["NoncurrentVersionExpiration"]["NoncurrentDays"] == 90
    assert kept["Expiration"] == {"ExpiredObjectDeleteMarker": True}


def test_mlops_batch_scores_a_file_through_the_stacks_s3_notification(
    local_stack: Running, tmp_path: Path
) -> None:
    """The upload under the batch prefix runs BatchScoringFunction in its own process (the
    template's S3 event); the command prints the summary it wrote."""
    from mlops.domain.synthetic import conditions_for_month, csv_bytes, generate

    # Given a file of 250 houses with an id column and two bad rows
    rows = list(
        csv.DictReader(
            io.StringIO(csv_bytes(generate(250, conditions_for_month(2), seed=5)).decode())
        )
    )
    rows = [{"house": f"H{i}", **row} for i, row in enumerate(rows)]
    rows[3]["sqft"] = "big"
    rows[200]["location"] = ""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    data = tmp_path / "portfolio.csv"
    data.write_text(out.getvalue())
    production = call(f"{local_stack.url}/health")[1]["model_version"]
    # When it is scored with `mlops batch`
    run = subprocess.run(
        [*MLOPS, "batch", "--data", str(data), "--id-column", "house", "--json"],
        cwd=local_stack.cwd,
        env=user_env(local_stack.cwd),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    # Then every row is scored or reported, in the invocation (a small file)
    assert run.returncode == 0, run.stderr
    summary = json.loads(run.stdout.strip().splitlines()[-1])
    assert (summary["status"], summary["engine"]) == ("succeeded", "lambda")
    assert (summary["rows"], summary["scored"], summary["rejected"]) == (250, 248, 2)
    assert summary["rejected_by_reason"] == {"empty": 1, "not_a_number": 1}
    assert summary["model_version"] == production
    assert summary["input"]["key"] == "batch/portfolio.csv"


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
    local_stack: Running, tmp_path: Path
) -> None:
    from mlops.domain.synthetic import conditions_for_month, csv_bytes, generate

    # Given 2,500 houses with an id column and three bad rows (in different batches)
    text = csv_bytes(generate(BATCH_MAP_ROWS, conditions_for_month(1), seed=11)).decode()
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
        cwd=local_stack.cwd,
        env=user_env(local_stack.cwd),
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )

    # Then the Step Functions path scored every good row and reported every bad one
    assert run.returncode == 0, run.stderr + "\n".join(local_stack.lines[-30:])
    summary = json.loads(run.stdout.strip().splitlines()[-1])
    assert (summary["status"], summary["engine"]) == ("succeeded", "step-functions")
    assert (summary["rows"], summary["scored"], summary["rejected"]) == (
        BATCH_MAP_ROWS,
        BATCH_MAP_ROWS - 3,
        3,
    )
    assert sum(summary["rejected_by_reason"].values()) == 3
    # and the objects it names hold them: one prediction per scored row, the rejected rows
    s3 = client(local_stack.cwd, "s3")
    bucket = summary["input"]["bucket"]
    predictions = _rows(s3, bucket, summary["predictions"])
    rejected = _rows(s3, bucket, summary["rejected_rows"])
    assert len(predictions) == BATCH_MAP_ROWS - 3
    assert {r["house"] for r in predictions} == {f"H{i}" for i in range(BATCH_MAP_ROWS)} - {
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


def test_ctrl_c_stops_the_stack_cleanly(local_stack: Running) -> None:
    local_stack.process.send_signal(signal.SIGINT)
    assert local_stack.process.wait(timeout=30) == 0
    time.sleep(0.2)
    assert "Stopping the local stack" in local_stack.lines
    assert not (local_stack.cwd / ".mlops" / "local.json").exists()
    with pytest.raises(urllib.error.URLError, match="refused"):
        urllib.request.urlopen(f"{local_stack.url}/health", timeout=2)
