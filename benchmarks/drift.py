"""Drift evaluation cost: one evaluation of 100k and 1M captured rows (10 numeric + 2
categorical features) against a 100k-row baseline, from the logger's sketches and exact (from
the raw rows), side by side with Evidently's data drift preset on the same data in the same run.

    .venv/bin/python benchmarks/drift.py [--json] [--sizes N ...] [--repeat N] [--skip-evidently]

Data (numpy, seeded, regenerated identically in every process that needs it; each reports a
sha256 of what it generated and the run checks they match): reference 100,000 rows (seed 1),
current ``--sizes`` rows (seed 2) in which four features moved: ``normal`` (mean +0.5 std),
``lognormal`` (values x1.25), ``counts`` (Poisson 3 -> 4) and ``segment`` (category shares);
``gappy`` has 2% missing values on both sides. The prediction (regression) is a fixed function
of the features. The baseline is ``build_baseline`` on the reference (20 bins), read back from
JSON. The current rows are capture rows ``{"model", "version", "ts", "inputs", "prediction"}``
spread over 24 hours.

Preparation (one process per size, NOT measured): the logger's batch sketches, one per 1,000
rows (``build_sketch``; 1,000 documents for 1M rows), and the hourly roll-ups of them (24
documents, in ``SketchStore``'s roll-up format), written as compact JSON files.

Measured, each in a fresh interpreter, after its imports; the time is one evaluation, no
warm-up (the fastest of ``--repeat`` processes; memory the largest):
  sketch     what the drift evaluator does per evaluation on batch sketches: read the N batch
             documents (files in the page cache: S3 GETs excluded), ``json.loads``,
             ``Sketch.from_dict``, ``merge_all``, ``evaluate_sketch`` (``DriftConfig()``)
  rollup     the same from the 24 hourly roll-up documents (what ``SketchStore.window`` reads
             once roll-ups exist)
  exact      ``evaluate_rows`` from the list of capture-row dicts (already in memory; reading
             and parsing the captures is NOT included) to the result
  evidently  Evidently 0.7 ``Report([DataDriftPreset()]).run`` on pandas DataFrames of the
             same reference and current data (``Dataset.from_pandas`` with the same numeric and
             categorical columns, timed; the DataFrames are built first, not timed), in its own
             venv ``.tools/evidently/`` (``benchmarks/evidently_requirements.txt``), created on
             first use. One untimed warm-up run on 1,000 rows first, so Evidently's lazy
             imports are not counted against it. Its preset judges the 12 features; ours also
             judges the prediction. If Evidently cannot be installed or fails, its keys are
             null and ``evidently_error`` says why.
Peak memory is the measuring process's resident high-water mark (``VmHWM``, everything
included: interpreter, imports, input, evaluation). ``import_mb`` is its RSS after the imports,
``input_mb`` after the input is ready (baseline read; rows or DataFrames built), just before the
timed step, so the evaluation's own share is visible.

Prints a table; with --json the last line is one JSON object:
  sketch_1m_s, sketch_1m_peak_mb      batch-sketch path at 1M rows (DESIGN §8 keys)
  exact_1m_s, evidently_1m_s          exact path and Evidently at 1M rows
  evidently_speedup                   evidently_1m_s / sketch_1m_s
  evidently_exact_speedup             evidently_1m_s / exact_1m_s
  rollup_1m_s                         roll-up path at 1M rows
  <path>_<size>_s, <path>_<size>_peak_mb   for every path (sketch, rollup, exact, evidently)
                                      and size (``100k``, ``1m``, or the row count)
  evidently_speedup_<size>, evidently_exact_speedup_<size>
  sizes                               per size: per path s, peak_mb, import_mb, input_mb,
                                      drifted (features flagged), drifted_features, documents
                                      and document_bytes (sketch paths), plus data_sha, same_data
  targets, targets_met                the DESIGN §8 bars at 1M rows and whether they were met
  evidently_version, evidently_error, reference_rows, features, shifted, repeat, cpu_count,
  load_avg
Any key of a size or of Evidently that was not measured is null.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import importlib
import json
import math
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

ROOT = Path(__file__).resolve().parent.parent
EVIDENTLY_VENV = ROOT / ".tools" / "evidently"
EVIDENTLY_REQUIREMENTS = ROOT / "benchmarks" / "evidently_requirements.txt"
MB = 1024 * 1024

DEFAULT_SIZES = (100_000, 1_000_000)
REFERENCE_ROWS = 100_000
REFERENCE_SEED = 1
CURRENT_SEED = 2
BATCH_ROWS = 1_000  # rows per logger batch, so one sketch document per 1,000 rows
HOURS = 24
MODEL = "house-prices"
VERSION = "1"
DAY_START_MS = 1_714_521_600_000  # 2024-05-01T00:00:00Z
DAY_MS = 86_400_000
ROLLUP_SCHEMA = 1  # ``adapters.sketch_store``'s roll-up document
WARMUP_ROWS = 1_000

NUMERIC = (
    "normal",
    "lognormal",
    "uniform",
    "counts",
    "standard",
    "exponential",
    "gappy",
    "beta",
    "gamma",
    "integers",
)
CATEGORICAL = ("segment", "region")
SHIFTED = ("normal", "lognormal", "counts", "segment")
SEGMENTS = ("retail", "online", "wholesale", "partner", "staff")
SEGMENT_SHARES = (0.40, 0.25, 0.15, 0.12, 0.08)
SEGMENT_SHARES_SHIFTED = (0.22, 0.38, 0.15, 0.12, 0.13)
REGIONS = tuple(f"region-{i:02d}" for i in range(30))
MISSING_SHARE = 0.02

TARGETS = {"sketch_1m_s": 2.0, "sketch_1m_peak_mb": 256.0, "evidently_speedup": 10.0}
PATHS = ("sketch", "rollup", "exact", "evidently")
PATH_NAMES = {
    "sketch": "sketches: {documents:,} batch docs",
    "rollup": "sketches: {documents} hourly roll-ups",
    "exact": "exact: evaluate_rows on rows",
    "evidently": "Evidently DataDriftPreset",
}

FloatArray = npt.NDArray[np.float64]


# --- data ------------------------------------------------------------------------------------


def generate(rows: int, seed: int, *, shifted: bool) -> dict[str, npt.NDArray[Any]]:
    """The features as numpy columns (float64 with NaN for missing; int codes for categories)
    and the prediction. numpy only: the Evidently venv runs this too."""
    rng = np.random.default_rng(seed)
    normal = rng.normal(50.0, 10.0, rows) + (5.0 if shifted else 0.0)
    lognormal = rng.lognormal(3.0, 0.5, rows) * (1.25 if shifted else 1.0)
    uniform = rng.uniform(0.0, 100.0, rows)
    counts = rng.poisson(4.0 if shifted else 3.0, rows).astype(np.float64)
    standard = rng.normal(0.0, 1.0, rows)
    exponential = rng.exponential(2.0, rows)
    gappy = np.round(rng.normal(100.0, 25.0, rows), 2)
    gappy[rng.random(rows) < MISSING_SHARE] = np.nan
    beta = rng.beta(2.0, 5.0, rows)
    gamma = rng.gamma(2.0, 3.0, rows)
    integers = rng.integers(0, 21, rows).astype(np.float64)
    shares = SEGMENT_SHARES_SHIFTED if shifted else SEGMENT_SHARES
    segment = rng.choice(len(SEGMENTS), rows, p=shares)
    zipf = 1.0 / np.arange(1, len(REGIONS) + 1)
    region = rng.choice(len(REGIONS), rows, p=zipf / zipf.sum())
    prediction = (
        2.0 * normal
        + 8.0 * np.log(lognormal)
        + 0.3 * uniform
        + 5.0 * counts
        + 10.0 * standard
        + np.nan_to_num(gappy, nan=100.0) * 0.5
        + 20.0 * beta
        + gamma
        + integers
        + np.asarray([0.0, 12.0, -8.0, 4.0, 20.0])[segment]
        + region * 0.7
    )
    return {
        "normal": normal,
        "lognormal": lognormal,
        "uniform": uniform,
        "counts": counts,
        "standard": standard,
        "exponential": exponential,
        "gappy": gappy,
        "beta": beta,
        "gamma": gamma,
        "integers": integers,
        "segment": segment,
        "region": region,
        "prediction": prediction,
    }


def categories(name: str) -> tuple[str, ...]:
    return SEGMENTS if name == "segment" else REGIONS


def fingerprint(data: Mapping[str, npt.NDArray[Any]]) -> str:
    digest = hashlib.sha256()
    for name in (*NUMERIC, *CATEGORICAL, "prediction"):
        digest.update(np.ascontiguousarray(data[name]).tobytes())
    return digest.hexdigest()[:16]


def text_column(data: Mapping[str, npt.NDArray[Any]], name: str) -> npt.NDArray[Any]:
    """A categorical column as an object array of Python strings (shared objects)."""
    column: npt.NDArray[Any] = np.asarray(categories(name), dtype=object)[data[name]]
    return column


def capture_rows(
    data: Mapping[str, npt.NDArray[Any]], start: int, stop: int, total: int
) -> list[dict[str, Any]]:
    """Rows ``start:stop`` as stored capture rows (plain JSON values; a missing value is
    None), timestamps spread evenly over one day."""
    numeric = [
        (name, [None if math.isnan(v) else v for v in data[name][start:stop].tolist()])
        for name in NUMERIC
    ]  # a missing value (NaN) is None, as in the captured JSON
    texts = [(name, text_column(data, name)[start:stop].tolist()) for name in CATEGORICAL]
    predictions = data["prediction"][start:stop].tolist()
    rows = []
    for i in range(stop - start):
        inputs: dict[str, Any] = {}
        for name, values in numeric:
            inputs[name] = values[i]
        for name, values in texts:
            inputs[name] = values[i]
        rows.append(
            {
                "model": MODEL,
                "version": VERSION,
                "ts": DAY_START_MS + (start + i) * DAY_MS // total,
                "inputs": inputs,
                "prediction": predictions[i],
            }
        )
    return rows


def features() -> tuple[Any, ...]:
    from mlops.domain.schema import Feature

    return (
        *(Feature(name, "numeric") for name in NUMERIC),
        *(Feature(name, "categorical", categories=categories(name)) for name in CATEGORICAL),
    )


# --- measurement helpers ---------------------------------------------------------------------


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def label(rows: int) -> str:
    if rows >= 1_000_000 and rows % 1_000_000 == 0:
        return f"{rows // 1_000_000}M"
    if rows >= 1_000 and rows % 1_000 == 0:
        return f"{rows // 1_000}k"
    return str(rows)


def key_label(rows: int) -> str:
    """``1m``, ``100k``: the size in JSON keys (``sketch_1m_s``)."""
    return label(rows).lower()


def status_mb(field: str) -> float:
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def rss_mb() -> float:
    """This process's resident memory now."""
    return status_mb("VmRSS")


