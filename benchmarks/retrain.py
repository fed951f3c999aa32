"""Retrainer sizing: wall time and peak memory of what the retrainer function does with one
training file (parse + validate, fit, ONNX export, staging for the gate, upload), and of the
candidate gate's parity check, for growing amounts of the default data, so the functions'
MemorySize and Timeout can be chosen.

    .venv/bin/python benchmarks/retrain.py [--json] [--sizes N ...] [--threads N] [--repeat N]

Data: month 0 of the shipped synthetic housing market (``synthetic.generate(n,
conditions_for_month(0), seed=0)`` as CSV) and the shipped house-prices config
(HistGradientBoosting, 200 iterations; scikit-learn turns early stopping on above 10,000 rows).
Each size runs in fresh interpreters, one size after the other: a generator writes the CSV to a
temporary file (not measured); the retrainer process reads the file's bytes (the object the
function downloaded) and runs the project's code against moto (``mock_aws``, us-east-1):

  parse    ``dataset.parse_csv`` (parse and validate the whole file)
  fit      ``training.train`` (split, fit, holdout metrics)         } ``CandidateBuilder.build``,
  export   ``export.to_onnx_bytes``                                   } timed by the builder
  stage    scikit-learn's outputs on the holdout and edge cases      } itself (the ``timings``
           (the parity inputs), ``baseline.build_baseline``, gzip    } it returns)
  upload   ``RetrainService.archive`` (the accepted CSV to datasets/) + the staged candidate
           (model.onnx, baseline.json, parity_inputs.json.gz, candidate.json) via ``ModelStore``;
           in-process moto: no network, so on AWS add the transfer (the CSV dominates)

and then a gate process (onnxruntime, no scikit-learn, as the candidate gate function) runs
the parity check on the staged files: decode the parity inputs, load the ONNX model and
``services.gate_evidence.check_parity`` (onnxruntime vs scikit-learn's stored outputs).

Peak memory is each process's resident high-water mark (``VmHWM``: imports, the file's bytes
and every step), in MB. The retrainer's also holds moto (``moto_mb``), which a Lambda does not
carry, so it errs high by that much. Not included: the S3 download, the data report, the
registry and the gate's champion scoring; Lambda's init (imports) is timed apart. Fit uses
OpenMP threads: the environment's default, or ``--threads N`` (``OMP_NUM_THREADS``); figures
with T threads stand for a Lambda with T vCPUs (T x 1,769 MB). With ``--repeat N`` each size
runs N times and each time is the fastest run's (a shared machine only ever slows a run down),
each memory figure the largest.

Prints a table and a sizing paragraph. With --json the last line is one JSON object:
  rows                      the sizes, in order
  threads                   OpenMP threads fit used (threadpoolctl, in the retrainer process)
  cpu_count                 CPUs of this machine
  sizes                     per size (key: the row count as a string): csv_mb, import_s,
                            import_mb (resident after the imports), moto_mb, parse_s, fit_s,
                            export_s, stage_s, upload_s (archive_s of it: the CSV), total_s
                            (parse..upload), peak_mb, csv_bytes, max_bytes, train_rows,
                            holdout_rows, sklearn_rmse, model_kb, parity_inputs_mb; the
                            gate's parity_s, gate_import_s, gate_peak_mb, parity_passed,
                            parity_mismatches, parity_max_rel_diff; load_avg (1-minute load
                            average when the run started: above cpu_count, the times are
                            inflated), runs
  recommended_memory_mb     per size: retrainer peak x 1.5 rounded up to a multiple of 64 MB,
                            at least 1,024 MB; null where that is above Lambda's 10,240 MB
  lambda_vcpus              per size: vCPUs Lambda gives at that memory (memory / 1,769)
  estimated_lambda_s        per size: total_s scaled to those vCPUs (fit by threads / vCPUs,
                            the rest by 1 / vCPUs when below one vCPU): a pessimistic estimate
  limit_15min_rows          rows at which total_s reaches 900 s, by linear extrapolation in
                            rows between the two largest sizes (null if it does not grow)
  limit_10gb_rows           rows at which peak_mb reaches 10,240 MB, same extrapolation
  limit_10gb_headroom_rows  rows at which peak x 1.5 reaches 10,240 MB
  max_bytes                 the config's validation.max_bytes
  limit_max_bytes_rows      rows of this data in a file of max_bytes (the retrainer rejects
                            larger files)
  gate_recommended_memory_mb  per size, as recommended_memory_mb for gate_peak_mb
  gate_limit_rows           rows at which gate_peak_mb reaches the gate's 1,024 MB
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DEFAULT_SIZES = (10_000, 100_000, 1_000_000)
BUCKET = "benchmark-artifacts"
MB = 1024 * 1024
LAMBDA_MAX_MB = 10_240
LAMBDA_MIN_RECOMMENDED_MB = 1_024
LAMBDA_MB_PER_VCPU = 1_769
LAMBDA_MAX_VCPUS = 6
LAMBDA_TIMEOUT_S = 900
HEADROOM = 1.5
MEMORY_STEP_MB = 64
TRAINING_PREFIX = "training-data/"
# What the retrainer stages for the gate (``mlops.domain.candidate``).
STAGED_FILES = ("model.onnx", "baseline.json", "parity_inputs.json.gz", "candidate.json")
# The candidate gate's MemorySize in template.yaml.
GATE_MEMORY_MB = 1_024
# moto's dummy credentials; the child never talks to a real account.
ENVIRONMENT = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "POWERTOOLS_SERVICE_NAME": "retrain-benchmark",
    "POWERTOOLS_METRICS_NAMESPACE": "ServerlessMLOpsBenchmark",
    "POWERTOOLS_TRACE_DISABLED": "true",
}


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def label(rows: int) -> str:
    if rows >= 1_000_000 and rows % 1_000_000 == 0:
        return f"{rows // 1_000_000}M"
    if rows >= 1_000 and rows % 1_000 == 0:
        return f"{rows // 1_000}k"
    return str(rows)


def rss_mb() -> float:
    """This process's resident memory now (0 where /proc is missing)."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def peak_rss_mb() -> float:
    """This process's resident high-water mark. ``VmHWM`` belongs to the address space made
    by exec, so unlike ``ru_maxrss`` it never carries the parent's size over a fork."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


# --- child: generate -------------------------------------------------------------------------


def generate_file(rows: int, path: Path) -> None:
    from mlops.domain.synthetic import conditions_for_month, csv_bytes, generate

    path.write_bytes(csv_bytes(generate(rows, conditions_for_month(0), seed=0)))


# --- child: the retrainer ------------------------------------------------------------------


def progress_line(rows: int, name: str, seconds: float) -> None:
    progress(f"[{label(rows)}] {name:<8} {seconds:8.2f} s   peak so far {peak_rss_mb():,.0f} MB")


@contextlib.contextmanager
def announced(module: Any, names: tuple[str, ...], rows: int) -> Iterator[None]:
    """Print a progress line as each of ``module``'s ``names`` returns (the builder times its
    steps itself; this only says when one is done, so a long fit shows on stderr)."""
    originals = {name: getattr(module, name) for name in names}

    def wrap(name: str, call: Callable[..., Any]) -> Callable[..., Any]:
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            result = call(*args, **kwargs)
            progress_line(rows, STEP_OF.get(name, name), time.perf_counter() - started)
            return result

        return wrapped

    for name, call in originals.items():
        setattr(module, name, wrap(name, call))
    try:
        yield
    finally:
        for name, call in originals.items():
            setattr(module, name, call)


STEP_OF = {"train": "fit", "to_onnx_bytes": "export"}


def openmp_threads() -> int:
    from threadpoolctl import threadpool_info

    counts = [int(p["num_threads"]) for p in threadpool_info() if p.get("user_api") == "openmp"]
    return max(counts) if counts else os.cpu_count() or 1


@contextlib.contextmanager
def s3_store() -> Iterator[Any]:
    """A ``ModelStore`` on a created bucket in moto, the client made before anything is timed."""
    import boto3
    from moto import mock_aws

    from mlops.adapters import aws
    from mlops.adapters.model_store import ModelStore

    with mock_aws():
        aws.client.cache_clear()
        boto3.client("s3", region_name="us-east-1").create_bucket(Bucket=BUCKET)
        yield ModelStore(BUCKET, aws.client("s3"))
        aws.client.cache_clear()


def archive(store: Any, config: Any, dataset: Any, data: bytes) -> None:
    """``RetrainService.archive``: the accepted file, kept under its sha256 for lineage."""
    from mlops.adapters.training_data import DataObject
    from mlops.services.retraining import RetrainService

    service = RetrainService(
        model=config.name,
        store=store,
        training_data=cast(Any, None),  # archive uses only the model store
        training_prefix=TRAINING_PREFIX,
        traffic=cast(Any, None),
        builder=cast(Any, None),
    )
    key = TRAINING_PREFIX + "houses.csv"
    obj = DataObject(BUCKET, key, None, "benchmark", len(data), "2024-05-01T00:00:00+00:00")
    service.archive(obj, dataset, data)


def retrainer(rows: int, path: Path, staged_dir: Path) -> dict[str, Any]:
    """What the retrainer function does with one accepted upload, timed step by step; the
    staged candidate is written to ``staged_dir`` for the gate."""
    started = time.perf_counter()
    from mlops.domain.config_document import load_config
    from mlops.domain.dataset import parse_csv
    from mlops.services import candidates
    from mlops.services import retraining as _retraining  # noqa: F401  (the function's import)

    import_s = time.perf_counter() - started
    import_mb = rss_mb()
    config = load_config()
    data = path.read_bytes()  # the object as the function downloaded it
    before_moto = rss_mb()
    with s3_store() as store:
        moto_mb = rss_mb() - before_moto
        started = time.perf_counter()
        dataset = parse_csv(data, config)
        parse_s = time.perf_counter() - started
        progress_line(rows, "parse", parse_s)
        started = time.perf_counter()
        archive(store, config, dataset, data)
        archive_s = time.perf_counter() - started
        progress_line(rows, "archive", archive_s)
        source = candidates.DataSource(
            uri=f"s3://{BUCKET}/{TRAINING_PREFIX}houses.csv",
            sha256=dataset.sha256,
            rows=dataset.rows,
            role="new",
        )
        with announced(candidates, ("train", "to_onnx_bytes"), rows):
            staged = candidates.CandidateBuilder(store, "benchmark").build(
                config, dataset, [source]
            )
        timings = staged.timings
        progress_line(rows, "stage", timings["stage_s"])
        progress_line(rows, "upload", timings["upload_s"])
        for name in STAGED_FILES:
            (staged_dir / name).write_bytes(store.get_bytes(staged.prefix + name))
    seconds = {
        "parse_s": parse_s,
        "fit_s": timings["fit_s"],
        "export_s": timings["export_s"],
        "stage_s": timings["stage_s"],
        "upload_s": archive_s + timings["upload_s"],
    }
    return {
        "csv_mb": round(len(data) / MB, 2),
        "csv_bytes": len(data),
        "max_bytes": config.validation.max_bytes,
        "import_s": round(import_s, 2),
        "import_mb": round(import_mb, 1),
        "moto_mb": round(moto_mb, 1),
        **{name: round(value, 2) for name, value in seconds.items()},
        "archive_s": round(archive_s, 2),
        "total_s": round(sum(seconds.values()), 2),
        "peak_mb": round(peak_rss_mb(), 1),
        "train_rows": staged.train_rows,
        "holdout_rows": staged.holdout_rows,
        "sklearn_rmse": round(staged.metrics.get("rmse", float("nan")), 1),
        "model_kb": round((staged_dir / "model.onnx").stat().st_size / 1024, 1),
        "parity_inputs_mb": round((staged_dir / "parity_inputs.json.gz").stat().st_size / MB, 2),
        "threads": openmp_threads(),
    }


# --- child: the candidate gate's parity check ------------------------------------------------


def gate_parity(rows: int, staged_dir: Path) -> dict[str, Any]:
    """The gate's parity check on the staged candidate, as ``CandidateGate.judge`` runs it
    (after its S3 reads): decode the parity inputs, load the ONNX model, compare."""
    started = time.perf_counter()
    from mlops.domain import candidate, manifest
    from mlops.domain.config_document import parse_config
    from mlops.domain.schema import Signature
    from mlops.domain.scoring import OnnxModel
    from mlops.services.gate_evidence import check_parity

    import_s = time.perf_counter() - started
    doc = json.loads((staged_dir / "candidate.json").read_bytes())
    files = {name: (staged_dir / name).read_bytes() for name in STAGED_FILES}
    started = time.perf_counter()
    config = parse_config(doc["config"])
    signature = Signature.from_dict(doc["signature"])
    labels = tuple(manifest.typed_labels(tuple(doc.get("classes") or ())))
    inputs = candidate.decode_parity_inputs(
        files["parity_inputs.json.gz"], signature.features, config.task
    )
    challenger = OnnxModel(files["model.onnx"], signature, config.task, labels)
    report, holdout_scores = check_parity(config, challenger, inputs)
    parity_s = time.perf_counter() - started
    progress_line(rows, "parity", parity_s)
    if not report.passed:
        progress(f"[{label(rows)}] PARITY GATE FAILED: {report.summary()}")
    reference_s = reference_sets(config, challenger, inputs, holdout_scores, labels)
    progress_line(rows, "reference sets", reference_s)
    return {
        "parity_s": round(parity_s, 2),
        "reference_s": round(reference_s, 3),
        "reference_share": round(reference_s / parity_s, 3) if parity_s else None,
        "gate_import_s": round(import_s, 2),
        "gate_peak_mb": round(peak_rss_mb(), 1),
        "parity_passed": bool(report.passed),
        "parity_mismatches": sum(c.mismatches for c in report.cases),
        "parity_max_rel_diff": max(c.max_rel_diff for c in report.cases),
    }


def reference_sets(
    config: Any, challenger: Any, inputs: Any, holdout_scores: Any, labels: Any
) -> float:
    """What the gate adds for evidence the uploader does not control, as ``CandidateGate``
    runs it: the golden set written with the version, both models scored on the recent-traffic
    and golden sets (``promotion.reference_rows`` each; here the challenger stands in for
    production, the cost is the same), the label check, and the paired bootstrap on the
    holdout and both sets."""
    from mlops.domain import candidate
    from mlops.domain.gate import RowSet, judge
    from mlops.domain.label_check import check_labels
    from mlops.services.gate import golden_set
    from mlops.services.gate_evidence import outputs_sample, score

    started = time.perf_counter()
    golden = golden_set(config, inputs)
    rows = candidate.decode_rows(golden, tuple(challenger.signature.features), config.task)
    target = inputs.holdout_target
    mine = outputs_sample(config, holdout_scores, target, labels)
    sets = []
    for name in ("traffic", "golden"):  # two sets of golden's size
        ours = outputs_sample(config, challenger.score(rows.columns), rows.target, labels)
        theirs = outputs_sample(config, challenger.score(rows.columns), rows.target, labels)
        sets.append(RowSet(name, theirs, ours))
    metrics = score(config, holdout_scores, target, labels)
    check = check_labels(
        config.task, holdout_scores.values, target, metrics, config.promotion.max_label_error_ratio
    )
    judge(
        config.promotion, config.task, challenger=metrics, champion=metrics, naive=None,
        holdout=RowSet("holdout", mine, mine), references=sets, label_check=check,
        classes=labels,
    )  # fmt: skip
    return time.perf_counter() - started


# --- parent ----------------------------------------------------------------------------------


def child(args: list[str], env: dict[str, str]) -> dict[str, Any]:
    """Run this script in a fresh interpreter; its last stdout line is a JSON object."""
    script = str(Path(__file__).resolve())
    out = subprocess.run(
        [sys.executable, script, *args], env=env, stdout=subprocess.PIPE, text=True, check=True
    )
    lines = out.stdout.strip().splitlines()
    result: dict[str, Any] = json.loads(lines[-1]) if lines else {}
    return result


def run_once(rows: int, env: dict[str, str], workdir: Path) -> dict[str, Any]:
    path = workdir / f"houses-{rows}.csv"
    staged = workdir / f"staged-{rows}"
    staged.mkdir()
    progress(f"[{label(rows)}] generating {rows:,} rows (not measured)")
    child(["--generate", str(rows), str(path)], env)
    load = os.getloadavg()[0]
    figures = child(["--retrainer", str(rows), str(path), str(staged)], env)
    path.unlink()
    figures |= child(["--gate", str(rows), str(staged)], env)
    for file in staged.iterdir():
        file.unlink()
    staged.rmdir()
    progress(
        f"[{label(rows)}] done: retrainer {figures['total_s']:.1f} s, peak "
        f"{figures['peak_mb']:,.0f} MB; gate parity {figures['parity_s']:.1f} s, peak "
        f"{figures['gate_peak_mb']:,.0f} MB (load average {load:.1f})"
    )
    return figures | {"load_avg": round(load, 2)}


def run_size(rows: int, threads: int | None, repeat: int, workdir: Path) -> dict[str, Any]:
    """``repeat`` fresh runs; per-step times are the fastest run's (the least disturbed by other
    work on a shared machine: a Lambda's vCPUs are its own), memory the largest."""
    env = {**os.environ, **ENVIRONMENT}
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        env.pop(name, None)  # moto must see every call, and never a real account
    if threads is not None:
        env["OMP_NUM_THREADS"] = str(threads)
    runs = [run_once(rows, env, workdir) for _ in range(repeat)]
    combined = dict(runs[0])
    for key in runs[0]:
        values = [run[key] for run in runs]
        if key.endswith("_s"):
            combined[key] = min(values)
        elif key.endswith("_mb") or key == "load_avg":
            combined[key] = max(values)
    retrainer_steps = ("parse_s", "fit_s", "export_s", "stage_s", "upload_s")
    combined["total_s"] = round(sum(combined[k] for k in retrainer_steps), 2)
    combined["runs"] = repeat
    combined["parity_passed"] = all(run["parity_passed"] for run in runs)
    return combined


