"""What one hourly evaluation costs as traffic grows: the drift evaluator (drift from sketch
roll-ups, live quality from folded labels, and the judge of a 10 % canary from serving digests
and labeled documents) after a day of N predictions, 10 % labeled.

    .venv/bin/python benchmarks/monitoring_cost.py [--json] [--sizes 10000 100000 1000000]

For each size a local stack (moto server on loopback, the template's resources) gets v1
trained and promoted and v2 trained and rolled out as a 10 % canary at the start of the day,
then a day of traffic (10 % of each delivery answered by the canary) written through the real
prediction logger
(``PredictionLoggerService.store_batch``, deliveries of 1,000 rows, as CloudWatch Logs would
deliver the inference function's capture lines; ids are the inference function's UUIDv7s),
and labels for 10 % of the predictions (``--labels`` fixes their number instead, e.g. 100,000
at every size: "equal labels"), each arriving 30-90 minutes after its prediction, in feedback
deliveries of 1,000. The evaluator runs once an hour before the day ends (warm-up: it rolls
up the sketches and folds the labels so far), then the last hour's labels arrive and the
measured run happens: ``DriftService.evaluate`` over the default 24 h window, then
``RolloutService.evaluate`` (without acting), sharing one sketch store and label folder,
exactly as the scheduled function runs them. Measured: the run's wall time, its S3 requests by
operation and by part (a botocore hook on the client it uses) and the measured process's peak
resident memory (VmHWM: the function's imports included, as Lambda counts them).

Prints a table; with --json one JSON object: per size ``seconds``, ``s3_requests`` (and by
operation), ``drift``/``rollout`` (each part's seconds and requests), ``peak_mb``, ``labels``,
``folded`` (the fold's counts), ``rollout_decision``; ``targets`` and
``targets_met`` for the 1M size (≤ 10 s, ≤ 300 requests, ≤ 512 MB) and, when both 1M and 10M
ran, the growth from 1M to 10M (time ≤ 1.5x, requests flat).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
# The services' INFO lines would land on stdout, which holds only the table or the JSON.
os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")

DELIVERY = 1_000
TARGETS = {"seconds_1m": 10.0, "s3_requests_1m": 300, "peak_mb_1m": 512.0}
GROWTH = {"seconds_growth": 1.5, "s3_requests_growth": 1.0}


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def label(rows: int) -> str:
    return f"{rows // 1_000_000}M" if rows >= 1_000_000 else f"{rows // 1_000}k"


CANARY_SHARE = 0.10


def write_day(stack: Any, rows: int, labels: int, end: datetime) -> tuple[int, list[Any]]:
    """A day of ``rows`` predictions ending at ``end`` through the real logger; returns the
    number of labels and the last hour's feedback deliveries (written later)."""
    from mlops.adapters.aws import client
    from mlops.adapters.capture_store import CaptureStore
    from mlops.adapters.registry import Registry
    from mlops.domain import capture
    from mlops.domain.ids import uuid7s
    from mlops.domain.synthetic import conditions_for_month, generate
    from mlops.services.model_loading import load_version
    from mlops.services.prediction_logger import LogEvent, PredictionLoggerService
    from mlops_cli.emulator.sources.logs import log_event_id
    from mlops_cli.emulator.target import Target

    target = Target(stack.outputs, "benchmark stack")
    s3 = client("s3")
    model = target.model_name
    logger = PredictionLoggerService(
        CaptureStore(target.store().bucket, s3), target.store(), model_name=model
    )
    registry = Registry(target.output("RegistryTableName"), client("dynamodb"))
    loaded = load_version(target.store(), registry, model, "1")
    canary = load_version(target.store(), registry, model, "2")
    rng = np.random.default_rng(0)
    start_ms = int((end - timedelta(hours=24)).timestamp() * 1000)
    span_ms = 24 * 3_600_000
    chunk = 100_000
    label_rate = labels / rows
    pending: list[tuple[int, dict[str, Any]]] = []  # (arrival ms, item)
    names = [f.name for f in loaded.manifest.signature.features]
    for first in range(0, rows, chunk):
        n = min(chunk, rows - first)
        columns = generate(n, conditions_for_month(0), seed=first)
        inputs = {k: np.asarray(columns[k]) for k in names}
        predictions = [float(p) for p in loaded.model.score(inputs).values]
        answers = [float(p) for p in canary.model.score(inputs).values]
        prices = columns["price"]
        ts = np.sort(start_ms + rng.integers(0, span_ms, n))
        events = []
        for lo in range(0, n, DELIVERY):
            hi = min(n, lo + DELIVERY)
            instances = [
                {k: (v.item() if hasattr(v, "item") else v) for k in names for v in [columns[k][i]]}
                for i in range(lo, hi)
            ]
            moment = int(ts[lo])
            ids = uuid7s(moment, hi - lo)
            cut = round((hi - lo) * (1 - CANARY_SHARE))  # the rest answered by the canary
            lines = capture.capture_lines(
                model=model, version="1", alias="production", variant=None,
                request_id=f"r{first + lo}", timestamp_ms=moment, latency_ms=0.3,
                instances=instances[:cut], prediction_ids=ids[:cut],
                predictions=predictions[lo:lo + cut], probabilities=None,
            ) + capture.capture_lines(
                model=model, version="2", alias="production", variant="canary",
                request_id=f"c{first + lo}", timestamp_ms=moment, latency_ms=0.4,
                instances=instances[cut:], prediction_ids=ids[cut:],
                predictions=answers[lo + cut:hi], probabilities=None,
            )  # fmt: skip
            events = [LogEvent(log_event_id(moment), moment, line) for line in lines]
            logger.store_batch(events)
            for j in np.flatnonzero(rng.random(hi - lo) < label_rate):
                arrival = moment + int(rng.integers(30, 90)) * 60_000
                pending.append(
                    (arrival, {"prediction_id": ids[j], "actual": float(prices[lo + j])})
                )
        progress(f"[{label(rows)}] {first + n:,} predictions stored")
    pending.sort(key=lambda item: item[0])
    cut = int((end - timedelta(hours=1)).timestamp() * 1000)
    early = [p for p in pending if p[0] < cut]
    late = [p for p in pending if p[0] >= cut]
    for batch in deliveries(early):
        store_feedback(logger, model, batch)
    return len(pending), list(deliveries(late))


