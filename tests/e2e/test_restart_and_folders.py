"""The local stack as a user lives with it: commands from any folder, and state that survives a
restart, here in the middle of a canary rollout."""

from __future__ import annotations

import json
import signal
import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT
from tests.datasets import bikes
from tests.e2e.conftest import Running, mlops, start_local
from tests.e2e.test_local_stack import call
from tests.e2e.test_own_model import BIKES_CONFIG

pytestmark = pytest.mark.e2e


def stop(running: Running) -> list[str]:
    running.process.send_signal(signal.SIGINT)
    try:
        running.process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        running.process.kill()
        pytest.fail("mlops local did not stop on Ctrl-C")
    return running.lines


def status(cwd: Path) -> dict[str, Any]:
    result = mlops(cwd, "status", "--json")
    assert result.returncode == 0, result.stderr
    return dict(json.loads(result.stdout))


def test_a_restart_in_the_middle_of_a_canary_keeps_models_registry_and_rollout(
    tmp_path: Path,
) -> None:
    project, elsewhere = tmp_path / "project", tmp_path / "elsewhere"
    project.mkdir()
    elsewhere.mkdir()
    (project / "bikes.toml").write_text(BIKES_CONFIG)
    data = bikes(project / "bikes.csv")
    # Given a stack with v1 in production and v2 on a 20 % canary
    first = start_local(project, "--config", "bikes.toml", "--data", str(data))
    try:
        assert any(line.startswith("State: .mlops/state (starting empty") for line in first.lines)
        # The file v1 was trained from is kept where uploads go: its upload is skipped
        # (nothing new), and status says so
        for _ in range(120):
            retrains = status(project)["retrains"]
            if len(retrains) == 2:
                break
            threading.Event().wait(0.5)
        assert [r["outcome"] for r in retrains] == ["promoted", "skipped"], retrains
        assert retrains[0]["trigger"].startswith("mlops train on s3://")
        assert retrains[1]["trigger"] == "upload of training-data/bikes.csv"
        # (commands work from any folder: the running stack's record is the user's, not the
        # folder's; MLOPS_HOME points both folders at one record here, as HOME does for a user)
        home = {"MLOPS_HOME": str(project / ".mlops")}
        trained = mlops(elsewhere, "train", "--data", str(data), "--no-promote", env=home)
        # (the same data again: registered rejected, which exits 1 as a refused operation)
        assert trained.returncode == 1, trained.stderr
        assert "Registered bike-rentals v2 as rejected" in trained.stdout
        canary = mlops(
            elsewhere,
            "promote",
            "2",
            "--rollout",
            "canary:20",
            "--force",
            "--reason",
            "e2e",
            env=home,
        )
        assert canary.returncode == 0, canary.stderr
        before = status(project)
    finally:
        lines = stop(first)
    # When it stops (its state is kept) and starts again in the same folder
    assert any(line.startswith("Kept ") and ".mlops/state" in line for line in lines), lines
    again = start_local(project, "--config", "bikes.toml")
    try:
        # Then nothing is trained again, and the registry, the canary and the model are back
        assert any(line.startswith("State: .mlops/state (restored ") for line in again.lines)
        assert not any(line.startswith("Trained and promoted") for line in again.lines)
        after = status(project)
        assert after["aliases"] == before["aliases"]
        assert after["aliases"]["production"] == "1"
        assert after["rollout"] == before["rollout"]  # its id, start and checks too
        rollout = after["rollout"]
        assert (rollout["version"], rollout["mode"], rollout["percent"]) == ("2", "canary", 20.0)
        assert [v["version"] for v in after["versions"]] == ["1", "2"]
        code, body = call(
            f"{again.url}/predict",
            {"instances": [{"temperature": 20, "humidity": 50, "season": "summer"}]},
        )
        assert code == 200, body
    finally:
        stop(again)
    # And --fresh starts empty (a config of your own and no data: nothing served)
    fresh = start_local(project, "--config", "bikes.toml", "--fresh")
    try:
        assert any(line.startswith("State: .mlops/state (starting empty") for line in fresh.lines)
        assert status(project)["versions"] == []
    finally:
        stop(fresh)


def test_the_local_stack_finds_the_project_template_from_another_folder(tmp_path: Path) -> None:
    running = start_local(tmp_path, template=False)
    try:
        assert f"Template: {ROOT / 'template.yaml'}" in running.lines
        code, _ = call(f"{running.url}/health")
        assert code == 200
    finally:
        stop(running)


def test_a_second_stack_over_a_running_one_is_refused(tmp_path: Path) -> None:
    running = start_local(tmp_path)
    try:
        second = mlops(tmp_path, "local", "--port", "0", timeout=60)
        assert second.returncode == 2
        assert "a local stack already runs" in second.stderr
    finally:
        stop(running)
