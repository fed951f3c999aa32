"""Inference latency: warm /predict through the real handler and a real HTTP API event, and
cold start (fresh process to first prediction, model fetched from S3 on a local moto server),
for the ONNX path and for the same model as a scikit-learn pipeline loaded with joblib.

    .venv/bin/python benchmarks/inference.py [--json] [--iterations N] [--cold-runs N]

Prints a table; with --json the last line is one JSON object with keys warm_p50_ms, warm_p99_ms,
warm_batch10_p50_ms, warm_batch100_p50_ms, warm_batch1000_p50_ms (multi-row requests, checked a
column at a time), warm_no_capture_p50_ms, capture_overhead_p50_ms (capture on vs off,
same run), sklearn_warm_p50_ms, sklearn_warm_p99_ms, warm_speedup, cold_start_s,
sklearn_cold_start_s, cold_speedup (the targets' baseline: the same handler serving the
pipeline through joblib), sample_warm_p50_ms, sample_warm_p99_ms, sample_cold_start_s,
sample_warm_speedup, sample_cold_speedup (a typical Lambda ML sample: joblib + a pandas
DataFrame per request, no validation or Powertools), and the targets. Capture is on (every
request writes its capture line, as deployed).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import importlib.util
import io
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TARGETS = {
    "warm_p50_ms": 1.0,
    "warm_p99_ms": 5.0,
    "warm_speedup": 20.0,
    "cold_start_s": 1.5,
    "cold_speedup": 3.0,
    "capture_overhead_p50_ms": 0.05,
    "warm_batch100_p50_ms": 1.0,
}
PREDICT_EVENT = ROOT / "events" / "http_predict.json"
# The house in the event SAM generated for POST /predict (the tests use the same one).
HOUSE = json.loads(base64.b64decode(json.loads(PREDICT_EVENT.read_text())["body"]))["instances"][0]
SKLEARN_KEY = "benchmarks/house-prices-v1.joblib"
SKLEARN_APP = ROOT / "benchmarks" / "sklearn_app.py"
SAMPLE_KEY = "benchmarks/house-prices-v1-dataframe.joblib"
SAMPLE_APP = ROOT / "benchmarks" / "sample_app.py"

# A cold process: import the handler module (which loads the model during init, as on Lambda),
# then answer one event. The parent times spawn → answer.
COLD_CHILD = """
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("app", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
event = json.loads(sys.argv[2])
response = module.lambda_handler(event, type("C", (), {
    "function_name": "cold", "memory_limit_in_mb": 1024, "aws_request_id": "1",
    "invoked_function_arn": "arn:aws:lambda:us-east-1:123456789012:function:cold"})())
import time
assert response["statusCode"] == 200, response
sys.stdout.write(f"ANSWERED_AT {time.time()!r}\\n")
"""


def event(instances: list[dict[str, Any]]) -> dict[str, Any]:
    base = json.loads(PREDICT_EVENT.read_text())
    base["body"] = base64.b64encode(json.dumps({"instances": instances}).encode()).decode()
    return base


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def time_calls(calls: dict[str, Callable[[], Any]], iterations: int) -> dict[str, list[float]]:
    """Latency samples in ms per named call. The calls run interleaved in rounds, so noise on
    this shared machine hits them alike and their ratio holds. stdout (the EMF metric lines a
    Lambda writes) goes to /dev/null."""
    samples: dict[str, list[float]] = {name: [] for name in calls}
    rounds = 20
    per_round = max(1, iterations // rounds)
    with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
        for call in calls.values():  # warm-up: caches, allocator, branch predictors
            for _ in range(100):
                call()
        for _ in range(rounds):
            for name, call in calls.items():
                for _ in range(per_round):
                    started = time.perf_counter()
                    call()
                    samples[name].append((time.perf_counter() - started) * 1000)
    return samples


def cold_start(app: Path, event_json: str, env: dict[str, str]) -> float:
    """Seconds from spawning a fresh interpreter to its first answer (interpreter teardown,
    which Lambda does not bill to a request, is excluded)."""
    started = time.time()
    out = subprocess.run(
        [sys.executable, "-c", COLD_CHILD, str(app), event_json],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    for line in out.stdout.splitlines():
        if line.startswith("ANSWERED_AT "):
            return float(line.split()[1]) - started
    raise RuntimeError(f"cold start run failed:\n{out.stdout}\n{out.stderr}")


def prepare(stack: Any) -> None:
    """Register v1 (ONNX) in the stack, and store the same fitted pipeline as joblib."""
    import joblib

    from mlops.domain.config_document import load_config
    from mlops.domain.dataset import parse_csv
    from mlops.domain.synthetic import conditions_for_month, csv_bytes, generate
    from mlops.domain.training import train
    from mlops_cli.emulator.runner import BOOTSTRAP_ROWS, BOOTSTRAP_SEED, ensure_model
    from mlops_cli.emulator.target import Target

    target = Target(stack.outputs, "benchmark stack")
    config = load_config()
    ensure_model(target, config)
    # The same data, config and seeds give the same fitted pipeline for the joblib path.
    data = csv_bytes(generate(BOOTSTRAP_ROWS, conditions_for_month(0), seed=BOOTSTRAP_SEED))
    trained = train(config, parse_csv(data, config))
    buffer = io.BytesIO()
    joblib.dump(trained.pipeline, buffer)
    target.store().put_bytes(SKLEARN_KEY, buffer.getvalue())
    # The samples' way: the same estimator and data, fitted on a pandas DataFrame by column name.
    buffer = io.BytesIO()
    joblib.dump(dataframe_pipeline(config, trained.train), buffer)
    target.store().put_bytes(SAMPLE_KEY, buffer.getvalue())
    bucket = target.output("ArtifactsBucketName")
    os.environ.update(
        {
            "SKLEARN_MODEL_BUCKET": bucket,
            "SKLEARN_MODEL_KEY": SKLEARN_KEY,
            "SAMPLE_MODEL_BUCKET": bucket,
            "SAMPLE_MODEL_KEY": SAMPLE_KEY,
        }
    )


def dataframe_pipeline(config: Any, train_set: Any) -> Any:
    import pandas as pd
    from sklearn.compose import ColumnTransformer

    from mlops.domain.training import build_pipeline

    pipeline = build_pipeline(config)
    by_position = pipeline.steps[0][1]
    pipeline.steps[0] = (
        "prepare",
        ColumnTransformer(
            [
                (name, transformer, [config.feature_names[i] for i in columns])
                for name, transformer, columns in by_position.transformers
            ]
        ),
    )
    frame = pd.DataFrame({name: train_set.columns[name] for name in config.feature_names})
    return pipeline.fit(frame, train_set.target)


def load_module(name: str, path: Path) -> Any:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def measure(args: argparse.Namespace, log: Callable[..., None]) -> dict[str, float]:
    from mlops_cli.emulator.stack import LocalStack

    # INFO logs (model loaded) would interleave with the table; per-request cost is unchanged,
    # since requests log nothing below WARNING. EMF metric lines go to /dev/null below.
    stack = LocalStack(ROOT / "template.yaml", env_overrides={"POWERTOOLS_LOG_LEVEL": "WARNING"})
    with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
        return run_paths(stack, args, log)


def run_paths(stack: Any, args: argparse.Namespace, log: Callable[..., None]) -> dict[str, float]:
    from mlops_cli.emulator.stack import LambdaContext

    stack.start()
    try:
        log("training v1 ...")
        prepare(stack)
        # The handler in this process, with exactly the function's environment: what is
        # measured is the handler, not the local runtime's process hop (local_runtime.py).
        spec = stack.functions["InferenceFunction"].spec
        os.environ.update(spec.environment)
        onnx_app = load_module("inference_app", spec.code_dir / "app.py")
        context = LambdaContext("inference-benchmark")

        def onnx_invoke(request: dict[str, Any]) -> Any:
            return onnx_app.lambda_handler(request, context)

        def onnx_without_capture(request: dict[str, Any]) -> Any:
            # The same handler with capture sampled off for this one call: the difference
            # is what writing the capture line costs a request.
            onnx_app.service._sample_rate = 0.0
            try:
                return onnx_app.lambda_handler(request, context)
            finally:
                onnx_app.service._sample_rate = 1.0

        one = event([HOUSE])
        multi = {rows: event([HOUSE] * rows) for rows in (10, 100, 1000)}
        onnx_answer = json.loads(onnx_invoke(one)["body"])["predictions"][0]
        sklearn_app = load_module("sklearn_app", SKLEARN_APP)
        sample_app = load_module("sample_app", SAMPLE_APP)
        # Each path really serves its own runtime (the model objects are what differ).
        models = {
            type(module.service._provider.current().model).__name__
            for module in (onnx_app, sklearn_app)
        }
        assert models == {"OnnxModel", "SklearnModel"}, models
        sk_answer = json.loads(sklearn_app.lambda_handler(one, context)["body"])["predictions"][0]
        sample_answer = json.loads(sample_app.lambda_handler(one, None)["body"])["predictions"][0]
        for name, answer in (("joblib", sk_answer), ("sample", sample_answer)):
            if abs(onnx_answer - answer) > 1e-4 * abs(answer):
                raise RuntimeError(f"ONNX and {name} disagree: {onnx_answer} vs {answer}")

        log(f"warm: {args.iterations} requests per path, interleaved ...")
        warm = time_calls(
            {
                "onnx": lambda: onnx_invoke(one),
                "onnx_no_capture": lambda: onnx_without_capture(one),
                "sklearn": lambda: sklearn_app.lambda_handler(one, context),
                "sample": lambda: sample_app.lambda_handler(one, None),
            },
            args.iterations,
        )
        batch = time_calls(
            {
                str(rows): (lambda request=request: onnx_invoke(request))
                for rows, request in multi.items()
            },
            args.iterations // 10,
        )

        log(f"cold: {args.cold_runs} fresh processes per path, interleaved ...")
        env = {**os.environ, **spec.environment}
        cold: dict[str, list[float]] = {"onnx": [], "sklearn": [], "sample": []}
        for _ in range(args.cold_runs):
            cold["onnx"].append(cold_start(spec.code_dir / "app.py", json.dumps(one), env))
            cold["sklearn"].append(cold_start(SKLEARN_APP, json.dumps(one), env))
            cold["sample"].append(cold_start(SAMPLE_APP, json.dumps(one), env))
    finally:
        stack.stop()
    figures = {
        "warm_p50_ms": round(statistics.median(warm["onnx"]), 3),
        "warm_p99_ms": round(percentile(warm["onnx"], 99), 3),
        **{
            f"warm_batch{rows}_p50_ms": round(statistics.median(batch[str(rows)]), 3)
            for rows in multi
        },
        "warm_no_capture_p50_ms": round(statistics.median(warm["onnx_no_capture"]), 3),
        "capture_overhead_p50_ms": round(
            statistics.median(warm["onnx"]) - statistics.median(warm["onnx_no_capture"]), 3
        ),
        "sklearn_warm_p50_ms": round(statistics.median(warm["sklearn"]), 3),
        "sklearn_warm_p99_ms": round(percentile(warm["sklearn"], 99), 3),
        "cold_start_s": round(statistics.median(cold["onnx"]), 3),
        "sklearn_cold_start_s": round(statistics.median(cold["sklearn"]), 3),
        "sample_warm_p50_ms": round(statistics.median(warm["sample"]), 3),
        "sample_warm_p99_ms": round(percentile(warm["sample"], 99), 3),
        "sample_cold_start_s": round(statistics.median(cold["sample"]), 3),
    }
    figures["warm_speedup"] = round(figures["sklearn_warm_p50_ms"] / figures["warm_p50_ms"], 1)
    figures["cold_speedup"] = round(figures["sklearn_cold_start_s"] / figures["cold_start_s"], 1)
    figures["sample_warm_speedup"] = round(
        figures["sample_warm_p50_ms"] / figures["warm_p50_ms"], 1
    )
    figures["sample_cold_speedup"] = round(
        figures["sample_cold_start_s"] / figures["cold_start_s"], 1
    )
    return figures


def report(figures: dict[str, float]) -> dict[str, bool]:
    checks = {
        "warm_p50_ms": figures["warm_p50_ms"] <= TARGETS["warm_p50_ms"],
        "warm_p99_ms": figures["warm_p99_ms"] <= TARGETS["warm_p99_ms"],
        "warm_speedup": figures["warm_speedup"] >= TARGETS["warm_speedup"],
        "cold_start_s": figures["cold_start_s"] <= TARGETS["cold_start_s"],
        "cold_speedup": figures["cold_speedup"] >= TARGETS["cold_speedup"],
        "capture_overhead_p50_ms": figures["capture_overhead_p50_ms"]
        <= TARGETS["capture_overhead_p50_ms"],
        "warm_batch100_p50_ms": figures["warm_batch100_p50_ms"] <= TARGETS["warm_batch100_p50_ms"],
    }
    rows = [
        ("warm /predict, 1 row, p50", f"{figures['warm_p50_ms']:.3f} ms", "≤ 1 ms"),
        ("warm /predict, 1 row, p99", f"{figures['warm_p99_ms']:.3f} ms", "≤ 5 ms"),
        ("warm /predict, 10 rows, p50", f"{figures['warm_batch10_p50_ms']:.3f} ms", ""),
        ("warm /predict, 100 rows, p50", f"{figures['warm_batch100_p50_ms']:.3f} ms", "≤ 1 ms"),
        ("warm /predict, 1,000 rows, p50", f"{figures['warm_batch1000_p50_ms']:.3f} ms", ""),
        ("same, capture off, 1 row, p50", f"{figures['warm_no_capture_p50_ms']:.3f} ms", ""),
        ("capture overhead, p50", f"{figures['capture_overhead_p50_ms']:.3f} ms", "≤ 0.05 ms"),
        ("scikit-learn + joblib, 1 row, p50", f"{figures['sklearn_warm_p50_ms']:.3f} ms", ""),
        ("scikit-learn + joblib, 1 row, p99", f"{figures['sklearn_warm_p99_ms']:.3f} ms", ""),
        ("warm speed-up (p50)", f"{figures['warm_speedup']}x", "≥ 20x"),
        ("cold start → first prediction", f"{figures['cold_start_s']:.3f} s", "≤ 1.5 s"),
        ("scikit-learn + joblib cold start", f"{figures['sklearn_cold_start_s']:.3f} s", ""),
        ("cold speed-up", f"{figures['cold_speedup']}x", "≥ 3x"),
        ("typical sample (pandas), 1 row, p50", f"{figures['sample_warm_p50_ms']:.3f} ms", ""),
        ("typical sample (pandas), 1 row, p99", f"{figures['sample_warm_p99_ms']:.3f} ms", ""),
        ("typical sample cold start", f"{figures['sample_cold_start_s']:.3f} s", ""),
        ("speed-up vs typical sample, warm", f"{figures['sample_warm_speedup']}x", ""),
        ("speed-up vs typical sample, cold", f"{figures['sample_cold_speedup']}x", ""),
    ]
    print(f"{'measurement':<36} {'median':>12}  target")
    for name, value, goal in rows:
        print(f"{name:<36} {value:>12}  {goal}")
    print("targets met: " + ", ".join(f"{k}={'yes' if v else 'NO'}" for k, v in checks.items()))
    return checks


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="end with one JSON object")
    parser.add_argument("--iterations", type=int, default=3000)
    parser.add_argument("--cold-runs", type=int, default=7)
    args = parser.parse_args()
    log = (lambda *_: None) if args.json else (lambda *a: print(*a, file=sys.stderr))
    figures = measure(args, log)
    checks = report(figures)
    if args.json:
        print(
            json.dumps(
                {
                    **figures,
                    "targets": TARGETS,
                    "targets_met": checks,
                    "iterations": args.iterations,
                    "cold_runs": args.cold_runs,
                }
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
