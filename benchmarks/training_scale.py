"""Training beyond Lambda: a retrain on the SageMaker path, run locally, next to the Lambda
path's limit.

    .venv/bin/python benchmarks/training_scale.py [--json] [--rows N ...] [--threads N]

For each size: month 0 of the shipped synthetic market (``synthetic.generate(n,
conditions_for_month(0), seed=0)``) as CSV is put in (in-process) moto S3, the retrainer's
``TrainingJobLauncher`` starts the job (job.json, the source package, CreateTrainingJob in
moto), and the local stack's runner (``mlops_cli.emulator.sagemaker.job_runner``) runs it as the
training image would: channels copied out of S3, ``python entry.py`` from the unpacked source
package with the ``SM_*`` variables, ``model/`` tarred back to S3. Measured: the entry point's
wall time (validate, train, export, stage; not the copy of the inputs), its peak resident
memory (the kernel's ``ru_maxrss`` of the process), and the artifact's size. Shipped config
(HistGradientBoosting, 200 iterations, early stopping above 10,000 rows), one OpenMP thread
unless ``--threads``.

The Lambda path's limit is the retrainer's, from ``benchmarks/retrain.py`` (docs/retraining.md,
"Sizing the retrainer"): about 2.4M rows at the template's defaults (3,008 MB, 900 s, 1.5x
memory headroom), and ``validation.max_bytes`` (256 MiB) rejects files above about 5.2M rows.

10M rows by default would take this 2-core machine many minutes: the default sizes are 1M and
3M, and 10M is extrapolated linearly in rows from them (``--rows 10000000`` measures it).

With --json the only stdout line is one JSON object: ``rows``, ``threads``, ``sizes`` (per
size: load_avg (1-minute, when the job started; above cpu_count the times are inflated),
csv_mb, job_s, peak_mb, artifact_mb, train_rows, status), ``at_10m`` (measured or
extrapolated: job_s, peak_mb, extrapolated), ``lambda_path``, ``targets`` and
``targets_met`` (10M rows inside the template's TrainingMaxRuntimeSeconds default and the
default instance's memory, ml.m5.xlarge's 16 GiB).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "benchmark")
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "Benchmark")
os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")  # stdout is the JSON line
for _name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
    os.environ.setdefault(_name, "testing")
os.environ.pop("AWS_ENDPOINT_URL", None)

import boto3  # noqa: E402
from moto import mock_aws  # noqa: E402

from mlops import __version__  # noqa: E402
from mlops.adapters.model_store import ModelStore  # noqa: E402
from mlops.adapters.training_data import TrainingDataStore  # noqa: E402
from mlops.adapters.training_jobs import TrainingJobs  # noqa: E402
from mlops.domain.config_document import load_config  # noqa: E402
from mlops.domain.synthetic import conditions_for_month, csv_bytes, generate  # noqa: E402
from mlops.domain.triggers import Trigger  # noqa: E402
from mlops.services.training_jobs import JobPlacement, TrainingJobLauncher  # noqa: E402
from mlops_cli.emulator.sagemaker.job_runner import run_job  # noqa: E402

REGION = "us-east-1"
ARTIFACTS, TRAINING = "bench-artifacts", "bench-training"
TEN_MILLION = 10_000_000
MAX_RUNTIME_S = 7200  # the template's TrainingMaxRuntimeSeconds default
INSTANCE_MEMORY_MB = 16 * 1024  # ml.m5.xlarge, the template's TrainingInstanceType default
LAMBDA_PATH = {
    "source": "benchmarks/retrain.py, docs/retraining.md (Sizing the retrainer)",
    "rows_at_defaults": 2_400_000,  # 3,008 MB and 900 s with 1.5x memory headroom
    "rows_at_max_bytes": 5_200_000,  # validation.max_bytes, 256 MiB of this data
    "memory_mb": 3008,
    "timeout_s": 900,
}


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def csv_for(rows: int) -> bytes:
    # Generated in chunks: one call for 10M rows would hold every column twice.
    step = 1_000_000
    parts = []
    for start in range(0, rows, step):
        body = csv_bytes(generate(min(step, rows - start), conditions_for_month(0), seed=start))
        parts.append(body if start == 0 else body.split(b"\n", 1)[1])
    return b"".join(parts)


def one_size(rows: int, workdir: Path) -> dict[str, Any]:
    shipped = load_config()
    config = replace(shipped, training=replace(shipped.training, max_job_bytes=1 << 40))
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        for bucket in (ARTIFACTS, TRAINING):
            s3.create_bucket(Bucket=bucket)
        progress(f"{rows:,} rows: generating")
        body = csv_for(rows)
        key = f"training-data/month-00-{rows}.csv"
        put = s3.put_object(Bucket=TRAINING, Key=key, Body=body)
        obj = TrainingDataStore(TRAINING, s3).head(key)
        launcher = TrainingJobLauncher(
            store=ModelStore(ARTIFACTS, s3),
            jobs=TrainingJobs(boto3.client("sagemaker", region_name=REGION)),
            placement=JobPlacement(
                prefix="mlops-bench",
                role_arn="arn:aws:iam::123456789012:role/training",
                instance_type="ml.m5.xlarge",
                max_runtime_seconds=MAX_RUNTIME_S,
                region=REGION,
            ),
            code_version=__version__,
        )
        trigger = Trigger("s3_upload", bucket=TRAINING, key=key, etag=put["ETag"].strip('"'))
        job = launcher.start(config, obj, trigger, None)
        describe = boto3.client("sagemaker", region_name=REGION).describe_training_job(
            TrainingJobName=job["job_name"]
        )
        progress(f"{rows:,} rows: running the job's entry point")
        load = os.getloadavg()[0]  # above the CPU count, the times are inflated
        run = run_job(s3, describe, workdir, output=sys.stderr)
        artifact = 0
        if run.artifact_uri:
            artifact_key = run.artifact_uri.removeprefix(f"s3://{ARTIFACTS}/")
            artifact = s3.head_object(Bucket=ARTIFACTS, Key=artifact_key)["ContentLength"]
    staged = _staged(workdir / job["job_name"] / "model")
    return {
        "load_avg": round(load, 2),
        "csv_mb": round(len(body) / 1e6, 1),
        "job_s": round(run.process_seconds, 1),
        "peak_mb": round(run.peak_rss_bytes / 2**20),
        "artifact_mb": round(artifact / 1e6, 1),
        "train_rows": staged.get("train_rows"),
        "status": run.status,
        "failure_reason": run.failure_reason or None,
    }


def _staged(model_dir: Path) -> dict[str, Any]:
    for path in model_dir.rglob("candidate.json"):
        return dict(json.loads(path.read_text())["lineage"])
    return {}


def at_ten_million(rows: list[int], sizes: dict[str, dict[str, Any]]) -> dict[str, Any]:
    if TEN_MILLION in rows:
        measured = sizes[str(TEN_MILLION)]
        return {"job_s": measured["job_s"], "peak_mb": measured["peak_mb"], "extrapolated": False}
    if len(rows) < 2:
        return {"job_s": None, "peak_mb": None, "extrapolated": True}
    a, b = sorted(rows)[-2:]
    out: dict[str, Any] = {"extrapolated": True, "from_rows": [a, b]}
    for name in ("job_s", "peak_mb"):
        ya, yb = sizes[str(a)][name], sizes[str(b)][name]
        out[name] = round(yb + (yb - ya) / (b - a) * (TEN_MILLION - b), 1)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 3_000_000])
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    os.environ["OMP_NUM_THREADS"] = str(args.threads)  # the job process inherits it
    sizes: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="training-scale-") as tmp:
        for rows in args.rows:
            sizes[str(rows)] = one_size(rows, Path(tmp))
    ten = at_ten_million(args.rows, sizes)
    targets = {"job_s_at_10m_max": MAX_RUNTIME_S, "peak_mb_at_10m_max": INSTANCE_MEMORY_MB}
    met = None
    if ten["job_s"] is not None:
        met = ten["job_s"] <= MAX_RUNTIME_S and ten["peak_mb"] <= INSTANCE_MEMORY_MB
    result = {
        "rows": args.rows,
        "threads": args.threads,
        "cpu_count": os.cpu_count(),
        "sizes": sizes,
        "at_10m": ten,
        "lambda_path": LAMBDA_PATH,
        "targets": targets,
        "targets_met": met,
    }
    if args.json:
        print(json.dumps(result))
        return
    print(f"{'rows':>12} {'CSV MB':>8} {'job s':>8} {'peak MB':>8} {'artifact MB':>12}  status")
    for rows in args.rows:
        s = sizes[str(rows)]
        print(
            f"{rows:>12,} {s['csv_mb']:>8} {s['job_s']:>8} {s['peak_mb']:>8} "
            f"{s['artifact_mb']:>12}  {s['status']}"
        )
    how = "extrapolated" if ten["extrapolated"] else "measured"
    print(f"10M rows ({how}): {ten['job_s']} s, {ten['peak_mb']} MB peak")
    print(
        f"Lambda path: about {LAMBDA_PATH['rows_at_defaults']:,} rows at 3,008 MB / 900 s; "
        f"validation.max_bytes stops files near {LAMBDA_PATH['rows_at_max_bytes']:,} rows"
    )
    print(f"targets met: {met}")


if __name__ == "__main__":
    main()