def peak_rss_mb() -> float:
    """This process's resident high-water mark (``VmHWM``: this exec's address space only,
    unlike ``ru_maxrss`` it never carries the parent's size over a fork)."""
    return status_mb("VmHWM")


# --- children: preparation -------------------------------------------------------------------


def prepare(rows: int, directory: Path) -> dict[str, Any]:
    """Baseline, batch sketches and hourly roll-ups of ``rows`` current rows, as JSON files."""
    from mlops.domain.baseline import build_baseline
    from mlops.domain.sketch import SketchPlan, build_sketch
    from mlops.domain.sketch_merge import merge_all

    reference = generate(REFERENCE_ROWS, REFERENCE_SEED, shifted=False)
    columns: dict[str, npt.NDArray[Any]] = {name: reference[name] for name in NUMERIC}
    columns |= {name: text_column(reference, name) for name in CATEGORICAL}
    document = build_baseline(
        features(), columns, reference["prediction"], task="regression", metrics={}, bins=20
    )
    text = json.dumps(document)
    baseline = json.loads(text)  # as read back from S3
    (directory / "baseline.json").write_text(text)
    plan = SketchPlan.from_baseline(baseline)

    current = generate(rows, CURRENT_SEED, shifted=True)
    batches = directory / "batches"
    rollups = directory / "rollups"
    batches.mkdir()
    rollups.mkdir()
    per_hour: dict[int, list[tuple[str, Any]]] = {}
    batch_bytes = 0
    for number, start in enumerate(range(0, rows, BATCH_ROWS)):
        part = capture_rows(current, start, min(start + BATCH_ROWS, rows), rows)
        sketch = build_sketch(plan, part)
        body = json.dumps(sketch.to_dict(), separators=(",", ":"))
        (batches / f"{number:06d}.json").write_text(body)
        batch_bytes += len(body)
        hour = (part[0]["ts"] - DAY_START_MS) * HOURS // DAY_MS
        key = (
            f"sketches/model={MODEL}/version={VERSION}/dt=2024-05-01/hour={hour:02d}/"
            f"batch-{number:06d}.json"
        )
        per_hour.setdefault(hour, []).append((key, sketch))
    rollup_bytes = 0
    merged_hours = []
    for hour, items in sorted(per_hour.items()):
        merged = merge_all([sketch for _, sketch in items])
        merged_hours.append(merged)
        doc = {
            "schema": ROLLUP_SCHEMA,
            "baseline": plan.fingerprint,
            "batches": sorted(key for key, _ in items),
            "sketch": merged.to_dict(),
        }
        body = json.dumps(doc, separators=(",", ":"))
        (rollups / f"hour={hour:02d}.json").write_text(body)
        rollup_bytes += len(body)
    everything = merge_all([sketch for items in per_hour.values() for _, sketch in items])
    assert merge_all(merged_hours).to_dict() == everything.to_dict(), "roll-ups do not add up"
    assert everything.rows == rows, everything.rows
    batch_count = sum(len(items) for items in per_hour.values())
    return {
        "reference_sha": fingerprint(reference),
        "current_sha": fingerprint(current),
        "batch_documents": batch_count,
        "batch_document_bytes": round(batch_bytes / batch_count),
        "rollup_documents": len(per_hour),
        "rollup_document_bytes": round(rollup_bytes / len(per_hour)),
    }


