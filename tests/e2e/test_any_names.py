"""A new user's own columns, named as their CSV names them (spaces, `/`, non-ASCII, a leading
digit), from config to served predictions, feedback, a drift report and a judged canary."""

from __future__ import annotations

import csv
import json
import threading
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import pytest

from tests.datasets import write_csv
from tests.e2e.conftest import mlops
from tests.e2e.test_local_stack import call
from tests.e2e.test_restart_and_folders import start_local, stop

pytestmark = pytest.mark.e2e

NUMERIC = ["mean radius", "od280/od315 ratio", "1st floor (m²)"]
CATEGORICAL = "catégorie"
TARGET = "prix de vente"

CONFIG = f"""
name = "odd-names"
task = "regression"
target = "{TARGET}"

[[features]]
name = "{NUMERIC[0]}"
type = "numeric"

[[features]]
name = "{NUMERIC[1]}"
type = "numeric"

[[features]]
name = "{NUMERIC[2]}"
type = "numeric"
min = 0

[[features]]
name = "{CATEGORICAL}"
type = "categorical"

[estimator]
type = "hist_gradient_boosting"
params = {{ max_iter = 30 }}
"""


def dataset(path: Path, seed: int, rows: int = 400) -> Path:
    rng = np.random.default_rng(seed)
    lines: list[list[object]] = []
    for _ in range(rows):
        radius, ratio, floor = rng.normal(10, 2), rng.uniform(1, 4), rng.uniform(20, 200)
        group = str(rng.choice(["nord", "sud"]))
        price = 3 * radius + 10 * ratio + 0.5 * floor + (20 if group == "sud" else 0)
        lines.append([round(radius, 3), round(ratio, 3), round(floor, 1), group, round(price, 2)])
    return write_csv(path, [*NUMERIC, CATEGORICAL, TARGET], lines)


def read_json(lines: list[str], uri: str) -> dict[str, Any]:
    """An object of the local stack's S3, read as a user would with boto3 at its endpoint."""
    endpoint = next(line.split(": ", 1)[1] for line in lines if line.startswith("AWS endpoint: "))
    bucket, key = uri.removeprefix("s3://").split("/", 1)
    s3 = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    return dict(json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read()))


def wait_for_rows(cwd: Path, rows: int) -> dict[str, Any]:
    """``mlops drift --no-act --json`` once it counts ``rows`` served rows (captures reach S3
    through the log subscription in a few seconds)."""
    drift: dict[str, Any] = {}
    for _ in range(60):
        result = mlops(cwd, "drift", "--no-act", "--json")
        assert result.returncode == 0, result.stderr
        drift = json.loads(result.stdout)
        if drift["rows"] >= rows:
            return drift
        threading.Event().wait(1)
    raise AssertionError(f"drift counted {drift.get('rows')} rows, expected {rows}")


def instance(radius: float = 10.0) -> dict[str, object]:
    return {NUMERIC[0]: radius, NUMERIC[1]: 2.0, NUMERIC[2]: 80.0, CATEGORICAL: "sud"}


def test_any_column_names_work_end_to_end(tmp_path: Path) -> None:
    (tmp_path / "odd.toml").write_text(CONFIG, encoding="utf-8")
    data = dataset(tmp_path / "odd.csv", seed=1)
    running = start_local(tmp_path, "--config", "odd.toml", "--data", str(data))
    try:
        # The signature, the API and its errors keep the user's names
        status, model = call(f"{running.url}/model")
        assert status == 200
        assert [f["name"] for f in model["signature"]["features"]] == [*NUMERIC, CATEGORICAL]
        status, body = call(f"{running.url}/predict", {"instances": [instance()]})
        assert status == 200, body
        status, bad = call(
            f"{running.url}/predict", {"instances": [{**instance(), NUMERIC[2]: -1}]}
        )
        assert status == 400
        assert bad["error"]["details"][0]["field"] == f"instances[0].{NUMERIC[2]}"
        # Feedback joins on the prediction ids, whatever the columns are called
        ids: list[str] = []
        for radius in np.linspace(6, 14, 60):
            status, body = call(f"{running.url}/predict", {"instances": [instance(radius)]})
            assert status == 200
            ids += body["prediction_ids"]
        labels = [{"prediction_id": i, "actual": 150.0} for i in ids]
        status, accepted = call(f"{running.url}/feedback", {"feedback": labels})
        assert (status, accepted) == (202, {"accepted": len(ids)})

        # Offline scoring keeps the names and is never captured: drift sees the 61 requests only
        served = wait_for_rows(tmp_path, 61)
        predicted = mlops(tmp_path, "predict", "--data", str(data), "--out", "scored.csv")
        assert predicted.returncode == 0, predicted.stderr
        assert "Scored 400 rows of" in predicted.stderr
        with (tmp_path / "scored.csv").open(newline="") as fh:
            scored = list(csv.DictReader(fh))
        assert len(scored) == 400
        assert {row["model_version"] for row in scored} == {"1"}
        assert all(float(row["prediction"]) > 0 for row in scored)
        assert wait_for_rows(tmp_path, 61)["rows"] == served["rows"] == 61

        # A canary of v2, judged now by `mlops drift` (report only), shown by `mlops rollout`
        trained = mlops(tmp_path, "train", "--data", str(dataset(tmp_path / "v2.csv", seed=2)),
                        "--no-promote")  # fmt: skip
        # (registered whatever the gate says: exit 0 as a candidate, 1 as rejected)
        assert "Registered odd-names v2 " in trained.stdout, trained.stderr
        started = mlops(tmp_path, "promote", "2", "--rollout", "canary:50", "--force", "--reason",
                        "e2e: any names")  # fmt: skip
        assert started.returncode == 0, started.stderr

        def ask(radius: float) -> str:
            status, body = call(f"{running.url}/predict", {"instances": [instance(radius)]})
            assert status == 200, body
            return str(body["model_version"])

        answered_by: list[str] = []
        for _ in range(60):  # the local alias refresh (2 s): until the canary answers
            answered_by.append(ask(10.0))
            if answered_by[-1] == "2":
                break
            threading.Event().wait(0.5)
        assert answered_by[-1] == "2", "the canary never answered"
        answered_by += [ask(radius) for radius in np.linspace(6, 14, 40)]
        # The drift report counts production's rows: the 61 before and v1's share since
        drift = wait_for_rows(tmp_path, 61 + answered_by.count("1"))
        report = read_json(running.lines, drift["report"])
        assert [f["name"] for f in report["features"]] == [*NUMERIC, CATEGORICAL]
        assert drift["rollout"]["version"] == "2"
        assert drift["rollout"]["decision"] in ("wait", "promote", "rollback")
        assert drift["rollout"]["acted"] is False
        shown = mlops(tmp_path, "rollout")
        assert shown.returncode == 0, shown.stderr
        assert "canary 50% of v2 against v1" in shown.stdout
        assert "Latest verdict (" in shown.stdout
    finally:
        stop(running)
