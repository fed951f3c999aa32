"""`mlops demo` run after run: the distribution of its wall time, its stalls, and whether one
seed gives one history (issue 23).

    .venv/bin/python benchmarks/demo.py [--json] [--runs N] [--seeds S ...] [--months M]
                                        [--traffic T] [--logs DIR]

Each run is a fresh ``python -m mlops_cli demo --json`` (a new local stack, as a newcomer's
``make demo``), one after the other, seeds taken in turn from ``--seeds`` (default: 0, the
README's). A run's wall time is measured here, around the process; its phases (``timings``)
and the waits that gave up (``gave_up``: a stall) come from its own ``--json`` line. Each
run's console output (stderr) is kept in ``--logs`` (default: a new temporary directory) to
read what a slow run waited for. Runs of one seed must give identical ``months``: versions,
events, who answered and every figure (timings may differ).

Prints a table, one row per run, and the distribution; progress goes to stderr. With --json
stdout is one JSON object:
  runs             per run: seed, wall_s, seconds (the demo's own), timings, gave_up
  wall_s           min, median, p90, max and mean of the runs' wall times
  stalled_runs     runs in which a wait gave up
  same_months      per seed run more than once: whether every run gave the same months
  logs             where each run's console output is
  targets          max_wall_s 90, median_wall_s 60, stalled_runs 0, same_months true
  targets_met      a boolean per target
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
TARGETS: dict[str, Any] = {
    "max_wall_s": 90.0,
    "median_wall_s": 60.0,
    "stalled_runs": 0,
    "same_months": True,
}
RUN_TIMEOUT_S = 600


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run_once(
    index: int, seed: int, months: int, traffic: int, logs: Path
) -> tuple[dict[str, Any], list[dict[str, Any]] | None]:
    """One demo in its own process; its measurement and its ``months`` (None if it failed)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "POWERTOOLS_"))}
    output = logs / f"run-{index:02d}-seed-{seed}"
    command = [sys.executable, "-m", "mlops_cli", "demo", "--json", "--seed", str(seed)]
    command += ["--months", str(months), "--traffic", str(traffic)]
    command += ["--template", str(ROOT / "template.yaml"), "--output", str(output)]
    began = time.monotonic()
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=RUN_TIMEOUT_S, check=False, env=env
        )
        code, stdout, stderr = done.returncode, done.stdout, done.stderr
    except subprocess.TimeoutExpired as exc:
        code, stdout = -1, ""
        stderr = exc.stderr if isinstance(exc.stderr, str) else (exc.stderr or b"").decode()
    wall = round(time.monotonic() - began, 1)
    log = logs / f"run-{index:02d}-seed-{seed}.log"
    log.write_text(stderr)
    row: dict[str, Any] = {"run": index, "seed": seed, "wall_s": wall, "log": str(log)}
    lines = stdout.strip().splitlines()
    if code != 0 or not lines:
        row |= {"failed": f"exit {code}", "gave_up": []}
        return row, None
    summary = json.loads(lines[-1])
    row |= {
        "seconds": summary.get("seconds"),
        "timings": summary.get("timings") or {},
        "gave_up": summary.get("gave_up") or [],
        "production_version": summary.get("production_version"),
        "rmse_system_last_month": summary.get("rmse_system_last_month"),
    }
    return row, summary["months"]


def distribution(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"min": None, "median": None, "p90": None, "max": None, "mean": None}
    ordered = sorted(values)
    p90 = ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))]
    return {
        "min": ordered[0],
        "median": round(statistics.median(ordered), 1),
        "p90": p90,
        "max": ordered[-1],
        "mean": round(statistics.fmean(ordered), 1),
    }