# --- children: our evaluations ---------------------------------------------------------------


def drift_summary(result: Any) -> dict[str, Any]:
    return {
        "drifted": len(result.drifted_features),
        "drifted_features": list(result.drifted_features),
        "judged": len(result.features),
        "dataset_drift": bool(result.dataset_drift),
        "prediction_drifted": None if result.prediction is None else result.prediction.drifted,
    }


def measure_sketches(kind: str, directory: Path) -> dict[str, Any]:
    """One evaluation from the ``kind`` ("batches" or "rollups") documents on disk."""
    started = time.perf_counter()
    from mlops.domain.config import DriftConfig
    from mlops.domain.drift import evaluate_sketch
    from mlops.domain.sketch import Sketch, baseline_fingerprint
    from mlops.domain.sketch_merge import merge_all

    import_s = time.perf_counter() - started
    import_mb = rss_mb()
    baseline = json.loads((directory / "baseline.json").read_bytes())
    config = DriftConfig()
    paths = sorted((directory / kind).iterdir())
    input_mb = rss_mb()

    def parse(body: bytes, expected: str) -> Any:
        # As SketchStore._read_sketch / _read_rollup (a roll-up wraps the merged sketch of its
        # hour and the batch keys it holds).
        doc = json.loads(body)
        if kind == "rollups":
            if doc.get("schema") != ROLLUP_SCHEMA or doc.get("baseline") != expected:
                raise ValueError("another schema or baseline")
            doc = doc["sketch"]
        sketch = Sketch.from_dict(doc)
        if sketch.baseline != expected:
            raise ValueError("binned on another baseline")
        return sketch

    started = time.perf_counter()
    expected = baseline_fingerprint(baseline)
    sketches = [parse(path.read_bytes(), expected) for path in paths]
    merged = merge_all(sketches)
    result = evaluate_sketch(baseline, merged, config)
    seconds = time.perf_counter() - started
    return {
        "s": seconds,
        "peak_mb": peak_rss_mb(),
        "import_mb": import_mb,
        "input_mb": input_mb,
        "import_s": import_s,
        "documents": len(paths),
        "rows": merged.rows,
        **drift_summary(result),
    }