def recommended_memory(peak_mb: float) -> int | None:
    wanted = max(LAMBDA_MIN_RECOMMENDED_MB, peak_mb * HEADROOM)
    rounded = math.ceil(wanted / MEMORY_STEP_MB) * MEMORY_STEP_MB
    return rounded if rounded <= LAMBDA_MAX_MB else None


def vcpus(memory_mb: int) -> float:
    return min(LAMBDA_MAX_VCPUS, memory_mb / LAMBDA_MB_PER_VCPU)


def estimated_lambda_s(figures: dict[str, Any], memory_mb: int, threads: int) -> float:
    """Pessimistic: fit slows by threads / vCPUs, the single-threaded steps only below 1 vCPU."""
    cpu = vcpus(memory_mb)
    fit = figures["fit_s"] * max(1.0, threads / cpu)
    rest = (figures["total_s"] - figures["fit_s"]) * max(1.0, 1 / cpu)
    return float(fit + rest)


def extrapolate(points: list[tuple[int, float]], limit: float) -> int | None:
    """Rows at which a quantity reaches ``limit``, on the line through the two largest sizes."""
    if len(points) < 2:
        return None
    (r1, y1), (r2, y2) = sorted(points)[-2:]
    if y2 <= y1:
        return None
    return round(r1 + (limit - y1) * (r2 - r1) / (y2 - y1))