def deliveries(items: list[tuple[int, dict[str, Any]]]) -> list[list[tuple[int, dict[str, Any]]]]:
    return [items[i : i + DELIVERY] for i in range(0, len(items), DELIVERY)]


def store_feedback(logger: Any, model: str, batch: list[tuple[int, dict[str, Any]]]) -> None:
    from mlops.domain import capture
    from mlops.services.prediction_logger import LogEvent
    from mlops_cli.emulator.sources.logs import log_event_id

    moment = batch[-1][0]
    lines = capture.feedback_line(model=model, timestamp_ms=moment, items=[i for _, i in batch])
    logger.store_batch([LogEvent(log_event_id(moment), moment, line) for line in lines])


def start_canary(target: Any, config: Any, at: datetime) -> None:
    """v2, trained on month 1, rolled out as a 10 % canary at ``at`` (the start of the day)."""
    from mlops.domain.synthetic import conditions_for_month, csv_bytes, generate
    from mlops.services.rollout import RolloutService
    from mlops_cli.emulator.runner import training_service

    data = csv_bytes(generate(5_000, conditions_for_month(1), seed=7))
    v2 = training_service(target).train_and_register(
        config, data, "s3://benchmark/month-1.csv", promote=False
    )
    assert v2.version == "2", v2
    target.registry().set_status(target.model_name, "2", "candidate", ("benchmark",))
    from mlops.adapters.aws import client
    from mlops.adapters.registry import ROLLOUT_ALIAS
    from mlops.adapters.registry.items import _pk

    RolloutService(
        model=target.model_name,
        store=target.store(),
        registry=target.registry(),
        actor="benchmark",
    ).start("2", mode="canary", percent=CANARY_SHARE * 100, reason="benchmark", force=True)
    # The registry stamps the start with the real clock; the day of traffic is written in the
    # past, so the rollout is moved to its start (a benchmark's setup, not the service's).
    client("dynamodb").update_item(
        TableName=target.output("RegistryTableName"),
        Key={"pk": _pk(target.model_name), "sk": {"S": f"alias#{ROLLOUT_ALIAS}"}},
        UpdateExpression="SET started_at = :at",
        ExpressionAttributeValues={":at": {"S": at.isoformat(timespec="milliseconds")}},
    )


