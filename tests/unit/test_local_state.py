"""The local stack's state folder: what a restart finds, whatever the last stop went through."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlops.errors import ConfigError
from mlops_cli.emulator import state

NOTHING = state.Resources(model="bikes", buckets={}, tables={}, queues={})


def manifest(folder: Path, model: str = "bikes") -> None:
    folder.mkdir(parents=True)
    (folder / state.MANIFEST).write_text(json.dumps({"format": state.FORMAT, "model": model}))


def test_no_state_folder_restores_nothing(tmp_path: Path) -> None:
    assert state.restore(tmp_path / "state", NOTHING) is None


def test_a_save_interrupted_between_its_renames_restores_the_last_good_state(
    tmp_path: Path,
) -> None:
    # Given a stop that died after moving the old state aside, before the new one took its place
    manifest(tmp_path / "state.previous")
    # Then the next start restores the state set aside, not nothing
    assert state.restore(tmp_path / "state", NOTHING) == state.Counts(0, 0, 0)


def test_the_state_of_another_model_is_refused_naming_both(tmp_path: Path) -> None:
    manifest(tmp_path / "state", model="churn")
    with pytest.raises(ConfigError, match=r"model 'churn'.*serves 'bikes'.*--fresh"):
        state.restore(tmp_path / "state", NOTHING)


def test_a_state_of_another_format_is_refused(tmp_path: Path) -> None:
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / state.MANIFEST).write_text(json.dumps({"format": 99, "model": "bikes"}))
    with pytest.raises(ConfigError, match="format 99"):
        state.restore(tmp_path / "state", NOTHING)