def max_bytes_rows(sizes: dict[int, dict[str, Any]]) -> int:
    """Rows of this data in a file of the config's ``validation.max_bytes`` (CSV size is
    proportional to rows): past it the retrainer rejects the file before reading it."""
    rows = max(sizes)
    return int(rows * sizes[rows]["max_bytes"] / sizes[rows]["csv_bytes"])


def summarise(sizes: dict[int, dict[str, Any]], threads: int) -> dict[str, Any]:
    rows = list(sizes)
    memory = {str(r): recommended_memory(sizes[r]["peak_mb"]) for r in rows}
    estimates: dict[str, float | None] = {}
    for r in rows:
        m = memory[str(r)]
        estimates[str(r)] = round(estimated_lambda_s(sizes[r], m, threads), 1) if m else None
    return {
        "rows": rows,
        "threads": threads,
        "cpu_count": os.cpu_count(),
        "max_bytes": sizes[max(sizes)]["max_bytes"],
        "sizes": {str(r): {k: v for k, v in f.items() if k != "threads"} for r, f in sizes.items()},
        "recommended_memory_mb": memory,
        "lambda_vcpus": {r: round(vcpus(m), 2) if m else None for r, m in memory.items()},
        "estimated_lambda_s": estimates,
        "limit_15min_rows": extrapolate([(r, sizes[r]["total_s"]) for r in rows], LAMBDA_TIMEOUT_S),
        "limit_10gb_rows": extrapolate([(r, sizes[r]["peak_mb"]) for r in rows], LAMBDA_MAX_MB),
        "limit_10gb_headroom_rows": extrapolate(
            [(r, sizes[r]["peak_mb"] * HEADROOM) for r in rows], LAMBDA_MAX_MB
        ),
        "limit_max_bytes_rows": max_bytes_rows(sizes),
        "gate_recommended_memory_mb": {
            str(r): recommended_memory(sizes[r]["gate_peak_mb"]) for r in rows
        },
        "gate_limit_rows": extrapolate(
            [(r, sizes[r]["gate_peak_mb"]) for r in rows], GATE_MEMORY_MB
        ),
    }


