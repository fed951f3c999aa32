"""The training job's entry point: the retrainer's validation, training, export and staging,
in a SageMaker training job instead of a Lambda function.

SageMaker's conventions (the prebuilt image's training toolkit sets them): the upload is in
``SM_CHANNEL_TRAINING``, ``job.json`` (config, lineage, trigger) in ``SM_CHANNEL_JOB``,
hyperparameters in ``/opt/ml/input/config/hyperparameters.json``; the staged candidate goes to
``SM_MODEL_DIR`` (``staging/<model>/<candidate id>/...``, as ``CandidateBuilder`` writes it to
S3), which SageMaker uploads as ``model.tar.gz``. A rejection writes its reason to
``/opt/ml/output/failure`` (SageMaker's ``FailureReason``) and exits 1. Nothing here talks to
AWS: the job's inputs and outputs are SageMaker's to move.
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from mlops.domain import candidate
from mlops.domain.config_document import parse_config
from mlops.domain.dataset import inspect_csv
from mlops.domain.training_jobs import FAILURE_LIMIT, JOB_SPEC, JOB_SPEC_VERSION
from mlops.errors import MlopsError
from mlops.services.candidates import CandidateBuilder, DataSource, StagedCandidate

REFERENCE_FILE = "reference.json.gz"  # the gate's reference rows, when the retrainer had some
MODEL_CODE = "model_code"  # the source package's copy of the [estimator] factory's folder


class JobRejectedError(Exception):
    """What the job cannot train on; the message is the failure reason a person reads."""


@dataclass(frozen=True)
class JobPaths:
    training: Path
    job: Path
    model: Path
    output: Path
    config: Path
    code: Path

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> JobPaths:
        ml = Path(env.get("SM_ML_ROOT", "/opt/ml"))  # ours: the local stand-in's root
        return cls(
            training=Path(env.get("SM_CHANNEL_TRAINING", ml / "input/data/training")),
            job=Path(env.get("SM_CHANNEL_JOB", ml / "input/data/job")),
            model=Path(env.get("SM_MODEL_DIR", ml / "model")),
            output=Path(env.get("SM_OUTPUT_DIR", ml / "output")),
            config=Path(env.get("SM_INPUT_CONFIG_DIR", ml / "input/config")),
            code=Path(__file__).resolve().parents[2],  # next to the mlops package
        )


class DirectoryStore:
    """``CandidateBuilder``'s store, writing keys as files under ``root`` (SM_MODEL_DIR)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def put_bytes(self, key: str, body: bytes, *, immutable: bool = False) -> None:
        path = self.root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("xb" if immutable else "wb") as handle:
            handle.write(body)


def run(paths: JobPaths) -> StagedCandidate:
    """Validate the upload, train, export and stage; ``JobRejectedError`` says why not."""
    started = time.perf_counter()
    spec = _spec(paths.job / JOB_SPEC)
    try:
        config = parse_config(spec["config"])
    except MlopsError as exc:
        raise JobRejectedError(f"config: {exc}") from exc
    data = spec["data"]
    path = _upload(paths.training, str(data["file"]), int(data["bytes"]))
    size = path.stat().st_size
    if size != data["bytes"]:
        raise JobRejectedError(
            f"training data: {data['uri']} is {size} bytes, the retrainer saw {data['bytes']}: "
            "it was replaced after the job started"
        )
    if size > config.training.max_job_bytes:
        raise JobRejectedError(
            f"training data: {data['uri']} is {size} bytes, over training.max_job_bytes "
            f"({config.training.max_job_bytes})"
        )
    # The job's size bound replaces the function's (validation.max_bytes) for this check only.
    bounds = replace(
        config, validation=replace(config.validation, max_bytes=config.training.max_job_bytes)
    )
    dataset, report = inspect_csv(path.read_bytes(), bounds)
    if dataset is None:
        raise JobRejectedError(f"training data rejected: {report.summary}")
    reference = None
    if (paths.job / REFERENCE_FILE).is_file():
        try:
            reference = candidate.decode_rows(
                (paths.job / REFERENCE_FILE).read_bytes(), config.features, config.task
            )
        except (ValueError, KeyError, TypeError, OSError) as exc:
            raise JobRejectedError(f"reference rows unreadable: {exc!r}") from exc
    source = DataSource(
        uri=str(data["uri"]),
        sha256=dataset.sha256,
        rows=dataset.rows,
        role="new",
        version_id=data.get("version_id"),
        etag=data.get("etag"),
    )
    model_code = paths.code / MODEL_CODE
    builder = CandidateBuilder(
        DirectoryStore(paths.model),
        str(spec["code_version"]),
        model_code=model_code if model_code.is_dir() else None,
    )
    try:
        return builder.build(
            config,
            dataset,
            [source],
            reference=reference,
            trigger=dict(spec.get("trigger") or {}),
            timings={"read_validate_s": time.perf_counter() - started},
        )
    except MlopsError as exc:  # the user's model code, a config the data cannot fit
        raise JobRejectedError(f"{exc.code}: {exc}") from exc


def _upload(channel: Path, name: str, size: int) -> Path:
    """The upload in the channel: ``<channel>/<name>`` (File mode lays keys out relative to
    the prefix's folder), else the one file of that name anywhere in it, preferring the size
    the retrainer saw (the prefix may also match other keys)."""
    direct = channel / name
    if direct.name == name and direct.is_file():
        return direct
    found = sorted(p for p in channel.rglob("*") if p.is_file() and p.name == name)
    for path in found:
        if path.stat().st_size == size:
            return path
    if found:
        return found[0]
    raise JobRejectedError(f"training data: {name!r} is not in the training channel")


def main(env: Mapping[str, str] = os.environ) -> int:
    paths = JobPaths.from_env(env)
    hyperparameters = _hyperparameters(paths.config)
    print(json.dumps({"message": "training job started", "hyperparameters": hyperparameters}))
    try:
        staged = run(paths)
    except JobRejectedError as exc:
        return _fail(paths, str(exc))
    except Exception as exc:  # anything else: the reason and the trace, never a silent exit
        traceback.print_exc()
        return _fail(paths, f"entry point crashed: {exc!r}")
    print(json.dumps({"message": "candidate staged"} | staged.as_dict()), flush=True)
    return 0


def _spec(path: Path) -> dict[str, Any]:
    try:
        spec = json.loads(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise JobRejectedError(f"job spec {path} unreadable: {exc}") from exc
    if not isinstance(spec, dict) or spec.get("schema_version") != JOB_SPEC_VERSION:
        raise JobRejectedError(f"job spec {path}: schema_version is not {JOB_SPEC_VERSION}")
    for name in ("config", "data", "code_version"):
        if name not in spec:
            raise JobRejectedError(f"job spec {path}: {name} is missing")
    return spec


def _hyperparameters(folder: Path) -> dict[str, Any]:
    """hyperparameters.json: SageMaker writes every value as a string (script mode: JSON)."""
    try:
        raw = json.loads((folder / "hyperparameters.json").read_bytes())
    except (OSError, ValueError):
        return {}
    out: dict[str, Any] = {}
    for key, value in raw.items() if isinstance(raw, dict) else ():
        try:
            out[key] = json.loads(value) if isinstance(value, str) else value
        except ValueError:
            out[key] = value
    return out


def _fail(paths: JobPaths, reason: str) -> int:
    print(json.dumps({"message": "training job failed", "reason": reason}), file=sys.stderr)
    paths.output.mkdir(parents=True, exist_ok=True)
    (paths.output / "failure").write_text(reason[:FAILURE_LIMIT])
    return 1


if __name__ == "__main__":
    sys.exit(main())
