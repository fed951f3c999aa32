"""Batch scoring through the local Step Functions Distributed Map: what the stack-side reader
costs, and what a whole file costs end to end on the local stack.

    .venv/bin/python benchmarks/batch_map.py [--json] [--reader-rows N ...] [--rows N] [--skip-e2e]

Reader (``reader_<rows>_*``; 1M and 10M rows by default, each in a fresh process): the
interpreter's CSV ``ItemReader`` + ``ItemSelector`` + ``ItemBatcher`` + child dispatch, on the
batch-scoring machine's Map settings (``{index, row}`` items, 1,000 rows / 200 KiB batches,
``BatchInput``), each child a Pass state (no Lambda), over a houses-like CSV of 10 columns
(≈80 bytes a row) read in 1 MiB chunks from a local file (the same streamed path as moto's
store; moto itself copies a whole object into memory when it is uploaded, which is moto's cost
at upload, not the reader's):
  reader_<rows>_rows_per_s   rows read, batched and dispatched per second
  reader_<rows>_peak_mb      peak RSS of the process (imports included)
  reader_<rows>_growth_mb    peak RSS minus RSS before reading: what the file size costs
End to end (``e2e_*``, 1M rows by default, ``--rows 10000000`` for 10M): tests/fixtures/stepfn's
stack on the local stack: a CSV (id, x) uploaded under batch/, its function starts the machine,
the Distributed Map reads it and invokes the scoring function (each batch of 1,000 rows in an
awslambdaric process, 4 environments) which writes its predictions to S3; ResultWriter writes
the Map Run's results:
  e2e_rows, e2e_predictions   rows uploaded, predictions found in S3 afterwards
  e2e_seconds                 upload done → execution SUCCEEDED
  e2e_rows_per_s              e2e_rows / e2e_seconds
  e2e_stack_peak_mb           peak RSS of the stack process (moto + interpreter; functions apart)
Targets: reader ≥ 100k rows/s at every size and memory flat in file size (growth at the largest
size ≤ growth at the smallest + 32 MB). With --json the last line is one JSON object.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "cli"))
sys.path.insert(0, str(ROOT / "layers" / "core"))
os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")

MACHINE_ARN = "arn:aws:states:us-east-1:123456789012:stateMachine:bench"
LOCATIONS = ["downtown", "riverside", "suburbs", "hills", "old town"]
TYPES = ["house", "condo", "townhouse"]
READER_TARGET_ROWS_PER_S = 100_000
FLAT_MEMORY_SLACK_MB = 32


def write_houses(path: Path, rows: int) -> None:
    rng = random.Random(7)
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(
            [
                "sqft",
                "bedrooms",
                "bathrooms",
                "year_built",
                "lot_size",
                "distance_to_center",
                "interest_rate",
                "location",
                "property_type",
                "note",
            ]
        )
        for i in range(rows):
            writer.writerow(
                [
                    rng.randint(500, 5000),
                    rng.randint(1, 6),
                    rng.randint(1, 4),
                    rng.randint(1950, 2024),
                    round(rng.uniform(0.05, 2), 3),
                    round(rng.uniform(0, 30), 2),
                    round(rng.uniform(2, 8), 2),
                    LOCATIONS[i % 5],
                    TYPES[i % 3],
                    "a, quoted" if i % 97 == 0 else "",
                ]
            )


def write_ids(path: Path, rows: int) -> None:
    with path.open("w") as fh:
        fh.write("id,x\n")
        for start in range(0, rows, 100_000):
            fh.write(
                "".join(f"{i},{i % 1000 / 10}\n" for i in range(start, min(rows, start + 100_000)))
            )


def batch_map_definition() -> dict[str, Any]:
    """The batch-scoring machine's Map settings, each child a Pass state."""
    return {
        "StartAt": "ScoreRows",
        "States": {
            "ScoreRows": {
                "Type": "Map",
                "ItemReader": {
                    "Resource": "arn:aws:states:::s3:getObject",
                    "ReaderConfig": {"InputType": "CSV", "CSVHeaderLocation": "FIRST_ROW"},
                    "Parameters": {"Bucket.$": "$.job.bucket", "Key.$": "$.job.key"},
                },
                "ItemSelector": {"index.$": "$$.Map.Item.Index", "row.$": "$$.Map.Item.Value"},
                "ItemBatcher": {
                    "MaxItemsPerBatch": 1000,
                    "MaxInputBytesPerBatch": 204800,
                    "BatchInput": {"job.$": "$.job"},
                },
                "MaxConcurrency": 50,
                "ToleratedFailurePercentage": 5,
                "ItemProcessor": {
                    "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "EXPRESS"},
                    "StartAt": "Score",
                    "States": {"Score": {"Type": "Pass", "Result": {"ok": True}, "End": True}},
                },
                "ResultPath": "$.map",
                "End": True,
            }
        },
    }


