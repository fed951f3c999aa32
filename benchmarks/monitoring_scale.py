"""Monitoring at scale: what one drift evaluation costs when traffic is hostile or large.

    .venv/bin/python benchmarks/monitoring_scale.py [--json] [--scenarios flood ...]
                                                    [--flood-rows N] [--batch N]

Each scenario is a section of its own (``--scenarios``; default: every implemented one):

  flood   the poisoning flood of issue 18. ``--flood-rows`` predictions (default 2,270,000,
          the review's out-of-memory point) in requests of ``--batch`` instances (default
          1,000), every instance with a random 32-character ``location`` and
          ``property_type``, all in one hour, no labels. Each request is one log event and
          each delivery one request, stored by the real ``PredictionLoggerService`` into a
          moto server (captures and sketches, as the subscription would). v1 is trained and
          registered first by the real ``TrainingService`` (3,000 rows, month 0); the
          predictions are the generator's prices (the flood is about inputs, not about the
          model). Then a child process runs the real drift evaluator's composition root,
          ``drift_service().evaluate(24, act=False)``, twice: the first evaluation reads the
          hour's batch sketches and writes its roll-up (the worst case: the run right after
          the flood), the second reads the roll-up. Measured in the child: wall time of each
          evaluation, and within the first the sketch window (``SketchStore.window``) and live
          quality (``DriftService._labeled``: labels folded and read) separately; peak memory
          (``VmHWM``: the child's whole resident high-water mark, interpreter and imports
          included, as Lambda counts it; ``ready_mb`` is its RSS just before the first
          evaluation); S3 requests by operation. Targets (issue 18): first evaluation
          <= 30 s and <= 256 MB, a report written, the sketch window's size bounded
          (``unseen_top`` of each categorical feature <= K).
  scale   the hourly run's cost as traffic grows: ``benchmarks/monitoring_cost.py`` (its
          docstring says how) for ``--sizes`` predictions a day (default 10k, 100k, 1M), 10 %
          labeled or ``--labels`` a day at every size. Targets (issue 18) at 1M: <= 10 s,
          <= 300 S3 requests, <= 512 MB; from 1M to 10M at equal labels (when both ran): time
          <= 1.5x, requests flat.

Without --json: a table per section on stdout, progress on stderr. With --json: one JSON
object, the only line on stdout: ``scenarios`` (the sections run), per section its figures
under its name (``flood``: rows, batches, batch_rows, setup_s, evaluate_s, evaluate_again_s,
sketch_window_s, live_quality_s, peak_mb, ready_mb, s3_requests (first evaluation, by
operation), rollup_bytes, unseen_top_max, max_unseen_categories, unseen_share (location),
evaluated_rows, skipped_count, report_written, status), ``targets`` and ``targets_met`` (keys
prefixed with the section's name), cpu_count and load_avg.

The flood's time target is the whole first evaluation. The sketch window reads each batch
sketch of the flooded hour once (then its roll-up), 8 GETs at a time, in bounded memory.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
for path in (ROOT, ROOT / "layers" / "core", ROOT / "cli"):
    sys.path.insert(0, str(path))

MODEL = "house-prices"
BUCKET = "monitoring-benchmark"
TABLE = "monitoring-benchmark-registry"
BUS = "monitoring-benchmark-bus"
ENVIRONMENT = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "POWERTOOLS_SERVICE_NAME": "monitoring-benchmark",
    "POWERTOOLS_METRICS_NAMESPACE": "ServerlessMLOpsBenchmark",
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_LOG_LEVEL": "WARNING",
    "MODEL_NAME": MODEL,
    "MODEL_BUCKET": BUCKET,
    "CAPTURE_BUCKET": BUCKET,
    "REGISTRY_TABLE": TABLE,
    "RETRAIN_BUS": BUS,
}
FLOOD_TARGETS = {"evaluate_s": 30.0, "peak_mb": 256.0}


@dataclass
class Section:
    """One scenario's figures, its targets and whether they were met, and its table rows."""

    figures: dict[str, Any]
    targets: dict[str, Any]
    met: dict[str, bool]
    table: list[tuple[str, str]] = field(default_factory=list)