def measure_exact(rows: int, directory: Path) -> dict[str, Any]:
    """One ``evaluate_rows`` on ``rows`` capture-row dicts built beforehand."""
    started = time.perf_counter()
    from mlops.domain.config import DriftConfig
    from mlops.domain.drift import evaluate_rows

    import_s = time.perf_counter() - started
    import_mb = rss_mb()
    baseline = json.loads((directory / "baseline.json").read_bytes())
    config = DriftConfig()
    schema = features()
    current = generate(rows, CURRENT_SEED, shifted=True)
    sha = fingerprint(current)
    captured = capture_rows(current, 0, rows, rows)
    del current
    input_mb = rss_mb()
    started = time.perf_counter()
    result = evaluate_rows(baseline, captured, schema, config)
    seconds = time.perf_counter() - started
    return {
        "s": seconds,
        "peak_mb": peak_rss_mb(),
        "import_mb": import_mb,
        "input_mb": input_mb,
        "import_s": import_s,
        "current_sha": sha,
        "rows": result.rows,
        **drift_summary(result),
    }


# --- child: Evidently (runs in .tools/evidently) ---------------------------------------------


def evidently_drift(snapshot: Any) -> tuple[int, list[str]]:
    """Evidently's count of drifted columns and, from its per-column ``ValueDrift`` results,
    their names (a p-value drifts below its threshold, a distance at or above it)."""
    count = 0
    names = []
    for metric in snapshot.dict()["metrics"]:
        config = metric.get("config", {})
        kind = str(config.get("type", ""))
        if kind.endswith("DriftedColumnsCount"):
            count = int(metric["value"]["count"])
        elif kind.endswith("ValueDrift"):
            value, threshold = float(metric["value"]), float(config["threshold"])
            p_value = "p_value" in str(config.get("method", "")).lower()
            if (value < threshold) if p_value else (value >= threshold):
                names.append(str(config["column"]))
    return count, names


