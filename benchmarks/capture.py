"""Capture storage cost: how fast the prediction logger turns capture lines into objects, how
big those objects are, and what building and merging drift sketches costs.

    .venv/bin/python benchmarks/capture.py [--json] [--batch N] [--runs N]

Measures, in this process, with moto (``mock_aws``) holding a real ``baseline.json`` built from
the synthetic generator (month 0) and read by the real ``ModelStore``:
  logger_records_per_s     captured predictions per second through
                           ``PredictionLoggerService.store_batch`` for one batch of ``--batch``
                           one-row capture lines (``capture.capture_lines``, as the inference
                           function writes them), median of ``--runs``. S3 is EXCLUDED: the
                           ``CaptureStore`` is a recording fake whose ``_put`` only keeps the
                           key and ``len(body)``, so the real JSON Lines + gzip (captures) and
                           JSON (sketch) encoding run, but no ``PutObject`` (botocore request,
                           signing, HTTP, moto) does. The version's baseline is read from moto
                           once by a warm-up batch and cached by the service, as in a warm
                           container, so the timed runs make no S3 call at all. Included:
                           dedupe and sort by event id, parsing and validating each line, rows,
                           partitioning, gzip, the sketch and the Powertools metric and "batch
                           stored" log calls (their output goes to /dev/null).
  bytes_per_record         gzip bytes of the batch's captures object per captured prediction
  sketch_bytes             bytes of the batch's sketch document (compact JSON, not gzipped)
  sketch_build_1k_rows_ms  ``build_sketch`` on 1,000 capture rows with a cached plan, median
  sketch_merge_10k_s       ``merge_all`` of 10,000 sketches of 100 rows each, median of 3
With --json the last line is one JSON object with these keys, plus batch and runs.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

MODEL = "house-prices"
VERSION = "1"
BUCKET = "benchmark-artifacts"
# One hour of traffic, so the batch is one captures object and one sketch.
HOUR = int(datetime(2024, 5, 1, 10, 0, tzinfo=UTC).timestamp() * 1000)
BASELINE_ROWS = 2000
MERGE_SKETCHES = 10_000
MERGE_ROWS = 100
MERGE_RUNS = 3
BUILD_ROWS = 1000
BUILD_RUNS = 21
# moto's dummy credentials, and Powertools configured as Lambda would be before import.
ENVIRONMENT = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "POWERTOOLS_SERVICE_NAME": "capture-benchmark",
    "POWERTOOLS_METRICS_NAMESPACE": "ServerlessMLOpsBenchmark",
    "POWERTOOLS_TRACE_DISABLED": "true",
}


def houses(rows: int, seed: int) -> tuple[list[dict[str, Any]], list[float]]:
    """Synthetic month-0 houses as the API receives them (plain JSON values, no price), and
    their prices, which stand in for the model's predictions."""
    from mlops.domain.synthetic import conditions_for_month, generate

    columns = generate(rows, conditions_for_month(0), seed=seed)
    features = [name for name in columns if name != "price"]
    instances = [
        {
            name: columns[name][i].item() if hasattr(columns[name][i], "item") else columns[name][i]
            for name in features
        }
        for i in range(rows)
    ]
    return instances, [float(p) for p in columns["price"]]


def make_baseline() -> dict[str, Any]:
    from mlops.domain.baseline import build_baseline
    from mlops.domain.config_document import load_config
    from mlops.domain.synthetic import conditions_for_month, generate

    columns = generate(BASELINE_ROWS, conditions_for_month(0), seed=1)
    document = build_baseline(
        load_config().features,
        columns,
        columns["price"],
        task="regression",
        metrics={},
        bins=20,
    )
    parsed: dict[str, Any] = json.loads(json.dumps(document))  # as read back from S3
    return parsed


def capture_events(batch: int) -> list[Any]:
    """``batch`` log events, each one one-row capture line of one request."""
    from mlops.domain import capture
    from mlops.services.prediction_logger import LogEvent
    from mlops_cli.emulator.sources.logs import log_event_id

    instances, predictions = houses(batch, seed=2)
    events = []
    for i in range(batch):
        ts = HOUR + i * 3  # a few ms apart, all in one hour
        (line,) = capture.capture_lines(
            model=MODEL,
            version=VERSION,
            alias="production",
            variant="production",
            request_id=str(uuid.uuid4()),
            timestamp_ms=ts,
            latency_ms=0.213,
            instances=[instances[i]],
            prediction_ids=[str(uuid.uuid4())],
            predictions=[predictions[i]],
            probabilities=None,
        )
        events.append(LogEvent(log_event_id(ts), ts, line))
    return events


def recording_store() -> Any:
    """A CaptureStore that encodes exactly as the real one and then only records sizes."""
    from mlops.adapters.capture_store import CaptureStore

    class RecordingCaptureStore(CaptureStore):
        def __init__(self) -> None:
            super().__init__(BUCKET, s3=None)
            self.sizes: dict[str, int] = {}

        def _put(self, key: str, body: bytes, headers: Mapping[str, str]) -> None:
            self.sizes[key] = len(body)

    return RecordingCaptureStore()


