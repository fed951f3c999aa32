"""Foresight (issue 22): label-free quality estimates and always-valid rollout verdicts, in one run.

    .venv/bin/python benchmarks/foresight.py [--json] [--estimate-hours N] [--rows N]
        [--batch N] [--runs N] [--simulations N] [--rollout-hours N] [--seed N]

Runs the two halves, each its own script too:
- ``foresight_estimates.py``: CBPE and DLE against realized quality on the demo market's months
  and under covariate shift (the interval covers the realized metric in >= 90 % of hourly
  windows), and the prediction logger's added cost per record (<= 20 %);
- ``foresight_rollouts.py``: false promotion and false rollback of the sequential rollout test
  when the verdict is taken after every hourly label batch (<= the nominal 5 %), next to the
  old fixed-sample rule under the same looks.

With --json the only stdout line is one object: ``estimates`` and ``rollouts`` (each half's
figures), ``targets`` and ``targets_met`` (both halves', keys prefixed ``estimates.`` and
``rollouts.``), ``seconds``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import foresight_estimates
import foresight_rollouts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")
    parser.add_argument("--estimate-hours", type=int, default=60, help="hourly windows per case")
    parser.add_argument("--rows", type=int, default=300, help="rows per hourly window")
    parser.add_argument("--batch", type=int, default=1000, help="records per logger batch")
    parser.add_argument("--runs", type=int, default=9, help="logger batches timed (median)")
    parser.add_argument("--simulations", type=int, default=1500, help="rollouts per case")
    parser.add_argument("--rollout-hours", type=int, default=168, help="hourly looks per rollout")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    started = time.perf_counter()
    halves = {
        "estimates": foresight_estimates.measure(
            argparse.Namespace(
                hours=args.estimate_hours, rows=args.rows, batch=args.batch, runs=args.runs
            )
        ),
        "rollouts": foresight_rollouts.measure(
            argparse.Namespace(
                simulations=args.simulations, hours=args.rollout_hours, seed=args.seed
            )
        ),
    }
    result: dict[str, Any] = {name: half["figures"] for name, half in halves.items()}
    result["targets"] = {
        f"{name}.{key}": goal
        for name, half in halves.items()
        for key, goal in half["targets"].items()
    }
    result["targets_met"] = {
        f"{name}.{key}": met
        for name, half in halves.items()
        for key, met in half["targets_met"].items()
    }
    result["seconds"] = round(time.perf_counter() - started, 1)
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"{'target':<50} {'goal':>10}  met")
    for key, goal in result["targets"].items():
        print(f"{key:<50} {goal:>10}  {'yes' if result['targets_met'][key] else 'NO'}")
    estimates = result["estimates"]
    for key in sorted(estimates):
        if not isinstance(estimates[key], dict | list):
            print(f"{'estimates.' + key:<50} {estimates[key]}")
    rollouts = result["rollouts"]
    for key in sorted(rollouts):
        if key.endswith(("false_promotion", "false_rollback")):
            print(f"{'rollouts.' + key:<50} {rollouts[key]:.2%}")
    print(f"{result['seconds']} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