def progress(message: str) -> None:
    print(f"[monitoring_scale] {message}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def silenced() -> Iterator[None]:
    """The logger's "batch stored" lines and EMF metrics go to /dev/null, not stdout."""
    import logging

    from mlops.observability import logger

    handler = logger.registered_handler
    assert isinstance(handler, logging.StreamHandler)
    with open(os.devnull, "w") as sink:
        previous = handler.setStream(sink)
        try:
            with contextlib.redirect_stdout(sink):
                yield
        finally:
            handler.setStream(previous)


@contextlib.contextmanager
def moto_server() -> Iterator[str]:
    """A moto server on a free port (the local stack's, refusing keys AWS refuses)."""
    import logging

    from mlops_cli.emulator.s3_limits import MotoServer
    from mlops_cli.emulator.stack import free_port

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    port = free_port()
    server = MotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


# --- flood ------------------------------------------------------------------------------------


def flood(args: argparse.Namespace) -> Section:
    started = time.perf_counter()
    with moto_server() as endpoint:
        os.environ.update(ENVIRONMENT | {"AWS_ENDPOINT_URL": endpoint})
        os.environ.pop("AWS_PROFILE", None)
        create_resources()
        progress("training v1 (3,000 rows)")
        train_v1()
        hour = (datetime.now(UTC) - timedelta(hours=2)).replace(minute=0, second=0, microsecond=0)
        progress(f"flooding {args.flood_rows:,} rows through the logger, {args.batch:,} a batch")
        batches = store_flood(args.flood_rows, args.batch, hour)
        setup_s = time.perf_counter() - started
        progress(f"set up in {setup_s:.0f} s; evaluating in a child process")
        child = subprocess.run(
            [sys.executable, __file__, "--child-evaluate", endpoint],
            capture_output=True,
            text=True,
            check=False,
            env=os.environ | {"PYTHONPATH": f"{ROOT / 'layers' / 'core'}:{ROOT / 'cli'}"},
        )
        if child.returncode != 0:
            raise RuntimeError(f"the evaluation failed:\n{child.stderr[-4000:]}")
        measured = json.loads(child.stdout.strip().splitlines()[-1])
        figures = {
            "rows": args.flood_rows,
            "batches": batches,
            "batch_rows": args.batch,
            "setup_s": round(setup_s, 1),
            **measured,
            **rollup_figures(hour),
        }
    met = {
        "evaluate_s": figures["evaluate_s"] <= FLOOD_TARGETS["evaluate_s"],
        "peak_mb": figures["peak_mb"] <= FLOOD_TARGETS["peak_mb"],
        "report_written": bool(figures["report_written"]),
        "sketch_bounded": figures["unseen_top_max"] <= (figures["max_unseen_categories"] or 0),
    }
    targets = {**FLOOD_TARGETS, "report_written": True, "sketch_bounded": True}
    table = [
        ("poisoned rows (random 32-char categories)", f"{figures['rows']:,}"),
        ("deliveries (logger batches)", f"{figures['batches']:,} x {figures['batch_rows']:,}"),
        ("setup: train v1, flood through the logger", f"{figures['setup_s']:.0f} s"),
        ("first evaluation (reads batch sketches)", f"{figures['evaluate_s']:.2f} s"),
        ("  of which the sketch window", f"{figures['sketch_window_s']:.2f} s"),
        ("  of which live quality (labels)", f"{figures['live_quality_s']:.2f} s"),
        ("second evaluation (reads the roll-up)", f"{figures['evaluate_again_s']:.2f} s"),
        ("peak memory (child VmHWM)", f"{figures['peak_mb']:.0f} MB"),
        ("  RSS before the first evaluation", f"{figures['ready_mb']:.0f} MB"),
        ("S3 requests, first evaluation", json.dumps(figures["s3_requests"])),
        ("roll-up of the hour", f"{figures['rollup_bytes']:,} B"),
        ("unseen names kept (max per feature)", f"{figures['unseen_top_max']}"),
        ("unseen share (location)", f"{figures['unseen_share']:.4f}"),
        ("report written / status", f"{figures['report_written']} / {figures['status']}"),
    ]
    return Section(figures, targets, met, table)


def create_resources() -> None:
    import boto3

    boto3.client("s3").create_bucket(Bucket=BUCKET)
    boto3.client("dynamodb").create_table(
        TableName=TABLE,
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    boto3.client("events").create_event_bus(Name=BUS)


def train_v1() -> None:
    from mlops.adapters import aws
    from mlops.adapters.model_store import ModelStore
    from mlops.adapters.registry import Registry
    from mlops.domain.config_document import load_config
    from mlops.domain.synthetic import conditions_for_month, csv_bytes, generate
    from mlops.services.training import TrainingService

    aws.client.cache_clear()
    store = ModelStore(BUCKET, aws.client("s3"))
    trainer = TrainingService(store, Registry(TABLE, aws.client("dynamodb")), "benchmark")
    with silenced():
        trainer.train_and_register(
            load_config(),
            csv_bytes(generate(3000, conditions_for_month(0), seed=0)),
            "s3://benchmark/m0.csv",
        )


def store_flood(rows: int, batch: int, hour: datetime) -> int:
    """``rows`` poisoned predictions through the real logger, one request a delivery."""
    import numpy as np

    from mlops.adapters import aws
    from mlops.adapters.capture_store import CaptureStore
    from mlops.adapters.model_store import ModelStore
    from mlops.domain import capture
    from mlops.domain.synthetic import conditions_for_month, generate
    from mlops.services.prediction_logger import LogEvent, PredictionLoggerService
    from mlops_cli.emulator.sources.logs import log_event_id

    s3 = aws.client("s3")
    service = PredictionLoggerService(
        CaptureStore(BUCKET, s3), ModelStore(BUCKET, s3), model_name=MODEL
    )
    pool = generate(10_000, conditions_for_month(0), seed=1)
    names = [n for n in pool if n != "price"]
    houses = [
        {n: pool[n][i].item() if hasattr(pool[n][i], "item") else pool[n][i] for n in names}
        for i in range(10_000)
    ]
    prices = [float(p) for p in pool["price"]]
    rng = np.random.default_rng(7)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"))
    start_ms = int(hour.timestamp() * 1000)
    deliveries = 0
    with silenced():
        for first in range(0, rows, batch):
            count = min(batch, rows - first)
            random = letters[rng.integers(0, 52, size=(2 * count, 32))].view("U32").ravel()
            instances = [
                houses[(first + i) % 10_000]
                | {"location": str(random[2 * i]), "property_type": str(random[2 * i + 1])}
                for i in range(count)
            ]
            ts = start_ms + deliveries * 10  # the review's 23 s flood fits in one hour
            lines = capture.capture_lines(
                model=MODEL,
                version="1",
                alias="production",
                variant=None,
                request_id=str(uuid.uuid4()),
                timestamp_ms=ts,
                latency_ms=1.0,
                instances=instances,
                prediction_ids=[str(uuid.uuid4()) for _ in range(count)],
                predictions=[prices[(first + i) % 10_000] for i in range(count)],
                probabilities=None,
            )
            service.store_batch([LogEvent(log_event_id(ts), ts, line) for line in lines])
            deliveries += 1
            if deliveries % 250 == 0:
                progress(f"  {first + count:,} rows stored")
    return deliveries


def rollup_figures(hour: datetime) -> dict[str, Any]:
    import boto3

    key = f"sketches/model={MODEL}/version=1/rollup/dt={hour:%Y-%m-%d}/hour={hour:%H}.json"
    body = boto3.client("s3").get_object(Bucket=BUCKET, Key=key)["Body"].read()
    categorical = json.loads(body)["sketch"]["categorical"]
    # Before bounded sketches (to measure the code this replaced) every name was in "counts".
    return {
        "rollup_bytes": len(body),
        "unseen_top_max": max(len(c.get("unseen_top", c["counts"])) for c in categorical.values()),
    }


def child_evaluate(endpoint: str) -> int:
    """In a fresh process: the drift evaluator's evaluation, twice, measured."""
    os.environ.update(ENVIRONMENT | {"AWS_ENDPOINT_URL": endpoint})
    from mlops.adapters import aws
    from mlops.adapters.sketch_store import SketchStore
    from mlops.services.drift import DriftService, drift_service

    timings: dict[str, float] = {}

    def timed(owner: Any, name: str) -> None:
        original = getattr(owner, name)

        def wrapper(*a: Any, **k: Any) -> Any:
            began = time.perf_counter()
            try:
                return original(*a, **k)
            finally:
                timings[name] = timings.get(name, 0.0) + time.perf_counter() - began

        setattr(owner, name, wrapper)

    timed(SketchStore, "window")
    timed(DriftService, "_labeled")  # live quality: labels folded and read
    requests: dict[str, int] = {}

    def count(event_name: str, **_: Any) -> None:
        operation = event_name.rsplit(".", 1)[-1]
        requests[operation] = requests.get(operation, 0) + 1

    aws.client("s3").meta.events.register("before-call.s3", count)
    service = drift_service()
    ready_mb = rss_mb("VmRSS")
    with silenced():
        began = time.perf_counter()
        outcome = service.evaluate(24, act=False)
        first = time.perf_counter() - began
        first_requests = dict(requests)
        window_s, quality_s = timings.get("window", 0.0), timings.get("_labeled", 0.0)
        began = time.perf_counter()
        service.evaluate(24, act=False)
        again = time.perf_counter() - began
    report = outcome.report
    location = next(f for f in report["features"] if f["name"] == "location")
    from mlops.services.stack_config import stack_config

    k = getattr(stack_config(service._store, MODEL).drift, "max_unseen_categories", None)
    print(
        json.dumps(
            {
                "evaluate_s": round(first, 2),
                "evaluate_again_s": round(again, 2),
                "sketch_window_s": round(window_s, 2),
                "live_quality_s": round(quality_s, 2),
                "peak_mb": round(rss_mb("VmHWM"), 1),
                "ready_mb": round(ready_mb, 1),
                "s3_requests": first_requests,
                "report_written": bool(outcome.json_uri),
                "status": report["verdict"]["status"],
                "evaluated_rows": report["rows"],
                "unseen_share": location["statistics"]["unseen_share"],
                "skipped_count": report["sources"]["skipped_count"],
                "max_unseen_categories": k,
            }
        )
    )
    return 0


def rss_mb(field_name: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


# --- the run ----------------------------------------------------------------------------------


def scale(args: argparse.Namespace) -> Section:
    """The hourly run at growing traffic (``monitoring_cost``, one local stack per size)."""
    import monitoring_cost

    results = {rows: monitoring_cost.measure(rows, args.labels) for rows in args.sizes}
    summary = monitoring_cost.summarise(results)
    table = [
        (
            f"{name}/day, {f['labels']:,} labels",
            f"{f['seconds']:.2f} s, {f['s3_requests']} S3 req, {f['peak_mb']:.0f} MB",
        )
        for name, f in summary["sizes"].items()
    ]
    return Section(summary, summary["targets"], summary["targets_met"], table)


SCENARIOS: dict[str, Callable[[argparse.Namespace], Section] | None] = {
    "flood": flood,
    "scale": scale,
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print only one JSON object")
    parser.add_argument(
        "--scenarios", nargs="+", choices=sorted(SCENARIOS), default=None, help="sections to run"
    )
    parser.add_argument("--flood-rows", type=int, default=2_270_000)
    parser.add_argument("--batch", type=int, default=1000, help="instances a request")
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--labels", type=int, default=None, help="scale: labels a day, fixed")
    parser.add_argument("--child-evaluate", metavar="ENDPOINT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_evaluate:
        return child_evaluate(args.child_evaluate)
    chosen = args.scenarios or [name for name, run in SCENARIOS.items() if run is not None]
    missing = [name for name in chosen if SCENARIOS[name] is None]
    if missing:
        parser.error(f"not implemented yet: {', '.join(missing)}")
    out: dict[str, Any] = {"scenarios": chosen, "targets": {}, "targets_met": {}}
    for name in chosen:
        run = SCENARIOS[name]
        assert run is not None
        section = run(args)
        out[name] = section.figures
        out["targets"] |= {f"{name}_{k}": v for k, v in section.targets.items()}
        out["targets_met"] |= {f"{name}_{k}": v for k, v in section.met.items()}
        if not args.json:
            print(f"\n{name}")
            print(f"{'measurement':<46} {'value':>30}")
            for label, value in section.table:
                print(f"{label:<46} {value:>30}")
            verdict = ", ".join(f"{k}={'yes' if v else 'NO'}" for k, v in section.met.items())
            print(f"targets {json.dumps(section.targets)}; met: {verdict}")
    out |= {"cpu_count": os.cpu_count(), "load_avg": [round(x, 2) for x in os.getloadavg()]}
    if args.json:
        print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