def measure(runs: int, seeds: list[int], months: int, traffic: int, logs: Path) -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    histories: dict[int, list[list[dict[str, Any]] | None]] = {}
    for index in range(runs):
        seed = seeds[index % len(seeds)]
        progress(f"run {index + 1}/{runs}: mlops demo --seed {seed} ...")
        row, months_seen = run_once(index + 1, seed, months, traffic, logs)
        rows.append(row)
        histories.setdefault(seed, []).append(months_seen)
        stalls = ", ".join(f"{w['wait']} in month {w['month']}" for w in row["gave_up"])
        progress(
            f"run {index + 1}/{runs}: {row['wall_s']} s"
            + (f"; FAILED ({row['failed']})" if "failed" in row else "")
            + (f"; gave up: {stalls}" if stalls else "")
        )
    same = {
        str(seed): all(h is not None and h == seen[0] for h in seen)
        for seed, seen in histories.items()
        if len(seen) > 1
    }
    walls = [r["wall_s"] for r in rows if "failed" not in r]
    wall = distribution(walls)
    stalled = sum(1 for r in rows if r["gave_up"] or "failed" in r)
    targets_met = {
        "max_wall_s": wall["max"] is not None
        and len(walls) == len(rows)
        and wall["max"] <= TARGETS["max_wall_s"],
        "median_wall_s": wall["median"] is not None and wall["median"] <= TARGETS["median_wall_s"],
        "stalled_runs": stalled <= TARGETS["stalled_runs"],
        "same_months": all(same.values()),
    }
    return {
        "runs": rows,
        "seeds": seeds,
        "months": months,
        "traffic": traffic,
        "wall_s": wall,
        "stalled_runs": stalled,
        "same_months": same,
        "logs": str(logs),
        "targets": TARGETS,
        "targets_met": targets_met,
    }


def print_table(result: dict[str, Any]) -> None:
    print(f"mlops demo, {len(result['runs'])} runs ({result['months']} months, "
          f"{result['traffic']:,} houses a month); console output in {result['logs']}")  # fmt: skip
    print()
    print(f"{'run':>4} {'seed':>5} {'wall s':>7}  {'slowest phases':<44} gave up")
    for row in result["runs"]:
        phases = sorted((row.get("timings") or {}).items(), key=lambda kv: -kv[1])[:3]
        slowest = ", ".join(f"{name} {seconds:.1f}" for name, seconds in phases)
        stalls = ", ".join(f"{w['wait']} (month {w['month']})" for w in row["gave_up"])
        if "failed" in row:
            stalls = f"FAILED: {row['failed']}"
        print(f"{row['run']:>4} {row['seed']:>5} {row['wall_s']:>7.1f}  {slowest:<44} {stalls}")
    wall = result["wall_s"]
    print()
    print(
        f"wall time: min {wall['min']} s, median {wall['median']} s, p90 {wall['p90']} s, "
        f"max {wall['max']} s (targets: max ≤ {TARGETS['max_wall_s']:.0f} s, "
        f"median ≤ {TARGETS['median_wall_s']:.0f} s)"
    )
    print(f"runs with a stall: {result['stalled_runs']}")
    for seed, same in result["same_months"].items():
        print(f"seed {seed}: {'the same months in every run' if same else 'MONTHS DIFFER'}")
    met = result["targets_met"]
    print("targets met: " + ", ".join(f"{k} {'yes' if v else 'NO'}" for k, v in met.items()))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")
    parser.add_argument("--runs", type=int, default=5, help="demo runs (default 5)")
    parser.add_argument(
        "--seeds", type=int, nargs="+", default=[0], help="seeds, taken in turn (default 0)"
    )
    parser.add_argument("--months", type=int, default=11, help="--months of each demo (11)")
    parser.add_argument("--traffic", type=int, default=1500, help="--traffic of each (1500)")
    parser.add_argument("--logs", type=Path, default=None, help="keep each run's output here")
    args = parser.parse_args()
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    logs = args.logs or Path(tempfile.mkdtemp(prefix="mlops-demo-bench-"))
    logs.mkdir(parents=True, exist_ok=True)
    result = measure(args.runs, args.seeds, args.months, args.traffic, logs.resolve())
    if args.json:
        print(json.dumps(result))
    else:
        print_table(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
