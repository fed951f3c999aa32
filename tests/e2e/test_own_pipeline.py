"""A new user brings their own scikit-learn pipeline: a factory in a code folder next to the
config, columns named with spaces, '/' and non-ASCII picked by position with ``columns()``, a
random forest behind our float32 cast. v1 is trained in the CLI at start, v2 by the retrainer
process (the code on its path as the ModelCodeLayer would put it), both with the code's digest."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import numpy as np
import pytest

from mlops.domain.model_code import code_digest
from tests.datasets import write_csv
from tests.e2e.conftest import mlops, start_local
from tests.e2e.test_any_names import read_json
from tests.e2e.test_local_stack import call
from tests.e2e.test_restart_and_folders import stop

pytestmark = pytest.mark.e2e

COLUMNS = ["monthly spend (€)", "tenure months", "plan/tier"]

CONFIG = """
name = "churn-own"
task = "classification"
target = "churned"

[[features]]
name = "monthly spend (€)"
type = "numeric"
min = 0

[[features]]
name = "tenure months"
type = "numeric"

[[features]]
name = "plan/tier"
type = "categorical"

[estimator]
factory = "churn_model:build"
code = "model_code"
params = { n_estimators = 30 }

[rollout]
mode = "direct"
"""

# The docs' ColumnTransformer example (docs/own-model.md), as a user would save it.
CHURN_MODEL = """
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    from mlops.domain.model_code import columns


    def build(config, n_estimators=100):
        prepare = ColumnTransformer([
            ("amounts", StandardScaler(), columns(config, "monthly spend (€)", "tenure months")),
            ("plan", OneHotEncoder(handle_unknown="ignore"), columns(config, "plan/tier")),
        ])
        forest = RandomForestClassifier(n_estimators=n_estimators, max_depth=8, random_state=0)
        return Pipeline([("prepare", prepare), ("model", forest)])
"""


def churn(path: Path, seed: int, rows: int = 600) -> Path:
    rng = np.random.default_rng(seed)
    lines: list[list[object]] = []
    for _ in range(rows):
        spend, tenure = round(rng.uniform(5, 120), 2), int(rng.integers(0, 72))
        plan = str(rng.choice(["basic", "pro", "team"]))
        churned = int(tenure < 12 or (plan == "basic" and spend > 90))
        lines.append([spend, tenure, plan, churned])
    return write_csv(path, [*COLUMNS, "churned"], lines)


def test_your_own_pipeline_trains_serves_and_retrains_with_its_code_in_lineage(
    tmp_path: Path,
) -> None:
    # Given a config naming a factory, its code folder next to it, and a CSV
    (tmp_path / "churn.toml").write_text(CONFIG, encoding="utf-8")
    code = tmp_path / "model_code"
    code.mkdir()
    (code / "churn_model.py").write_text(textwrap.dedent(CHURN_MODEL), encoding="utf-8")
    digest = code_digest(code).as_dict()
    data = churn(tmp_path / "churn.csv", seed=1)
    # When the stack starts with them
    running = start_local(tmp_path, "--config", "churn.toml", "--data", str(data))
    try:
        # Then v1 is the user's pipeline, exported to ONNX and served
        assert any(line.startswith("Trained and promoted churn-own v1") for line in running.lines)
        new = {COLUMNS[0]: 30.0, COLUMNS[1]: 2, COLUMNS[2]: "pro"}
        loyal = {COLUMNS[0]: 30.0, COLUMNS[1]: 60, COLUMNS[2]: "team"}
        status, body = call(f"{running.url}/predict", {"instances": [new, loyal]})
        assert status == 200, body
        assert body["predictions"] == [1, 0]

        # When new data is uploaded, the retrainer process trains the same code
        retrained = mlops(
            tmp_path,
            "retrain",
            "--data",
            str(churn(tmp_path / "churn-2.csv", seed=2)),
            "--json",
            timeout=300,
        )
        assert retrained.returncode in (0, 1), retrained.stderr
        outcome = json.loads(retrained.stdout)
        assert outcome["version"] == "2", outcome

        # Then both versions name the factory and the same digest of the user's code
        bucket = next(
            line.split("s3://", 1)[1].split("/", 1)[0]
            for line in running.lines
            if line.startswith("Artifacts: ")
        )
        for version in ("1", "2"):
            manifest = read_json(
                running.lines, f"s3://{bucket}/models/churn-own/{version}/manifest.json"
            )
            lineage = manifest["lineage"]["model_code"]
            assert lineage["factory"] == "churn_model:build"
            assert {k: lineage[k] for k in digest} == digest
            assert lineage["folder"] == str(code.resolve())
    finally:
        stop(running)