def evaluator(stack: Any, clock: Callable[[], datetime]) -> Any:
    """The drift evaluator's service as its composition root builds it (only the function's
    own modules: the measured child's memory is the function's)."""
    from mlops.adapters.aws import client
    from mlops.adapters.label_store import LabelStore
    from mlops.adapters.model_store import ModelStore
    from mlops.adapters.registry import Registry
    from mlops.adapters.sketch_store import SketchStore
    from mlops.adapters.training_data import TrainingDataStore
    from mlops.services.drift import DriftService
    from mlops.services.labels import LabelFolder
    from mlops.services.rollout import RolloutService

    outputs = stack.outputs
    bucket = outputs["ArtifactsBucketName"]
    s3 = client("s3")
    sketches = SketchStore(bucket, s3)  # shared, as the function shares them
    labels = LabelFolder(
        outputs["ModelName"], TrainingDataStore(bucket, s3), LabelStore(bucket, s3), clock=clock
    )
    store = ModelStore(bucket, s3)
    registry = Registry(outputs["RegistryTableName"], client("dynamodb"))
    drift = DriftService(
        model=outputs["ModelName"],
        store=store,
        registry=registry,
        sketches=sketches,
        traffic=TrainingDataStore(bucket, s3),
        labels=labels,
        bus=None,
        clock=clock,
    )
    rollout = RolloutService(
        model=outputs["ModelName"],
        store=store,
        registry=registry,
        actor="benchmark",
        traffic=TrainingDataStore(bucket, s3),
        sketches=sketches,
        labels=labels,
        clock=clock,
    )
    return drift, rollout, (labels, sketches)


