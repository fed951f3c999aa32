"""The training job's entry point under SageMaker's conventions, on its failure paths: each
writes /opt/ml/output/failure (SageMaker's FailureReason) and exits 1, never silently."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mlops.domain.config_document import load_config, to_document
from mlops.training_job.entry import main


def layout(root: Path, spec: dict[str, Any] | None, files: dict[str, bytes]) -> dict[str, str]:
    training, job = root / "input/data/training", root / "input/data/job"
    training.mkdir(parents=True)
    job.mkdir(parents=True)
    for name, body in files.items():
        (training / name).parent.mkdir(parents=True, exist_ok=True)
        (training / name).write_bytes(body)
    if spec is not None:
        (job / "job.json").write_text(json.dumps(spec))
    return {
        "SM_CHANNEL_TRAINING": str(training),
        "SM_CHANNEL_JOB": str(job),
        "SM_MODEL_DIR": str(root / "model"),
        "SM_OUTPUT_DIR": str(root / "output"),
        "SM_INPUT_CONFIG_DIR": str(root / "input/config"),
    }


def spec(file: str, size: int, **config_changes: Any) -> dict[str, Any]:
    document = to_document(load_config())
    for section, values in config_changes.items():
        document[section] = document.get(section, {}) | values
    return {
        "schema_version": 1,
        "config": document,
        "data": {"uri": f"s3://training/training-data/{file}", "file": file, "bytes": size},
        "code_version": "test",
    }


def failure(root: Path) -> str:
    return (root / "output/failure").read_text()


def test_an_upload_replaced_after_the_job_started_is_refused(tmp_path: Path) -> None:
    # Given the upload laid out under a sub-folder of the channel (found by name)
    env = layout(tmp_path, spec("big.csv", 999), {"sub/big.csv": b"a,b\n1,2\n"})
    assert main(env) == 1
    assert "it was replaced after the job started" in failure(tmp_path)


def test_a_file_over_max_job_bytes_is_refused_before_it_is_read(tmp_path: Path) -> None:
    body = b"x" * 101
    env = layout(tmp_path, spec("big.csv", 101, training={"max_job_bytes": 100}), {"big.csv": body})
    assert main(env) == 1
    assert "over training.max_job_bytes (100)" in failure(tmp_path)


def test_a_file_at_max_job_bytes_is_read_and_its_data_judged(tmp_path: Path) -> None:
    body = b"not,a,house\n" * 10
    limit = len(body)
    env = layout(
        tmp_path, spec("big.csv", limit, training={"max_job_bytes": limit}), {"big.csv": body}
    )
    assert main(env) == 1
    assert failure(tmp_path).startswith("training data rejected:")


def test_a_missing_upload_or_job_spec_is_a_failure_with_its_reason(tmp_path: Path) -> None:
    env = layout(tmp_path / "a", spec("big.csv", 3), {"other.csv": b"abc"})
    assert main(env) == 1
    assert "'big.csv' is not in the training channel" in failure(tmp_path / "a")
    env = layout(tmp_path / "b", None, {"big.csv": b"abc"})
    assert main(env) == 1
    assert "job.json" in failure(tmp_path / "b")


def test_a_bad_config_is_a_failure_naming_it(tmp_path: Path) -> None:
    env = layout(tmp_path, spec("big.csv", 3, training={"engine": "gpu"}), {"big.csv": b"abc"})
    assert main(env) == 1
    assert failure(tmp_path).startswith("config:")
    assert "training.engine" in failure(tmp_path)
