"""One training job, run as SageMaker's script mode would run it, in a local process.

From the job's DescribeTrainingJob record: the source package (``sagemaker_submit_directory``)
is unpacked into ``code/``, each S3Prefix channel's objects are copied out of (moto's) S3 into
``input/data/<channel>/``, ``input/config/hyperparameters.json`` and
``inputdataconfig.json`` are written, and ``sagemaker_program`` runs with the ``SM_*``
variables, in ``code/`` (so the package's own ``mlops`` is imported, not the laptop's), killed
at ``MaxRuntimeInSeconds``. Exit 0: ``model/`` is tarred to ``<S3OutputPath>/<job>/output/
model.tar.gz``. Otherwise ``output/failure`` is the failure reason (``AlgorithmError: ...``).

What differs from SageMaker: the laptop's Python and packages (``requirements.txt`` is not
installed: the stack's own environment already has the pins), no instance isolation (the process
shares the machine and its network), no spot interruptions or checkpoints, one instance.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

MODEL_ARTIFACT = "model.tar.gz"


@dataclass(frozen=True)
class JobRun:
    status: str  # Completed | Failed | Stopped
    secondary_status: str
    failure_reason: str
    artifact_uri: str
    started: datetime
    ended: datetime
    peak_rss_bytes: int
    exit_code: int | None
    process_seconds: float = 0.0  # the entry point's own run (not the inputs' copy)


def run_job(
    s3: Any,
    job: Mapping[str, Any],
    workdir: Path,
    *,
    python: str = sys.executable,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    poll_seconds: float = 0.05,
    output: Any = None,
) -> JobRun:
    """Run ``job`` (a DescribeTrainingJob response) under ``workdir``; nothing raises for what
    the job itself does wrong: it is the run's outcome. ``output``: where the entry point's
    stdout and stderr go (SageMaker's are its CloudWatch log stream); None: this process's."""
    name = str(job["TrainingJobName"])
    root = workdir / name
    shutil.rmtree(root, ignore_errors=True)
    started = clock()
    hyperparameters = {k: _decoded(v) for k, v in (job.get("HyperParameters") or {}).items()}
    try:
        code = _unpack_source(s3, str(hyperparameters.get("sagemaker_submit_directory")), root)
        channels = _copy_channels(s3, job.get("InputDataConfig") or [], root)
    except (OSError, ValueError, tarfile.TarError, KeyError, ClientError, BotoCoreError) as exc:
        reason = f"ClientError: cannot prepare the job's inputs: {exc}"
        return JobRun("Failed", "Failed", reason, "", started, clock(), 0, None)
    config = root / "input/config"
    config.mkdir(parents=True, exist_ok=True)
    (config / "hyperparameters.json").write_text(json.dumps(job.get("HyperParameters") or {}))
    (config / "inputdataconfig.json").write_text(
        json.dumps(
            {
                c["ChannelName"]: {"TrainingInputMode": "File"}
                for c in job.get("InputDataConfig") or []
            }
        )
    )
    for folder in ("model", "output/data"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    program = str(hyperparameters.get("sagemaker_program", "train.py"))
    env = _environment(root, channels, hyperparameters)
    limit = float((job.get("StoppingCondition") or {}).get("MaxRuntimeInSeconds", 86400))
    began = time.perf_counter()
    exit_code, peak, timed_out = _run(
        [python, program], code, env, limit, poll_seconds=poll_seconds, output=output
    )
    spent = time.perf_counter() - began
    ended = clock()
    if timed_out:
        reason = f"Training job reached MaxRuntimeInSeconds ({int(limit)} s) and was stopped"
        return JobRun(
            "Stopped", "MaxRuntimeExceeded", reason, "", started, ended, peak, None, spent
        )
    if exit_code != 0:
        failure = root / "output/failure"
        detail = failure.read_text()[:1000] if failure.is_file() else f"exit code {exit_code}"
        return JobRun(
            "Failed",
            "Failed",
            f"AlgorithmError: {detail}",
            "",
            started,
            ended,
            peak,
            exit_code,
            spent,
        )
    output = str(job["OutputDataConfig"]["S3OutputPath"]).rstrip("/")
    uri = f"{output}/{name}/output/{MODEL_ARTIFACT}"
    bucket, key = _split(uri)
    s3.put_object(Bucket=bucket, Key=key, Body=_tar_gz(root / "model"))
    return JobRun("Completed", "Completed", "", uri, started, ended, peak, 0, spent)


def _decoded(value: Any) -> Any:
    """Script mode's hyperparameters are JSON values in strings."""
    try:
        return json.loads(value)
    except (TypeError, ValueError):
        return value


def _unpack_source(s3: Any, uri: str, root: Path) -> Path:
    bucket, key = _split(uri)
    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    code = root / "code"
    code.mkdir(parents=True)
    with tarfile.open(fileobj=io.BytesIO(body), mode="r:gz") as tar:
        tar.extractall(code, filter="data")  # refuses links out, absolute paths, devices
    return code


def _copy_channels(s3: Any, channels: list[Mapping[str, Any]], root: Path) -> dict[str, Path]:
    """Each S3Prefix channel's objects, as SageMaker's File mode lays them out: relative to
    the prefix's folder."""
    out = {}
    for channel in channels:
        name = str(channel["ChannelName"])
        source = channel["DataSource"]["S3DataSource"]
        if source.get("S3DataType", "S3Prefix") != "S3Prefix":
            raise ValueError(f"channel {name}: only S3Prefix is run locally")
        bucket, prefix = _split(str(source["S3Uri"]))
        folder = prefix if prefix.endswith("/") else prefix.rpartition("/")[0] + "/"
        target = root / "input/data" / name
        target.mkdir(parents=True, exist_ok=True)
        pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        for page in pages:
            for item in page.get("Contents", []):
                relative = str(item["Key"])[len(folder.lstrip("/")) :]
                parts = relative.split("/")
                # "in//etc/x" would make an absolute path, "../x" climb: never out of target
                if not relative or relative.endswith("/") or ".." in parts or "" in parts:
                    continue
                path = target / relative
                path.parent.mkdir(parents=True, exist_ok=True)
                s3.download_file(bucket, item["Key"], str(path))
        out[name] = target
    return out


def _environment(
    root: Path, channels: Mapping[str, Path], hyperparameters: Mapping[str, Any]
) -> dict[str, str]:
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "OMP_NUM_THREADS", "SYSTEMROOT")
    env = {k: os.environ[k] for k in keep if k in os.environ}
    env |= {f"SM_CHANNEL_{name.upper()}": str(path) for name, path in channels.items()}
    env |= {
        "SM_CHANNELS": json.dumps(sorted(channels)),
        "SM_HPS": json.dumps(
            {k: v for k, v in hyperparameters.items() if not k.startswith("sagemaker_")}
        ),
        "SM_MODEL_DIR": str(root / "model"),
        "SM_OUTPUT_DIR": str(root / "output"),
        "SM_OUTPUT_DATA_DIR": str(root / "output/data"),
        "SM_INPUT_DIR": str(root / "input"),
        "SM_INPUT_CONFIG_DIR": str(root / "input/config"),
        "SM_CURRENT_HOST": "algo-1",
        "SM_HOSTS": json.dumps(["algo-1"]),
        "SM_NUM_CPUS": str(os.cpu_count() or 1),
        "PYTHONUNBUFFERED": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    return env


def _run(
    command: list[str],
    cwd: Path,
    env: dict[str, str],
    limit: float,
    *,
    poll_seconds: float,
    output: Any = None,
) -> tuple[int | None, int, bool]:
    """``(exit code, peak resident bytes, timed out)`` of the entry point's process: the peak
    is the kernel's own (``ru_maxrss`` of the reaped child), not a sample."""
    process = subprocess.Popen(
        command, cwd=cwd, env=env, stdout=output, stderr=subprocess.STDOUT if output else None
    )
    deadline = time.monotonic() + limit
    while True:
        pid, status, usage = os.wait4(process.pid, os.WNOHANG)
        if pid:
            process.returncode = os.waitstatus_to_exitcode(status)
            return process.returncode, usage.ru_maxrss * 1024, False
        if time.monotonic() > deadline:
            process.kill()
            _, _, usage = os.wait4(process.pid, 0)
            process.returncode = -9
            return None, usage.ru_maxrss * 1024, True
        time.sleep(poll_seconds)


def _tar_gz(folder: Path) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w:gz") as tar:
        for path in sorted(folder.rglob("*")):
            tar.add(path, arcname=path.relative_to(folder).as_posix(), recursive=False)
    return raw.getvalue()


def _split(uri: str) -> tuple[str, str]:
    if not uri.startswith("s3://"):
        raise ValueError(f"{uri!r} is not an s3:// URI")
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bucket, key