def measure(rows: int, labels: int | None) -> dict[str, Any]:
    from threadpoolctl import threadpool_limits

    from mlops.adapters.aws import client
    from mlops.domain.config_document import load_config
    from mlops_cli.emulator.runner import ensure_model
    from mlops_cli.emulator.stack import LocalStack
    from mlops_cli.emulator.target import Target

    stack = LocalStack(ROOT / "template.yaml", env_overrides={"POWERTOOLS_LOG_LEVEL": "WARNING"})
    with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
        stack.start()
        try:
            assert stack.sources is not None
            stack.sources.stop()
            progress(f"[{label(rows)}] training v1 and v2 ...")
            target = Target(stack.outputs, "benchmark stack")
            end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
            with threadpool_limits(limits=1):
                ensure_model(target, load_config())
                start_canary(target, load_config(), end - timedelta(hours=24))
            count, late = write_day(stack, rows, labels or rows // 10, end)
            now = [end - timedelta(minutes=59)]
            service, rollout, _ = evaluator(stack, lambda: now[0])
            progress(f"[{label(rows)}] warm-up evaluation (roll-ups, labels so far) ...")
            service.evaluate(24, act=False)
            rollout.evaluate(act=False)
            from mlops.adapters.capture_store import CaptureStore
            from mlops.services.prediction_logger import PredictionLoggerService

            target = Target(stack.outputs, "benchmark stack")
            logger = PredictionLoggerService(
                CaptureStore(target.store().bucket, client("s3")),
                target.store(),
                model_name=target.model_name,
            )
            for batch in late:
                store_feedback(logger, target.model_name, batch)
            # The measured run in a process of its own, as the function runs: its peak memory
            # is its own, not the moto server's that this process hosts.
            measured = child_evaluate(stack.outputs, end + timedelta(minutes=1))
        finally:
            stack.stop()
    return {"rows": rows, "labels": count} | measured


def child_evaluate(outputs: dict[str, str], at: datetime) -> dict[str, Any]:
    import subprocess

    command = [sys.executable, __file__, "--child", json.dumps(outputs), at.isoformat()]
    done = subprocess.run(command, capture_output=True, text=True, check=False, env=os.environ)
    if done.returncode != 0:
        raise RuntimeError(f"measured evaluation failed: {done.stderr[-2000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def status_mb(field: str) -> float:
    """A ``/proc/self/status`` memory figure (kB) in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def run_child(outputs_json: str, at_iso: str) -> None:
    """The measured evaluation: one ``DriftService.evaluate`` at ``at``, in this process."""
    from mlops.adapters.aws import client

    class Stack:
        outputs = json.loads(outputs_json)

    at = datetime.fromisoformat(at_iso)
    service, rollout, (labels, sketches) = evaluator(Stack(), lambda: at)
    calls: Counter[str] = Counter()
    part: list[str] = ["drift"]
    by_part: Counter[str] = Counter()

    def count_call(model: Any, **_: Any) -> None:
        calls[model.name] += 1
        by_part[part[0]] += 1

    client("s3").meta.events.register("provide-client-params.s3", count_call)
    before = status_mb("VmRSS")
    times: dict[str, float] = {}

    def run() -> tuple[Any, Any]:
        started = time.perf_counter()
        with labels.run(), sketches.run():  # as the function's handler runs both
            outcome = service.evaluate(24, act=False)
            times["drift"] = time.perf_counter() - started
            part[0] = "rollout"
            judged = rollout.evaluate(act=False)
        times["rollout"] = time.perf_counter() - started - times["drift"]
        return outcome, judged

    if os.environ.get("BENCH_PROFILE"):  # where the time goes: a cProfile dump
        import cProfile

        with cProfile.Profile() as profile:
            outcome, judged = run()
        profile.dump_stats(os.environ["BENCH_PROFILE"])
    else:
        outcome, judged = run()
    seconds = times["drift"] + times["rollout"]
    sources = outcome.report.get("sources", {})
    labels = sources.get("labels") or {}
    print(
        json.dumps(
            {
                "seconds": round(seconds, 3),
                "s3_requests": sum(calls.values()),
                "s3_by_operation": dict(calls),
                "drift": {"seconds": round(times["drift"], 3), "s3_requests": by_part["drift"]},
                "rollout": {
                    "seconds": round(times["rollout"], 3),
                    "s3_requests": by_part["rollout"],
                    "mode": (judged.verdict.get("sources") or {}).get("mode") if judged else None,
                    "candidate_rows": judged.verdict["variants"]["candidate"]["rows"]
                    if judged and "variants" in judged.verdict
                    else None,
                    "candidate_labels": judged.verdict["variants"]["candidate"]["labels"]
                    if judged and "variants" in judged.verdict
                    else None,
                },
                "rollout_decision": judged.decision if judged else None,
                "rollout_sources": judged.verdict.get("sources") if judged else None,
                # VmHWM, not ru_maxrss: a forked child's ru_maxrss counts the parent's pages
                "peak_mb": round(status_mb("VmHWM"), 1),
                "rss_before_mb": round(before, 1),
                "quality_labels": (outcome.report.get("quality") or {}).get("labels"),
                "folded": labels.get("folded"),
                "labeled_documents": labels.get("labeled_documents"),
            }
        )
    )


def summarise(results: dict[int, dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {"sizes": {label(r): f for r, f in results.items()}, "targets": {}}
    met: dict[str, bool] = {}
    one = results.get(1_000_000)
    if one:
        out["targets"] |= TARGETS
        met["seconds_1m"] = one["seconds"] <= TARGETS["seconds_1m"]
        met["s3_requests_1m"] = one["s3_requests"] <= TARGETS["s3_requests_1m"]
        met["peak_mb_1m"] = one["peak_mb"] <= TARGETS["peak_mb_1m"]
    ten = results.get(10_000_000)
    if one and ten:
        out["targets"] |= GROWTH
        out["seconds_growth"] = round(ten["seconds"] / one["seconds"], 2)
        out["s3_requests_growth"] = round(ten["s3_requests"] / one["s3_requests"], 2)
        met["seconds_growth"] = out["seconds_growth"] <= GROWTH["seconds_growth"]
        met["s3_requests_growth"] = out["s3_requests_growth"] <= GROWTH["s3_requests_growth"]
    out["targets_met"] = met
    return out


def report(summary: dict[str, Any]) -> None:
    head = ("predictions/day", "labels", "seconds", "S3 req", "peak MB", "drift", "rollout")
    print(
        f"{head[0]:>16} {head[1]:>9} {head[2]:>8} {head[3]:>7} {head[4]:>8} "
        f"{head[5]:>12} {head[6]:>12}  by operation"
    )
    for name, f in summary["sizes"].items():
        ops = ", ".join(f"{k} {v}" for k, v in sorted(f["s3_by_operation"].items()))
        cells = f"{f['labels']:>9,} {f['seconds']:>8.2f} {f['s3_requests']:>7} {f['peak_mb']:>8.1f}"
        parts = " ".join(
            f"{f[p]['seconds']:>5.2f}s {f[p]['s3_requests']:>4}r" for p in ("drift", "rollout")
        )
        print(f"{name:>16} {cells} {parts}  {ops}")
    for key, ok in summary["targets_met"].items():
        print(f"target {key} ({summary['targets'][key]}): {'met' if ok else 'MISSED'}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--labels", type=int, default=None, help="labels per day at every size")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        run_child(*args.child)
        return 0
    results = {rows: measure(rows, args.labels) for rows in args.sizes}
    summary = summarise(results)
    if args.json:
        print(json.dumps(summary))
    else:
        report(summary)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