def measure_evidently(rows: int) -> dict[str, Any]:
    started = time.perf_counter()
    os.environ.setdefault("DO_NOT_TRACK", "1")
    # Only in the Evidently venv, not the project's: import by name (and untyped for mypy).
    pd: Any = importlib.import_module("pandas")
    evidently: Any = importlib.import_module("evidently")
    presets: Any = importlib.import_module("evidently.presets")
    import_s = time.perf_counter() - started
    import_mb = rss_mb()

    def frame(data: Mapping[str, npt.NDArray[Any]]) -> Any:
        columns: dict[str, Any] = {name: data[name] for name in NUMERIC}
        columns |= {name: text_column(data, name) for name in CATEGORICAL}
        return pd.DataFrame(columns)

    reference_data = generate(REFERENCE_ROWS, REFERENCE_SEED, shifted=False)
    current_data = generate(rows, CURRENT_SEED, shifted=True)
    shas = {"reference_sha": fingerprint(reference_data), "current_sha": fingerprint(current_data)}
    reference, current = frame(reference_data), frame(current_data)
    del reference_data, current_data
    definition = evidently.DataDefinition(
        numerical_columns=list(NUMERIC), categorical_columns=list(CATEGORICAL)
    )

    def run(cur: Any, ref: Any) -> Any:
        return evidently.Report([presets.DataDriftPreset()]).run(
            evidently.Dataset.from_pandas(cur, data_definition=definition),
            evidently.Dataset.from_pandas(ref, data_definition=definition),
        )

    run(current.iloc[:WARMUP_ROWS].copy(), reference.iloc[:WARMUP_ROWS].copy())  # lazy imports
    input_mb = rss_mb()
    started = time.perf_counter()
    snapshot = run(current, reference)
    seconds = time.perf_counter() - started
    peak = peak_rss_mb()
    count, names = evidently_drift(snapshot)
    return {
        "s": seconds,
        "peak_mb": peak,
        "import_mb": import_mb,
        "input_mb": input_mb,
        "import_s": import_s,
        "drifted": count,
        "drifted_features": names,
        "judged": len(NUMERIC) + len(CATEGORICAL),
        "version": str(evidently.__version__),
        "pandas": str(pd.__version__),
        **shas,
    }


