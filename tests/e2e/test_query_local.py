"""`mlops query` end to end on the real local stack: predictions and labels over HTTP, stored by
the prediction logger in its own process, then docs/query.md's RMSE query through the CLI's
entry point, checked against numpy over what the API answered and the labels sent."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from mlops_cli.emulator.runner import RunningStack, start_local
from mlops_cli.emulator.stack import free_port
from mlops_cli.emulator.target import HOME_VARIABLE, write_local_state
from tests.conftest import ROOT, predict_instance
from tests.e2e.conftest import mlops, user_env
from tests.e2e.test_capture_loop import eventually, local_client, objects, rows
from tests.e2e.test_local_stack import call
from tests.integration.test_query import doc_queries

pytestmark = pytest.mark.e2e
HOUSE = predict_instance()


@pytest.fixture(scope="module")
def cwd(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("user")


@pytest.fixture(scope="module")
def running(cwd: Path) -> Iterator[RunningStack]:
    stack = start_local(ROOT / "template.yaml", port=free_port(), quiet_functions=True)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(HOME_VARIABLE, user_env(cwd)[HOME_VARIABLE])
        # What `mlops local` writes, so commands find this stack as a user's would.
        write_local_state(
            stack.stack.endpoint,
            stack.api.url,
            stack.target.outputs,
            {},
            template=ROOT / "template.yaml",
            config=None,
            state_dir=None,
        )
        yield stack
    stack.stop()


def query(cwd: Path, *args: str) -> tuple[int, str, str]:
    """`mlops query ...` in a user's shell, which finds the stack from its record."""
    done = mlops(cwd, "query", *args)
    return done.returncode, done.stdout, done.stderr


def test_the_rmse_query_answers_what_numpy_computes_from_the_traffic(
    running: RunningStack, cwd: Path
) -> None:
    # Given 40 predictions, 15 of them labelled, stored by the logger through the stack
    houses = [{**HOUSE, "sqft": 900 + 25 * i} for i in range(40)]
    status, answer = call(f"{running.api.url}/predict", {"instances": houses})
    assert status == 200
    rng = np.random.default_rng(3)
    labelled = {
        pid: float(rng.normal(pred, 20_000))
        for pid, pred in list(zip(answer["prediction_ids"], answer["predictions"], strict=True))[
            :15
        ]
    }
    status, _ = call(
        f"{running.api.url}/feedback",
        {"feedback": [{"prediction_id": k, "actual": v} for k, v in labelled.items()]},
    )
    assert status == 202
    assert eventually(lambda: len(rows(objects(running, "captures/"))) == 40)
    assert eventually(lambda: len(rows(objects(running, "feedback/"))) == 15)
    # When the docs' RMSE query runs through `mlops query --json`
    code, out, err = query(cwd, "--json", doc_queries()[0])
    # Then one row for v1 today, with numpy's RMSE over the 15 labelled predictions
    assert code == 0, err
    result = json.loads(out)
    assert result["engine"] == "duckdb"
    ((version, _day, count, rmse),) = result["rows"]
    predicted = dict(zip(answer["prediction_ids"], answer["predictions"], strict=True))
    errors = np.array([predicted[pid] - actual for pid, actual in labelled.items()])
    assert (version, count) == ("1", 15)
    assert rmse == pytest.approx(float(np.sqrt(np.mean(errors**2))), rel=1e-12)
    # And the coverage query prints as CSV: 15 of 40
    code, out, err = query(cwd, "--output", "csv", doc_queries()[1])
    assert code == 0, err
    (row,) = list(csv.DictReader(io.StringIO(out)))
    assert (row["predictions"], row["labelled"], float(row["coverage"])) == ("40", "15", 0.375)


def test_bad_sql_exits_2_with_the_reason(running: RunningStack, cwd: Path) -> None:
    code, out, err = query(cwd, "SELEC 1")
    assert (code, out) == (2, "")
    assert "SQL syntax error" in err


def test_the_workgroup_exists_locally_with_the_template_settings(running: RunningStack) -> None:
    athena = local_client(running, "athena")
    name = running.target.output("QueryWorkGroupName")
    config = athena.get_work_group(WorkGroup=name)["WorkGroup"]["Configuration"]
    assert config["BytesScannedCutoffPerQuery"] == 10 * 1024**3
    assert config["EnforceWorkGroupConfiguration"] is True
    bucket = running.target.output("QueryResultsBucketName")
    assert config["ResultConfiguration"]["OutputLocation"] == f"s3://{bucket}/results/"
    assert running.target.output("QueryAccessPolicyArn").endswith(
        ":policy/mlops-local-QueryAccessPolicy"
    )