@contextlib.contextmanager
def quiet(sink: IO[str]) -> Iterator[None]:
    """Send stdout and the Powertools log handler (which kept the stdout it was made with) to
    ``sink``: the "batch stored" line is still formatted and written, just not shown."""
    import logging

    from mlops.observability import logger

    handler = logger.registered_handler
    assert isinstance(handler, logging.StreamHandler)
    previous = handler.setStream(sink)
    try:
        with contextlib.redirect_stdout(sink):
            yield
    finally:
        handler.setStream(previous)


def median_of(runs: int, call: Callable[[], Any]) -> float:
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        call()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def measure_logger(args: argparse.Namespace, baseline: dict[str, Any]) -> dict[str, float]:
    import boto3
    from moto import mock_aws

    from mlops.adapters import aws
    from mlops.adapters.model_store import ModelStore
    from mlops.domain.layout import version_prefix
    from mlops.observability import metrics
    from mlops.services.prediction_logger import PredictionLoggerService

    events = capture_events(args.batch)
    with mock_aws():
        aws.client.cache_clear()
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket=BUCKET)
        key = version_prefix(MODEL, VERSION) + "baseline.json"
        s3.put_object(Bucket=BUCKET, Key=key, Body=json.dumps(baseline).encode())
        store = recording_store()
        service = PredictionLoggerService(
            store, ModelStore(BUCKET, aws.client("s3")), model_name=MODEL
        )
        samples = []
        with open(os.devnull, "w") as sink, quiet(sink):
            summary = service.store_batch(events)  # warm-up: reads and caches the baseline
            for _ in range(args.runs):
                metrics.clear_metrics()
                started = time.perf_counter()
                service.store_batch(events)
                samples.append(time.perf_counter() - started)
            metrics.clear_metrics()
        aws.client.cache_clear()
    assert summary.captured_predictions == args.batch, summary
    assert summary.missing_baselines == 0, summary
    (captures_size,) = [v for k, v in store.sizes.items() if k.startswith("captures/")]
    (sketch_size,) = [v for k, v in store.sizes.items() if k.startswith("sketches/")]
    return {
        "logger_records_per_s": round(args.batch / statistics.median(samples), 1),
        "bytes_per_record": round(captures_size / args.batch, 1),
        "sketch_bytes": sketch_size,
    }


def capture_rows(rows: int, seed: int) -> list[dict[str, Any]]:
    """Stored capture rows (``capture.capture_rows``), as the logger hands them to sketches."""
    from mlops.domain import capture

    instances, predictions = houses(rows, seed)
    record = {
        "prediction_ids": [str(uuid.uuid4()) for _ in range(rows)],
        "request_id": str(uuid.uuid4()),
        "ts": HOUR,
        "model": MODEL,
        "version": VERSION,
        "variant": "production",
        "instances": instances,
        "predictions": predictions,
    }
    return capture.capture_rows(record)


def measure_sketches(baseline: dict[str, Any]) -> dict[str, float]:
    from mlops.domain.sketch import SketchPlan, build_sketch
    from mlops.domain.sketch_merge import merge_all

    plan = SketchPlan.from_baseline(baseline)
    thousand = capture_rows(BUILD_ROWS, seed=3)
    build_sketch(plan, thousand)  # warm-up
    build_s = median_of(BUILD_RUNS, lambda: build_sketch(plan, thousand))

    pool = capture_rows(MERGE_SKETCHES, seed=4)
    # Each sketch: 100 consecutive rows of the pool, from a different start each time.
    step = 7919  # prime, so starts spread over the pool
    span = len(pool) - MERGE_ROWS
    sketches = [
        build_sketch(plan, pool[start : start + MERGE_ROWS])
        for start in ((i * step) % span for i in range(MERGE_SKETCHES))
    ]
    merged = merge_all(sketches)
    assert merged.rows == MERGE_SKETCHES * MERGE_ROWS, merged.rows
    merge_s = median_of(MERGE_RUNS, lambda: merge_all(sketches))
    return {
        "sketch_build_1k_rows_ms": round(build_s * 1000, 3),
        "sketch_merge_10k_s": round(merge_s, 3),
    }


def report(figures: Mapping[str, float], batch: int, runs: int) -> None:
    rows: Iterable[tuple[str, str]] = [
        (
            f"logger, {batch} one-row lines, S3 excluded (median of {runs})",
            f"{figures['logger_records_per_s']:,.0f} records/s",
        ),
        ("captures object, gzip JSON Lines", f"{figures['bytes_per_record']} B/record"),
        ("sketch of that batch (JSON)", f"{figures['sketch_bytes']:,} B"),
        (
            f"build_sketch, {BUILD_ROWS:,} rows (median of {BUILD_RUNS})",
            f"{figures['sketch_build_1k_rows_ms']:.3f} ms",
        ),
        (
            f"merge_all, {MERGE_SKETCHES:,} sketches of {MERGE_ROWS} rows (median of {MERGE_RUNS})",
            f"{figures['sketch_merge_10k_s']:.3f} s",
        ),
    ]
    print(f"{'measurement':<62} {'value':>20}")
    for name, value in rows:
        print(f"{name:<62} {value:>20}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="end with one JSON object")
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    os.environ.update(ENVIRONMENT)
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        os.environ.pop(name, None)  # moto must see every call, and never a real account
    baseline = make_baseline()
    figures = {**measure_logger(args, baseline), **measure_sketches(baseline)}
    report(figures, args.batch, args.runs)
    if args.json:
        print(json.dumps({**figures, "batch": args.batch, "runs": args.runs}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