# --- parent ----------------------------------------------------------------------------------


def child(python: Path | str, args: Sequence[str]) -> dict[str, Any]:
    """Run this script in a fresh interpreter; its last stdout line is a JSON object."""
    out = subprocess.run(
        [str(python), str(Path(__file__).resolve()), *args],
        stdout=subprocess.PIPE,
        text=True,
        check=True,
        cwd=ROOT,
    )
    lines = out.stdout.strip().splitlines()
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def evidently_probe(python: Path) -> str | None:
    """Evidently's version in that interpreter, or None when it (or pandas < 3) is missing."""
    if not python.exists():
        return None
    code = (
        "import evidently, pandas; "
        "assert int(pandas.__version__.split('.')[0]) < 3, pandas.__version__; "
        "print(evidently.__version__)"
    )
    out = subprocess.run(
        [str(python), "-c", code],
        check=False,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    return out.stdout.strip() or None if out.returncode == 0 else None


def ensure_evidently() -> tuple[Path | None, str | None, str | None]:
    """(python, version, error): the Evidently venv, created on first use."""
    python = EVIDENTLY_VENV / "bin" / "python"
    version = evidently_probe(python)
    if version:
        return python, version, None
    progress(f"installing Evidently into {EVIDENTLY_VENV.relative_to(ROOT)} (first use) ...")
    base = shutil.which("python3") or sys.executable
    try:
        if not python.exists():
            subprocess.run([base, "-m", "venv", str(EVIDENTLY_VENV)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", "-r", str(EVIDENTLY_REQUIREMENTS)],
            check=True,
            stdout=sys.stderr,
            timeout=1800,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        return None, None, f"Evidently could not be installed: {exc}"
    version = evidently_probe(python)
    if not version:
        return None, None, "Evidently installed but cannot be imported (or pandas >= 3)"
    return python, version, None


def best(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The fastest run's time (a shared machine only slows a run down), the largest memory."""
    combined = dict(min(runs, key=lambda run: float(run["s"])))
    for key in ("peak_mb", "import_mb", "input_mb"):
        combined[key] = max(float(run[key]) for run in runs)
    for key in ("s", "import_s", "peak_mb", "import_mb", "input_mb"):
        combined[key] = round(float(combined[key]), 3 if key.endswith("_s") or key == "s" else 1)
    combined["runs"] = len(runs)
    return combined


def run_size(
    rows: int, repeat: int, evidently: Path | None, workdir: Path
) -> tuple[dict[str, Any], str | None]:
    directory = workdir / f"size-{rows}"
    directory.mkdir()
    progress(f"[{label(rows)}] preparing baseline, batch sketches and roll-ups (not measured)")
    prepared = child(sys.executable, ["--child", "prepare", "--rows", str(rows), str(directory)])
    runs: dict[str, list[dict[str, Any]]] = {path: [] for path in PATHS}
    error = None
    for attempt in range(repeat):
        for path, python, kind in (
            ("sketch", sys.executable, "batches"),
            ("rollup", sys.executable, "rollups"),
            ("exact", sys.executable, "exact"),
            ("evidently", evidently, "evidently"),
        ):
            if python is None or (path == "evidently" and error):
                continue
            args = ["--child", kind, "--rows", str(rows), str(directory)]
            try:
                figures = child(python, args)
            except (subprocess.CalledProcessError, ValueError, IndexError) as exc:
                if path != "evidently":
                    raise
                error = f"Evidently failed at {label(rows)} rows: {exc}"
                progress(error)
                continue
            runs[path].append(figures)
            progress(
                f"[{label(rows)}] run {attempt + 1}/{repeat} {path:<9} {figures['s']:8.3f} s"
                f"  peak {figures['peak_mb']:7.1f} MB  drifted {figures['drifted']}"
            )
    result: dict[str, Any] = {"prepared": prepared}
    for path in PATHS:
        result[path] = best(runs[path]) if runs[path] else None
    shas = {(prepared["reference_sha"], prepared["current_sha"])}
    shas.add((prepared["reference_sha"], result["exact"]["current_sha"]))
    if result["evidently"]:
        ev = result["evidently"]
        shas.add((ev["reference_sha"], ev["current_sha"]))
    result["same_data"] = len(shas) == 1
    result["data_sha"] = prepared["current_sha"]
    for path, kind in (("sketch", "batch"), ("rollup", "rollup")):
        result[path]["document_bytes"] = prepared[f"{kind}_document_bytes"]
    for path in PATHS:
        if result[path]:
            for key in ("reference_sha", "current_sha", "version", "pandas"):
                result[path].pop(key, None)
    shutil.rmtree(directory)
    return result, error


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or not denominator:
        return None
    return round(numerator / denominator, 1)


def summarise(
    sizes: dict[int, dict[str, Any]],
    repeat: int,
    evidently_version: str | None,
    evidently_error: str | None,
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for rows, result in sizes.items():
        k = key_label(rows)
        for path in PATHS:
            figures = result[path]
            out[f"{path}_{k}_s"] = figures["s"] if figures else None
            out[f"{path}_{k}_peak_mb"] = figures["peak_mb"] if figures else None
        ev = out[f"evidently_{k}_s"]
        out[f"evidently_speedup_{k}"] = ratio(ev, out[f"sketch_{k}_s"])
        out[f"evidently_rollup_speedup_{k}"] = ratio(ev, out[f"rollup_{k}_s"])
        out[f"evidently_exact_speedup_{k}"] = ratio(ev, out[f"exact_{k}_s"])
    for key in ("sketch_1m_s", "sketch_1m_peak_mb", "exact_1m_s", "evidently_1m_s"):
        out.setdefault(key, None)
    out["evidently_speedup"] = out.get("evidently_speedup_1m")
    out["evidently_exact_speedup"] = out.get("evidently_exact_speedup_1m")
    out.setdefault("rollup_1m_s", None)
    met: dict[str, bool | None] = {}
    for key, bar in TARGETS.items():
        value = out.get(key)
        met[key] = None if value is None else (value >= bar if "speedup" in key else value <= bar)
    return {
        **out,
        "targets": TARGETS,
        "targets_met": met,
        "sizes": {str(rows): result for rows, result in sizes.items()},
        "evidently_version": evidently_version,
        "evidently_error": evidently_error,
        "reference_rows": REFERENCE_ROWS,
        "features": {"numeric": list(NUMERIC), "categorical": list(CATEGORICAL)},
        "shifted": list(SHIFTED),
        "repeat": repeat,
        "cpu_count": os.cpu_count(),
        "load_avg": round(os.getloadavg()[0], 2),
    }


def report(summary: dict[str, Any]) -> None:
    header = (
        f"{'rows':>6}  {'path':<36} {'time s':>8} {'peak MB':>8} {'imports MB':>10} "
        f"{'input MB':>9} {'drifted':>8}  {'vs Evidently':>12}"
    )
    print(header)
    print("-" * len(header))
    for rows_text, result in summary["sizes"].items():
        rows = int(rows_text)
        evidently = result["evidently"]
        for path in PATHS:
            figures = result[path]
            documents = figures.get("documents", 0) if figures else 0
            name = PATH_NAMES[path].format(documents=documents)
            if figures is None:
                print(f"{label(rows):>6}  {name:<36} {'n/a':>8}")
                continue
            speedup = (
                f"{evidently['s'] / figures['s']:>11.1f}x"
                if evidently and path != "evidently"
                else ""
            )
            drifted = f"{figures['drifted']}/{figures['judged']}"
            print(
                f"{label(rows):>6}  {name:<36} {figures['s']:>8.3f} {figures['peak_mb']:>8.0f} "
                f"{figures['import_mb']:>10.0f} {figures['input_mb']:>9.0f} {drifted:>8}  "
                f"{speedup:>12}"
            )
    print()
    for rows_text, result in summary["sizes"].items():
        rows = int(rows_text)
        ours = result["sketch"]
        parts = [f"ours {', '.join(ours['drifted_features']) or 'none'}"]
        if result["evidently"]:
            parts.append(
                f"Evidently {', '.join(result['evidently']['drifted_features']) or 'none'}"
            )
        same = "same data everywhere" if result["same_data"] else "DATA DIFFERS BETWEEN PROCESSES"
        print(f"{label(rows)}: drifted: {'; '.join(parts)} ({same})")
    print(f"shifted on purpose: {', '.join(summary['shifted'])}")
    if summary["evidently_error"]:
        print(f"Evidently: not measured: {summary['evidently_error']}")
    else:
        print(f"Evidently {summary['evidently_version']} in {EVIDENTLY_VENV.relative_to(ROOT)}")
    print()
    print("Targets at 1M rows (DESIGN §8):")
    for key, bar in summary["targets"].items():
        value = summary.get(key)
        met = summary["targets_met"][key]
        verdict = "n/a" if met is None else "met" if met else "MISSED"
        relation = ">=" if "speedup" in key else "<="
        shown = "n/a" if value is None else f"{value:g}"
        print(f"  {key:<20} {shown:>10}  (target {relation} {bar:g})  {verdict}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="end with one JSON object")
    parser.add_argument("--sizes", type=int, nargs="+", default=list(DEFAULT_SIZES))
    parser.add_argument("--repeat", type=int, default=3, help="processes per measurement")
    parser.add_argument("--skip-evidently", action="store_true", help="measure ours only")
    hidden = argparse.SUPPRESS
    parser.add_argument(
        "--child", choices=("prepare", "batches", "rollups", "exact", "evidently"), help=hidden
    )
    parser.add_argument("--rows", type=int, help=hidden)
    parser.add_argument("directory", nargs="?", type=Path, help=hidden)
    args = parser.parse_args()
    if args.child:
        children: dict[str, Callable[[], dict[str, Any]]] = {
            "prepare": lambda: prepare(args.rows, args.directory),
            "batches": lambda: measure_sketches("batches", args.directory),
            "rollups": lambda: measure_sketches("rollups", args.directory),
            "exact": lambda: measure_exact(args.rows, args.directory),
            "evidently": lambda: measure_evidently(args.rows),
        }
        print(json.dumps(children[args.child]()))
        return 0
    if any(rows < BATCH_ROWS for rows in args.sizes):
        parser.error(f"each size must be at least {BATCH_ROWS:,} rows (one logger batch)")
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    evidently: Path | None = None
    version: str | None = None
    error: str | None = "skipped (--skip-evidently)" if args.skip_evidently else None
    if not args.skip_evidently:
        evidently, version, error = ensure_evidently()
        if error:
            progress(f"Evidently: {error}; measuring ours only")
    sizes: dict[int, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="drift-bench-") as workdir:
        for rows in args.sizes:
            sizes[rows], failed = run_size(rows, args.repeat, evidently, Path(workdir))
            error = error or failed
    summary = summarise(sizes, args.repeat, version, error)
    report(summary)
    if args.json:
        print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