COLUMNS = (
    ("csv MB", "csv_mb"),
    ("parse s", "parse_s"),
    ("fit s", "fit_s"),
    ("export s", "export_s"),
    ("stage s", "stage_s"),
    ("upload s", "upload_s"),
    ("total s", "total_s"),
    ("peak MB", "peak_mb"),
    ("parity s", "parity_s"),
    ("ref. s", "reference_s"),
    ("gate MB", "gate_peak_mb"),
)


def report(summary: dict[str, Any]) -> None:
    width = 9
    retrainer = " ".join(f"{name:>{width}}" for name, _ in COLUMNS[:8])
    gate = " ".join(f"{name:>{width}}" for name, _ in COLUMNS[8:])
    print(f"{'':>10} {'retrainer function':-^{8 * (width + 1) - 1}} | {'gate':-^{3 * width + 2}}")
    print(f"{'rows':>10} {retrainer} | {gate}")
    for rows in summary["rows"]:
        figures = summary["sizes"][str(rows)]
        cells = [
            f"{figures[key]:>{width},.0f}" if key.endswith("_mb") and key != "csv_mb"
            else f"{figures[key]:>{width}.2f}"
            for _, key in COLUMNS
        ]  # fmt: skip
        print(f"{rows:>10,} {' '.join(cells[:8])} | {' '.join(cells[8:])}")
    print()
    print(sizing_text(summary))


