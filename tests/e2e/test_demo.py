"""`mlops demo --json`: the main job end to end on the local stack."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.e2e


def test_demo_serves_months_of_traffic_and_shows_the_model_degrading(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "POWERTOOLS_"))}
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "mlops_cli",
            "demo",
            "--json",
            "--template",
            str(ROOT / "template.yaml"),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    summary = json.loads(run.stdout.strip().splitlines()[-1])
    months = summary["months"]
    assert [m["month"] for m in months] == list(range(6))
    assert all(m["serving_version"] == "1" for m in months)
    # Month 0 is the training market: live error close to the holdout error.
    assert months[0]["live_rmse"] < 1.3 * summary["holdout_rmse"]
    # The moved market (rates, a new district, bigger homes) is predicted much worse.
    assert summary["rmse_growth"] > 1.5
    assert months[-1]["unseen_location_share"] > 0.05
    assert summary["bad_request_status"] == 400