class FileObjects:
    """An ObjectSource over one local file (whatever the bucket and key)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def open(self, bucket: str, key: str, version_id: str | None = None) -> IO[bytes]:
        from mlops_cli.emulator.states.objects import CHUNK_BYTES

        return self.path.open("rb", buffering=CHUNK_BYTES)

    def write(self, bucket: str, key: str, body: IO[bytes]) -> int:
        raise NotImplementedError("the reader benchmark writes no results")


def rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def reader_child(path: str, rows: int) -> dict[str, Any]:
    from mlops_cli.emulator.states.definition import compile_machine
    from mlops_cli.emulator.states.interpreter import Interpreter, new_execution
    from mlops_cli.emulator.states.map_run import DistributedMap

    machine = compile_machine(batch_map_definition(), lambda f: False)
    runner = DistributedMap(FileObjects(Path(path)), max_workers=4)
    interpreter = Interpreter(None, lambda f: None, map_runner=runner)  # type: ignore[arg-type]
    job = {"job": {"bucket": "local", "key": "batch/houses.csv", "job_id": "bench"}}
    before = rss_mb()
    started = time.perf_counter()
    out = interpreter.execute(machine, new_execution(MACHINE_ARN, job))
    seconds = time.perf_counter() - started
    counts = runner.last_counts
    assert counts is not None
    assert counts.items == rows, (counts, rows)
    assert len(out["map"]) == counts.children  # one output per batch, none failed
    return {
        "rows": rows,
        "batches": counts.children,
        "seconds": round(seconds, 2),
        "rows_per_s": round(rows / seconds),
        "peak_mb": round(peak_mb(), 1),
        "growth_mb": round(peak_mb() - before, 1),
    }


def reader(rows: int, folder: Path) -> dict[str, Any]:
    path = folder / f"houses-{rows}.csv"
    write_houses(path, rows)
    done = subprocess.run(
        [sys.executable, __file__, "--reader-child", str(path), str(rows)],
        capture_output=True,
        text=True,
        check=True,
    )
    path.unlink()
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def e2e(rows: int, folder: Path) -> dict[str, Any]:
    import logging

    import boto3
    from boto3.s3.transfer import TransferConfig

    from mlops_cli.emulator.stack import LocalStack

    logging.getLogger("mlops_cli").setLevel(logging.ERROR)
    template = ROOT / "tests" / "fixtures" / "stepfn" / "template.yaml"
    path = folder / f"ids-{rows}.csv"
    write_ids(path, rows)
    stack = LocalStack(template, parameters={"RowsPerBatch": "1000", "MapConcurrency": "8"})
    stack.start()
    try:
        kw = {
            "endpoint_url": stack.endpoint,
            "region_name": "us-east-1",
            "aws_access_key_id": "testing",
            "aws_secret_access_key": "testing",
        }
        s3, sfn = boto3.client("s3", **kw), boto3.client("stepfunctions", **kw)
        bucket = stack.resolver.refs["DataBucket"]
        s3.upload_file(
            str(path),
            bucket,
            "batch/bench.csv",
            Config=TransferConfig(multipart_chunksize=64 * 2**20),
        )
        started = time.perf_counter()
        machine = stack.outputs["StateMachineArn"]
        status = "RUNNING"
        described: dict[str, Any] = {}
        while status == "RUNNING":
            time.sleep(0.2)
            executions = sfn.list_executions(stateMachineArn=machine)["executions"]
            if executions:
                described = sfn.describe_execution(executionArn=executions[0]["executionArn"])
                status = described["status"]
        seconds = time.perf_counter() - started
        if status != "SUCCEEDED":
            raise SystemExit(
                f"execution {status}: {described.get('error')} {described.get('cause', '')[:500]}"
            )
        predictions = 0
        paginator = s3.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=bucket, Prefix="predictions/bench.csv/"):
            for obj in page.get("Contents", []):
                body = s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
                predictions += body.count(b"\n") - 1
    finally:
        stack.stop()
        path.unlink()
    return {
        "e2e_rows": rows,
        "e2e_predictions": predictions,
        "e2e_seconds": round(seconds, 1),
        "e2e_rows_per_s": round(rows / seconds),
        "e2e_stack_peak_mb": round(peak_mb(), 1),
    }


def write_market(path: Path, rows: int) -> None:
    """Synthetic house sales (the shipped model's features and target), 200k rows at a time."""
    from mlops.domain.synthetic import conditions_for_month, csv_bytes, generate

    with path.open("wb") as fh:
        for number, start in enumerate(range(0, rows, 200_000)):
            size = min(200_000, rows - start)
            text = csv_bytes(generate(size, conditions_for_month(1), seed=number))
            fh.write(text if number == 0 else text.split(b"\n", 1)[1])


def e2e_batch_scoring(rows: int, folder: Path) -> dict[str, Any]:
    """The real template: `mlops batch`'s path with BatchLambdaMaxBytes at 1 KB, so the file
    goes through BatchScoringStateMachine's Distributed Map and its Summarize task."""
    import threading

    import psutil

    from mlops_cli import batch
    from mlops_cli.emulator.runner import start_local
    from mlops_cli.emulator.stack import free_port

    path = folder / "portfolio.csv"
    write_market(path, rows)
    running = start_local(
        ROOT / "template.yaml",
        port=free_port(),
        quiet_functions=True,
        parameters={"BatchLambdaMaxBytes": "1024"},
    )
    peak = [0]
    done = threading.Event()

    def sample() -> None:  # the stack process while the job runs (not the model's bootstrap)
        me = psutil.Process()
        while not done.wait(0.2):
            peak[0] = max(peak[0], me.memory_info().rss)

    sampler = threading.Thread(target=sample, daemon=True)
    try:
        sampler.start()
        uploaded = time.perf_counter()
        started = upload(running.target, path)
        began = time.perf_counter()
        summary: dict[str, Any] = {}
        for progress in batch.follow(started, timeout=4 * 3600):
            summary = progress.summary or summary
        seconds = time.perf_counter() - began
    finally:
        done.set()
        running.stop()
        path.unlink()
    if summary.get("engine") != "step-functions":
        raise SystemExit(f"the job did not take the Distributed Map: {summary}")
    return {
        "e2e_rows": rows,
        "e2e_predictions": summary.get("scored"),
        "e2e_rejected": summary.get("rejected"),
        "e2e_status": summary.get("status"),
        "e2e_upload_seconds": round(began - uploaded, 1),
        "e2e_seconds": round(seconds, 1),
        "e2e_rows_per_s": round(rows / seconds),
        "e2e_stack_peak_mb": round(peak[0] / 2**20, 1),
    }


def upload(target: Any, path: Path) -> Any:
    """What ``mlops batch`` uploads, as a multipart upload (one PUT of a gigabyte outlasts the
    client's read timeout against moto), and the job it starts."""
    import boto3
    from boto3.s3.transfer import TransferConfig
    from botocore.config import Config

    from mlops.domain import batch_job
    from mlops_cli import batch

    bucket = target.output("TrainingDataBucketName")
    key = target.output("BatchPrefix") + path.name
    s3 = boto3.client("s3", config=Config(read_timeout=900, retries={"max_attempts": 1}))
    s3.upload_file(str(path), bucket, key, Config=TransferConfig(multipart_chunksize=128 * 2**20))
    head = s3.head_object(Bucket=bucket, Key=key)
    revision = head.get("VersionId") or head["ETag"].strip('"')
    return batch.Started(batch_job.job_id_for(key, revision), bucket, key)


def has_batch_machine() -> bool:
    return "BatchScoringStateMachine:" in (ROOT / "template.yaml").read_text()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="end with one JSON object")
    parser.add_argument("--reader-rows", type=int, nargs="*", default=[1_000_000, 10_000_000])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows end to end")
    parser.add_argument("--skip-e2e", action="store_true")
    parser.add_argument(
        "--template",
        choices=["auto", "real", "fixture"],
        default="auto",
        help="end to end on template.yaml's batch scoring (auto: if declared) or the fixture",
    )
    parser.add_argument("--reader-child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.reader_child:
        print(json.dumps(reader_child(args.reader_child[0], int(args.reader_child[1]))))
        return
    summary: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="batch-map-") as tmp:
        folder = Path(tmp)
        readers = [reader(rows, folder) for rows in sorted(args.reader_rows)]
        for result in readers:
            label = (
                f"reader_{result['rows'] // 1_000_000}m"
                if result["rows"] >= 1_000_000
                else f"reader_{result['rows']}"
            )
            for key in ("rows_per_s", "peak_mb", "growth_mb", "seconds", "batches"):
                summary[f"{label}_{key}"] = result[key]
        if not args.skip_e2e:
            real = has_batch_machine() if args.template == "auto" else args.template == "real"
            run = e2e_batch_scoring if real else e2e
            summary["e2e_template"] = "template.yaml" if real else "tests/fixtures/stepfn"
            summary.update(run(args.rows, folder))
    targets = {
        "reader_rows_per_s": READER_TARGET_ROWS_PER_S,
        "reader_growth_flat_mb": FLAT_MEMORY_SLACK_MB,
    }
    met = {
        "reader_rows_per_s": bool(readers)
        and all(r["rows_per_s"] >= READER_TARGET_ROWS_PER_S for r in readers),
        "reader_growth_flat_mb": len(readers) < 2
        or readers[-1]["growth_mb"] <= readers[0]["growth_mb"] + FLAT_MEMORY_SLACK_MB,
    }
    summary |= {"targets": targets, "targets_met": met}
    if args.json:
        print(json.dumps(summary))
        return
    width = max(len(k) for k in summary)
    for key, value in summary.items():
        if key not in ("targets", "targets_met"):
            print(f"{key:<{width}}  {value}")
    for key, bar in targets.items():
        print(f"target {key} {bar}: {'met' if met[key] else 'NOT met'}")


if __name__ == "__main__":
    main()