def rows_text(rows: int | None, sizes: int) -> str:
    if rows is None:
        return "n/a (needs two sizes)" if sizes < 2 else "not reached (no growth)"
    if rows >= 1_000_000:
        return f"≈{rows / 1_000_000:.1f}M rows"
    return f"≈{rows:,} rows"


def sizing_text(summary: dict[str, Any]) -> str:
    threads = summary["threads"]
    count = len(summary["rows"])
    parts = []
    for rows in summary["rows"]:
        memory = summary["recommended_memory_mb"][str(rows)]
        peak = summary["sizes"][str(rows)]["peak_mb"]
        if memory is None:
            parts.append(f"{label(rows)} over the limit (peak {peak:,.0f} MB)")
        else:
            parts.append(
                f"{label(rows)} {memory:,} MB ({vcpus(memory):.2f} vCPU, est. "
                f"{summary['estimated_lambda_s'][str(rows)]:,.0f} s)"
            )
    gate = "; ".join(
        f"{label(r)} {summary['sizes'][str(r)]['gate_peak_mb']:,.0f} MB" for r in summary["rows"]
    )
    failed = [label(r) for r in summary["rows"] if not summary["sizes"][str(r)]["parity_passed"]]
    basis = " → ".join(label(r) for r in sorted(summary["rows"])[-2:])
    limits = [summary[k] for k in ("limit_15min_rows", "limit_10gb_rows") if summary[k]]
    first = all(summary["limit_max_bytes_rows"] < limit for limit in limits)
    lines = [
        "Sizing (computed from the figures above)",
        f"  Retrainer memory: peak x {HEADROOM} rounded up to {MEMORY_STEP_MB} MB, at least "
        f"{LAMBDA_MIN_RECOMMENDED_MB:,} MB: " + "; ".join(parts) + ".",
        f"  CPU: Lambda gives 1 vCPU per {LAMBDA_MB_PER_VCPU:,} MB, up to "
        f"{LAMBDA_MAX_VCPUS} vCPUs at {LAMBDA_MAX_MB:,} MB. These times used {threads} "
        f"fit thread(s) on {summary['cpu_count']} CPUs, i.e. a Lambda of >= "
        f"{threads * LAMBDA_MB_PER_VCPU:,} MB; the estimates assume fit slows by "
        "threads / vCPUs below that, and the other steps below 1 vCPU.",
        f"  Retrainer limits, linear in rows ({basis}): 15 minutes at "
        f"{rows_text(summary['limit_15min_rows'], count)} (at {threads} vCPU(s)); "
        f"10 GB peak at {rows_text(summary['limit_10gb_rows'], count)}, "
        f"{rows_text(summary['limit_10gb_headroom_rows'], count)} with x{HEADROOM} headroom. "
        f"The config's validation.max_bytes ({summary['max_bytes'] / MB:,.0f} MiB) "
        f"rejects files above {rows_text(summary['limit_max_bytes_rows'], count)}"
        + (" first." if first else "."),
        "  Threads: Lambda shows 2 CPUs up to 3,008 MB (3 up to 5,307 MB, ...) but gives "
        f"memory / {LAMBDA_MB_PER_VCPU:,} vCPU of time; set OMP_NUM_THREADS to "
        f"max(1, memory // {LAMBDA_MB_PER_VCPU:,}) so fit's OpenMP threads never outnumber "
        "the vCPUs (compare --threads 1 with the default on a busy machine).",
        f"  Candidate gate (parity in onnxruntime, {GATE_MEMORY_MB:,} MB in template.yaml): "
        f"peak {gate}; {GATE_MEMORY_MB:,} MB reached at "
        f"{rows_text(summary['gate_limit_rows'], count)}.",
        "  Beyond them: the same container and code as a SageMaker training job or an AWS "
        "Batch job on Fargate, started by the same S3 event.",
    ]
    if failed:
        lines.append(f"  Parity gate FAILED at {', '.join(failed)}: that candidate is rejected.")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="end with one JSON object")
    parser.add_argument("--sizes", type=int, nargs="+", default=list(DEFAULT_SIZES))
    parser.add_argument("--threads", type=int, default=None, help="OMP_NUM_THREADS for fit")
    parser.add_argument("--repeat", type=int, default=1, help="runs per size (fastest kept)")
    hidden = argparse.SUPPRESS
    parser.add_argument("--generate", nargs=2, metavar=("ROWS", "CSV"), help=hidden)
    parser.add_argument("--retrainer", nargs=3, metavar=("ROWS", "CSV", "DIR"), help=hidden)
    parser.add_argument("--gate", nargs=2, metavar=("ROWS", "DIR"), help=hidden)
    args = parser.parse_args()
    if args.generate:
        generate_file(int(args.generate[0]), Path(args.generate[1]))
        return 0
    if args.retrainer:
        rows, csv, staged = args.retrainer
        print(json.dumps(retrainer(int(rows), Path(csv), Path(staged))))
        return 0
    if args.gate:
        print(json.dumps(gate_parity(int(args.gate[0]), Path(args.gate[1]))))
        return 0
    if any(rows < 100 for rows in args.sizes):
        parser.error("each size must be at least 100 rows (the config's min_rows is 50)")
    sizes: dict[int, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="retrain-bench-") as workdir:
        for rows in args.sizes:
            sizes[rows] = run_size(rows, args.threads, args.repeat, Path(workdir))
    threads = max(f["threads"] for f in sizes.values())
    summary = summarise(sizes, threads)
    report(summary)
    if args.json:
        print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
