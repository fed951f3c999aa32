"""How often the drift tests flag a feature of an unchanged market, whether they still catch
each change the market's knobs make, and whether a few extreme rows can make dataset drift.

    .venv/bin/python benchmarks/drift_false_alarms.py [--json] [--windows N] [--sizes N ...]

Data: the shipped synthetic market (``mlops.domain.synthetic.generate``). Window ``i`` is
judged against baseline ``i``, built as training builds it: ``build_baseline`` with the
default ``baseline_bins`` on 3,200 month-0 rows (the training split of the local stack's
4,000-row bootstrap upload), read back from JSON, the shipped ``house_prices.toml`` features.
The window is ``--sizes`` rows of the same month-0 market (other seeds): nothing changed, so
every drifted feature is a false alarm. ``DriftConfig()`` defaults. Both paths: ``sketch``
(``build_sketch`` of the capture rows, then ``evaluate_sketch``) and ``exact``
(``evaluate_rows`` on the rows, what the evaluator does up to ``small_sample_rows``; above
that size it is not run: the evaluator reads the sketch).

Feature types: continuous numeric (``sqft``, ``lot_size`` (20 % zeros), ``distance_to_center``),
discrete numeric (``bedrooms``, ``bathrooms``: a handful of values; ``year_built``: whole
years; ``interest_rate``: rounded to 0.01 with a 0.25 spread), categorical (``location``,
``property_type``). The prediction is reported by the evaluator, never counted: left out.

Detection (``--detection-windows`` per cell): windows of each size in which a knob moved
(``size_shift=0.3``: sqft; ``new_location_share=0.15``: location; ``interest_rate=6.5``;
``house_share=0.8``: property_type; ``conditions_for_month(6)``: rates, location and sqft at
once), judged as the evaluator would (exact up to ``small_sample_rows``, the sketch above):
the share of windows in which every feature the knob moves drifted. Extreme rows: the first
50 rows of an unchanged 5,000-row window set to every declared maximum of the shipped config
(``sqft`` 20,000, ``lot_size`` 500,000, ``interest_rate`` 25, ...): the share of windows in
which each feature drifted, and in which the dataset did.

Prints a table; with --json the only stdout line is one JSON object:
  false_alarms        {mode: {size: {feature: share of windows in which it drifted}}}
  by_type             {mode: {size: {type: the largest rate of a feature of that type}}}
  detection           {knob: {size: share of windows in which its features drifted}}
  extreme_rows        {"flagged": {feature: share}, "dataset_drift": share}
  worst_false_alarm, weakest_detection
  targets, targets_met  every feature <= 5 % at every size and path; every knob caught in
                        >= 95 % of windows at every size; dataset drift from 50 extreme rows
                        in 5,000 in no window
  windows, detection_windows, sizes, baseline_rows, seconds
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "layers/core")]

from mlops.domain.baseline import build_baseline  # noqa: E402
from mlops.domain.config import DriftConfig, TrainingConfig  # noqa: E402
from mlops.domain.config_document import load_config  # noqa: E402
from mlops.domain.drift import DriftResult, evaluate_rows, evaluate_sketch  # noqa: E402
from mlops.domain.sketch import SketchPlan, build_sketch  # noqa: E402
from mlops.domain.synthetic import MarketConditions, conditions_for_month, generate  # noqa: E402

BASELINE_ROWS = 3200
FEATURES = load_config().features  # the shipped house-prices config, with its declared bounds
CONFIG = DriftConfig()
TYPES = {
    "sqft": "continuous",
    "lot_size": "continuous",
    "distance_to_center": "continuous",
    "bedrooms": "discrete",
    "bathrooms": "discrete",
    "year_built": "discrete",
    "interest_rate": "discrete",
    "location": "categorical",
    "property_type": "categorical",
}
KNOBS: dict[str, tuple[MarketConditions, tuple[str, ...]]] = {
    "size_shift=0.3": (MarketConditions(size_shift=0.3), ("sqft",)),
    "new_location_share=0.15": (MarketConditions(new_location_share=0.15), ("location",)),
    "interest_rate=6.5": (MarketConditions(interest_rate=6.5), ("interest_rate",)),
    "house_share=0.8": (MarketConditions(house_share=0.8), ("property_type",)),
    "month 6": (conditions_for_month(6), ("interest_rate", "location", "sqft")),
}
EXTREME_ROWS = 50
TARGETS = {
    "false_alarm_per_feature": 0.05,
    "detection_per_knob": 0.95,
    "extreme_rows_dataset_drift": 0.0,
}


@functools.cache
def baseline_for(seed: int) -> dict[str, Any]:
    """A baseline as training builds it, on month-0 rows."""
    columns = generate(BASELINE_ROWS, conditions_for_month(0), seed=10_000 + seed)
    document = build_baseline(
        FEATURES,
        columns,
        columns["price"],  # stands for the model's predictions: reported, never counted
        task="regression",
        metrics={},
        bins=TrainingConfig().baseline_bins,
    )
    loaded: dict[str, Any] = json.loads(json.dumps(document))
    return loaded


def rows_of(columns: dict[str, Any]) -> tuple[list[dict[str, Any]], list[float]]:
    """Plain JSON-like rows (as the captures hold them) and their predictions."""
    names = [f.name for f in FEATURES]
    values = zip(*(columns[n].tolist() for n in names), strict=True)
    return [dict(zip(names, row, strict=True)) for row in values], columns["price"].tolist()


def judge(
    baseline: dict[str, Any], rows: list[dict[str, Any]], predictions: list[float], mode: str
) -> DriftResult:
    if mode == "exact":
        return evaluate_rows(baseline, rows, FEATURES, CONFIG, predictions)
    captured = [
        {"ts": 0, "model": "m", "version": "1", "inputs": r, "prediction": p}
        for r, p in zip(rows, predictions, strict=True)
    ]
    sketch = build_sketch(SketchPlan.from_baseline(baseline), captured)
    return evaluate_sketch(baseline, sketch, CONFIG, FEATURES)


def false_alarms(windows: int, sizes: list[int]) -> dict[str, dict[int, dict[str, float]]]:
    out: dict[str, dict[int, dict[str, float]]] = {"sketch": {}, "exact": {}}
    for size in sizes:
        modes = ["sketch", "exact"] if size <= CONFIG.small_sample_rows else ["sketch"]
        counts = {mode: dict.fromkeys(TYPES, 0) for mode in modes}
        for window in range(windows):
            columns = generate(size, conditions_for_month(0), seed=20_000 + window * 7 + size)
            rows, predictions = rows_of(columns)
            for mode in modes:
                for f in judge(baseline_for(window), rows, predictions, mode).features:
                    counts[mode][f.name] += f.drifted
        for mode in modes:
            out[mode][size] = {name: c / windows for name, c in counts[mode].items()}
    return out


def detection(windows: int, sizes: list[int]) -> dict[str, dict[int, float]]:
    out: dict[str, dict[int, float]] = {}
    for knob, (conditions, names) in KNOBS.items():
        out[knob] = {}
        for size in sizes:
            mode = "exact" if size <= CONFIG.small_sample_rows else "sketch"
            caught = 0
            for window in range(windows):
                rows, predictions = rows_of(generate(size, conditions, seed=30_000 + window))
                result = judge(baseline_for(window), rows, predictions, mode)
                caught += set(result.drifted_features) >= set(names)
            out[knob][size] = caught / windows
    return out


def extreme_rows(windows: int) -> dict[str, Any]:
    flagged = dict.fromkeys(TYPES, 0)
    dataset = 0
    for window in range(windows):
        columns = generate(5000, conditions_for_month(0), seed=40_000 + window)
        rows, predictions = rows_of(columns)
        for row in rows[:EXTREME_ROWS]:
            row.update({f.name: f.max for f in FEATURES if f.max is not None})
        result = judge(baseline_for(window), rows, predictions, "sketch")
        dataset += result.dataset_drift
        for name in result.drifted_features:
            flagged[name] += 1
    return {
        "flagged": {name: count / windows for name, count in flagged.items()},
        "dataset_drift": dataset / windows,
    }


def run(windows: int, detection_windows: int, sizes: list[int]) -> dict[str, Any]:
    started = time.perf_counter()
    rates = false_alarms(windows, sizes)
    by_type = {
        mode: {
            size: {
                kind: max(rate for name, rate in per.items() if TYPES[name] == kind)
                for kind in ("continuous", "discrete", "categorical")
            }
            for size, per in cells.items()
        }
        for mode, cells in rates.items()
    }
    caught = detection(detection_windows, sizes)
    extremes = extreme_rows(detection_windows)
    worst = max(r for cells in rates.values() for per in cells.values() for r in per.values())
    weakest = min(share for per in caught.values() for share in per.values())
    return {
        "false_alarms": rates,
        "by_type": by_type,
        "detection": caught,
        "extreme_rows": extremes,
        "worst_false_alarm": worst,
        "weakest_detection": weakest,
        "targets": TARGETS,
        "targets_met": {
            "false_alarm_per_feature": worst <= TARGETS["false_alarm_per_feature"],
            "detection_per_knob": weakest >= TARGETS["detection_per_knob"],
            "extreme_rows_dataset_drift": extremes["dataset_drift"]
            <= TARGETS["extreme_rows_dataset_drift"],
        },
        "windows": windows,
        "detection_windows": detection_windows,
        "sizes": sizes,
        "baseline_rows": BASELINE_ROWS,
        "seconds": round(time.perf_counter() - started, 1),
    }


def print_table(summary: dict[str, Any]) -> None:
    rates = summary["false_alarms"]
    cells = [(mode, size) for mode in ("sketch", "exact") for size in rates[mode]]
    print(f"False alarms on unchanged windows ({summary['windows']} windows per cell)")
    print("feature".ljust(32) + "".join(f"{mode} {size}".rjust(13) for mode, size in cells))
    for name, kind in TYPES.items():
        label = f"{name} ({kind})".ljust(32)
        print(label + "".join(f"{rates[mode][size][name]:>13.1%}" for mode, size in cells))
    print(f"\nDetection, evaluator's path ({summary['detection_windows']} windows per cell)")
    for knob, per in summary["detection"].items():
        print(knob.ljust(32) + "".join(f"{size:>7}: {share:5.0%}" for size, share in per.items()))
    extremes = summary["extreme_rows"]
    flagged = {name: share for name, share in extremes["flagged"].items() if share}
    print(
        f"\n{EXTREME_ROWS} rows at every declared maximum in 5,000 unchanged rows: dataset drift "
        f"in {extremes['dataset_drift']:.0%} of windows; features flagged: {flagged or 'none'}"
    )
    met = summary["targets_met"]
    print(f"\ntargets {summary['targets']}\nmet     {met}   ({summary['seconds']} s)")


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print only one JSON object")
    parser.add_argument("--windows", type=int, default=200, help="unchanged windows per cell")
    parser.add_argument("--detection-windows", type=int, default=40, help="per knob and size")
    parser.add_argument("--sizes", type=int, nargs="+", default=[200, 1000, 5000])
    args = parser.parse_args()
    summary = run(args.windows, args.detection_windows, args.sizes)
    if args.json:
        print(json.dumps(summary))
    else:
        print_table(summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
