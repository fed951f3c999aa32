"""A new user's own dataset, from CSV to served predictions, exactly as the README tells it:
a config of their own, `mlops local --config`, `mlops train` — no house prices anywhere."""

from __future__ import annotations

import json
import signal
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from tests.datasets import bikes, write_csv
from tests.e2e.conftest import MLOPS, start_local, user_env
from tests.e2e.test_local_stack import call

pytestmark = pytest.mark.e2e

BIKES_CONFIG = """
name = "bike-rentals"
task = "regression"
target = "rentals"

[[features]]
name = "temperature"
type = "numeric"
min = -30
max = 50

[[features]]
name = "humidity"
type = "numeric"

[[features]]
name = "season"
type = "categorical"

[estimator]
type = "hist_gradient_boosting"
params = { max_iter = 40 }
"""

CHURN_CONFIG = """
name = "churn"
task = "classification"
target = "churned"

[[features]]
name = "tenure_months"
type = "numeric"
min = 0

[[features]]
name = "plan"
type = "categorical"

[estimator]
type = "logistic_regression"
params = {}
"""


def churn(path: Path) -> Path:
    rng = np.random.default_rng(2)
    rows: list[list[object]] = []
    for _ in range(400):
        tenure, plan = int(rng.integers(0, 72)), str(rng.choice(["basic", "pro"]))
        rows.append([tenure, plan, int(tenure < 12)])
    return write_csv(path, ["tenure_months", "plan", "churned"], rows)


@contextmanager
def local_stack(cwd: Path, *args: str) -> Iterator[tuple[str, list[str]]]:
    running = start_local(cwd, *args)
    try:
        yield running.url, running.lines
    finally:
        running.process.send_signal(signal.SIGINT)
        try:
            running.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            running.process.kill()


def test_a_regression_model_of_your_own_served_from_the_first_start(tmp_path: Path) -> None:
    # Given a config and a CSV that are not house prices
    (tmp_path / "bikes.toml").write_text(BIKES_CONFIG)
    data = bikes(tmp_path / "bikes.csv")
    # When the stack starts with them
    with local_stack(tmp_path, "--config", "bikes.toml", "--data", str(data)) as (url, lines):
        # Then the banner says what it trained, and the API serves that model
        assert any(
            line.startswith("Trained and promoted bike-rentals v1 from ") for line in lines
        ), lines
        status, model = call(f"{url}/model")
        assert status == 200
        assert model["model_name"] == "bike-rentals"
        assert [f["name"] for f in model["signature"]["features"]] == [
            "temperature",
            "humidity",
            "season",
        ]
        warm = {"temperature": 30, "humidity": 40, "season": "summer"}
        cold = {"temperature": -2, "humidity": 90, "season": "winter"}
        status, body = call(f"{url}/predict", {"instances": [warm, cold]})
        assert status == 200
        assert body["predictions"][0] > body["predictions"][1]
        status, body = call(f"{url}/predict", {"instances": [{**warm, "temperature": 80}]})
        assert status == 400
        assert body["error"]["details"][0]["field"] == "instances[0].temperature"


def test_a_classifier_of_your_own_answers_503_until_mlops_train(tmp_path: Path) -> None:
    (tmp_path / "churn.toml").write_text(CHURN_CONFIG)
    data = churn(tmp_path / "churn.csv")
    with local_stack(tmp_path, "--config", "churn.toml") as (url, lines):
        # Given a stack started with a config of your own and no data: nothing is trained
        assert any(line.startswith("No churn model yet") for line in lines), lines
        status, body = call(f"{url}/predict", {"instances": [{"tenure_months": 3, "plan": "pro"}]})
        assert status == 503
        assert body["error"]["code"] == "model_unavailable"
        # When the user trains v1 with their CSV and config, from the same folder
        trained = subprocess.run(
            [*MLOPS, "train", "--data", str(data), "--config", "churn.toml"],
            cwd=tmp_path,
            env=user_env(tmp_path),
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert trained.returncode == 0, trained.stdout + trained.stderr
        assert "Registered churn v1 and promoted it" in trained.stdout
        # (quietly: no metric or log JSON on the console without --verbose)
        printed = (trained.stdout + trained.stderr).splitlines()
        assert not [line for line in printed if line.lstrip().startswith("{")], printed
        # Then predictions are served (within the local 2 s alias refresh), labels as trained
        status, body = call(f"{url}/predict", {"instances": [{"tenure_months": 2, "plan": "pro"}]})
        for _ in range(40):
            if status == 200:
                break
            threading.Event().wait(0.5)
            status, body = call(
                f"{url}/predict", {"instances": [{"tenure_months": 2, "plan": "pro"}]}
            )
        assert status == 200, body
        assert body["predictions"] == [1]
        assert set(body["probabilities"][0]) == {"0", "1"}


def test_training_another_models_config_against_the_stack_is_refused(tmp_path: Path) -> None:
    (tmp_path / "churn.toml").write_text(CHURN_CONFIG)
    (tmp_path / "bikes.toml").write_text(BIKES_CONFIG)
    data = bikes(tmp_path / "bikes.csv")
    with local_stack(tmp_path, "--config", "churn.toml"):
        refused = subprocess.run(
            [*MLOPS, "train", "--data", str(data), "--config", "bikes.toml"],
            cwd=tmp_path,
            env=user_env(tmp_path),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert refused.returncode == 2
        assert "the config trains 'bike-rentals' but the local stack" in refused.stderr
        assert "serves 'churn'" in refused.stderr
        status = json.loads(
            subprocess.run(
                [*MLOPS, "status", "--json"],
                cwd=tmp_path,
                env=user_env(tmp_path),
                capture_output=True,
                check=True,
            ).stdout
        )
        assert status["versions"] == []


def test_a_stale_state_file_says_the_stack_is_not_running(tmp_path: Path) -> None:
    # Given the state file of a stack that was killed (no Ctrl-C cleanup)
    (tmp_path / ".mlops").mkdir()
    (tmp_path / ".mlops" / "local.json").write_text(
        json.dumps({"pid": 2**22 + 7, "endpoint": "http://127.0.0.1:9", "outputs": {}})
    )
    result = subprocess.run(
        [*MLOPS, "status"],
        cwd=tmp_path,
        env=user_env(tmp_path),
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.startswith("error: the local stack is not running")
    assert not (tmp_path / ".mlops" / "local.json").exists()
