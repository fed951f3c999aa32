"""The verdict on one column of a window (a feature, or the prediction) against its baseline.

Rules (DESIGN §5, ``DriftConfig``). Everything is computed on the baseline's bins (numeric:
its quantile edges; categorical: its categories plus one bucket for the unseen ones), so raw
rows and the logger's sketch of them get the same verdict.

- Numeric feature: drifts on PSI over the bins (>= ``psi_threshold``; a warning from
  ``psi_warn``) when Pearson's chi-square test on the same bins rejects at ``ks_pvalue``; OR on
  the robust distance (>= ``wasserstein_threshold``) when KS on the CDFs at the edges rejects
  at ``ks_pvalue``. The robust distance is W1 between the two distributions winsorised at the
  baseline's outermost edges (its 1/bins and 1 - 1/bins quantiles), over the training std;
  the untrimmed W1 is reported beside it (``wasserstein_untrimmed``). With fewer than two
  edges (one value holds most rows: a rare flag) the distance is the shift of the mean over
  the std, tested with a z-test.
- Categorical feature: drifts on the Jensen-Shannon distance (base 2; >= ``js_threshold``)
  when the chi-square test on the same counts rejects at ``ks_pvalue``, OR on the share of
  values never seen in training (>= ``unseen_threshold``).
- Any feature drifts when its missing rate rises by ``missing_rate_threshold`` or more.
- The prediction is judged the same way (regression numeric, classification categorical); it
  is reported, not counted in the drift share.

Why these, measured on the shipped market (``benchmarks/drift_false_alarms.py``: windows of
200, 1,000 and 5,000 unchanged month-0 rows against 3,200-row month-0 baselines):

- A floor a handful of rows cannot pass. W1 and the mean difference weigh a value by how far
  it lies: one row k std out moves them by k/n std, so 10-20 rows at a declared maximum
  (``lot_size`` 500,000 is ~50 std out) in 5,000 flagged a feature, and 50 rows at every
  maximum flagged 6 of 9 (dataset drift in 95 % of windows). Winsorised at the outer edges, a
  row moves the distance by at most ``(edges[-1] - edges[0]) / (n std)``, ~3.3 / n for a
  normal feature: reaching 0.1 takes ~3 % of the rows moved across the whole central range,
  the "minimum share of rows that must have moved" built into the statistic. A shift of the
  whole distribution still reads ~0.9 of its size in std (0.44 for 0.5). The tails are not
  ignored: mass moving into or out of them counts, in the distance and in PSI; only how far
  beyond the edges it lies does not. Winsorising at fixed baseline points is exact on bins;
  trimming each side at its own quantiles would need positions a sketch does not keep.
- Evidence behind every bar. A bar alone is not size-aware: its sampling noise falls as 1/n.
  At 200 rows W1 noise is ~0.1 std (23 % of unchanged features over the bar, measured when
  W1 decided alone), PSI on 20 bins ~0.1, and JS over 20 equally common categories passes
  0.1 in 96 % of unchanged windows.
  So a statistic counts only when the test of the same counts says the change is more than
  noise at this size (the baseline sized as a second sample). At 5,000 rows and above a
  change that passes a bar has p ~ 0, so large windows judge as before, and there is no jump
  in behaviour at ``small_sample_rows``, which now only decides where the rows are read.
- Tests only where the baseline is known. It holds bin counts, so its distribution between
  two edges is unknown. KS at the edges and chi-square on the bins are valid whatever the
  data's granularity (ties only make KS conservative); for a feature with few distinct
  values the quantile edges collapse onto the values, so PSI and chi-square are PSI and
  chi-square on the value counts. Testing raw values against a shape assumed inside the bins
  (KS on a piecewise-linear CDF, the former exact mode) flagged 19 % of unchanged 1,000-row
  windows of whole years, 12 % of rates in 0.01 steps and 6 % of ``sqft``.

Result, per feature, 200 windows per cell, both paths: at most 4.0 % of unchanged windows
flagged at 200 rows (3.9 % over 1,000 windows), 0.5 % at 1,000 and none at 5,000; every knob
of the market (bigger homes, a new district, higher rates, another buyer mix, month 6) is
caught in every window at each size; 50 rows at every declared maximum in 5,000 flag nothing.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from mlops.domain.config import DriftConfig
from mlops.domain.drift_statistics import (
    FloatArray,
    chi_square_test,
    js_distance,
    kolmogorov_pvalue,
    ks_binned,
    psi,
    wasserstein_binned,
    wasserstein_winsorised,
)
from mlops.domain.sketch import IncompatibleSketchError
from mlops.domain.sketch_columns import CategoricalSketch, NumericSketch

MIN_STD = 1e-3  # floor of the Wasserstein normaliser, as Evidently (a constant feature)
TOP_CATEGORIES = 20  # categories drawn in a report's histogram; the rest is "other"
UNSEEN = "<unseen>"  # the bucket of categories never seen in training, in JS distance


@dataclass(frozen=True)
class FeatureDrift:
    """The verdict on one column: its statistics, the bars they were held to, and why.

    ``reference_rows``/``current_rows`` count non-missing values; ``statistics`` values are
    None when a side has no values. ``thresholds["significance"]`` is the p-value under which
    a change counts as more than sampling noise. ``warning`` is PSI between ``psi_warn`` and
    ``psi_threshold`` (with that evidence). ``judged`` is False for a feature whose verdict
    does not count (a window under ``min_rows``; a feature the baseline lacks, why in
    ``note``); ``note`` otherwise says where the usual tests did not apply.
    """

    name: str
    type: str  # "numeric" | "categorical"
    test: str  # "psi+wasserstein" | "js+unseen" | "not judged"
    statistics: dict[str, float | None]
    thresholds: dict[str, float]
    drifted: bool
    warning: bool
    reasons: tuple[str, ...]
    reference_rows: int
    current_rows: int
    missing_rate: dict[str, float]
    histogram: dict[str, Any]
    note: str = ""
    judged: bool = True

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type,
            "test": self.test,
            "judged": self.judged,
            "statistics": dict(self.statistics),
            "thresholds": dict(self.thresholds),
            "drifted": self.drifted,
            "warning": self.warning,
            "reasons": list(self.reasons),
            "reference_rows": self.reference_rows,
            "current_rows": self.current_rows,
            "missing_rate": dict(self.missing_rate),
            "histogram": dict(self.histogram),
            "note": self.note,
        }


def numeric_drift(
    name: str,
    summary: Mapping[str, Any],
    column: NumericSketch,
    config: DriftConfig,
) -> FeatureDrift:
    edges = np.asarray(summary["edges"], dtype=np.float64)
    ref_counts = np.asarray(summary["counts"], dtype=np.float64)
    if ref_counts.size != edges.size + 1 or len(column.counts) != edges.size + 1:
        raise IncompatibleSketchError(
            f"{name}: counts do not match the baseline's {edges.size} edges"
        )
    cur_counts = np.asarray(column.counts, dtype=np.float64)
    n_ref, n_cur = int(ref_counts.sum()), column.count
    missing = _missing_rates(summary, column.missing, column.count)
    lo = _bound(min, summary.get("min"), column.min, edges)
    hi = _bound(max, summary.get("max"), column.max, edges)
    degenerate = edges.size < 2  # no interior to winsorise to, no CDF to test
    statistics: dict[str, float | None] = {
        "psi": None,
        "chi2_pvalue": None,
        "wasserstein": None,
        "wasserstein_untrimmed": None,
        "ks_statistic": None,
        "ks_pvalue": None,
    }
    thresholds = {
        "psi": config.psi_threshold,
        "psi_warn": config.psi_warn,
        "wasserstein": config.wasserstein_threshold,
        "significance": config.ks_pvalue,
    }
    reasons: list[str] = []
    warning = False
    if n_ref > 0 and n_cur > 0:
        value = psi(ref_counts, cur_counts)
        _, _, bins_p = chi_square_test(ref_counts, cur_counts)
        std = max(float(summary.get("std") or 0.0), MIN_STD)
        untrimmed = (
            wasserstein_binned(
                edges,
                ref_counts,
                cur_counts,
                (float(summary["min"]), float(summary["max"])),
                (float(column.min or 0.0), float(column.max or 0.0)),
                means=(float(summary["mean"]), float(column.mean or 0.0)),
            )
            / std
        )
        ks_statistic = ks_binned(ref_counts, cur_counts)
        # The baseline is itself a sample of n_ref rows: size the tests as two-sample.
        ks_p = kolmogorov_pvalue(ks_statistic, n_cur * n_ref / (n_cur + n_ref))
        if degenerate:  # one value holds most rows: the means say what the bins cannot
            distance = abs(float(summary["mean"]) - float(column.mean or 0.0)) / std
            distance_p = math.erfc(distance / math.sqrt(2.0 / n_ref + 2.0 / n_cur))
            statistics["mean_pvalue"] = distance_p
        else:
            distance = wasserstein_winsorised(edges, ref_counts, cur_counts) / std
            distance_p = ks_p
        statistics |= {
            "psi": value,
            "chi2_pvalue": bins_p,
            "wasserstein": distance,
            "wasserstein_untrimmed": untrimmed,
            "ks_statistic": ks_statistic,
            "ks_pvalue": ks_p,
        }
        bins_moved = bins_p < config.ks_pvalue
        warning = bins_moved and config.psi_warn <= value < config.psi_threshold
        if bins_moved and value >= config.psi_threshold:
            reasons.append(
                f"PSI {value:.3f} >= {config.psi_threshold:g} "
                f"(chi-square p-value {bins_p:.2g} < {config.ks_pvalue:g})"
            )
        if distance >= config.wasserstein_threshold and distance_p < config.ks_pvalue:
            what = "the mean's shift" if degenerate else "W1 winsorised at the outer edges"
            test = "z-test" if degenerate else "KS"
            reasons.append(
                f"normalised Wasserstein {distance:.3f} >= {config.wasserstein_threshold:g} "
                f"({what} over the training std; {test} p-value {distance_p:.2g} "
                f"< {config.ks_pvalue:g})"
            )
    histogram = {
        "edges": [float(e) for e in edges],
        "reference": _share_list(ref_counts),
        "current": _share_list(cur_counts),
        "bounds": [lo, hi],
    }
    note = ""
    if degenerate:
        note = (
            "fewer than two baseline edges (one value holds most rows): the distance is the "
            "shift of the mean over the training std, tested with a z-test"
        )
    found = _Found(statistics, thresholds, reasons, (n_ref, n_cur))
    return _verdict(
        name, "numeric", config, missing, found, histogram=histogram, warning=warning, note=note
    )


def categorical_drift(
    name: str, summary: Mapping[str, Any], column: CategoricalSketch, config: DriftConfig
) -> FeatureDrift:
    known: Mapping[str, int] = summary["counts"]
    categories = list(known)
    ref_counts = np.asarray([*(known[c] for c in categories), 0], dtype=np.float64)
    cur_counts = np.asarray(
        [*(column.counts.get(c, 0) for c in categories), column.unseen], dtype=np.float64
    )
    n_ref, n_cur = int(ref_counts.sum()), int(cur_counts.sum())
    missing = _missing_rates(summary, column.missing, n_cur)
    statistics: dict[str, float | None] = {
        "js_distance": None,
        "chi2_pvalue": None,
        "unseen_share": None,
    }
    thresholds = {
        "js_distance": config.js_threshold,
        "unseen_share": config.unseen_threshold,
        "significance": config.ks_pvalue,
    }
    reasons: list[str] = []
    if n_cur > 0:
        unseen = column.unseen / n_cur
        statistics["unseen_share"] = unseen
        if n_ref > 0:
            distance = js_distance(ref_counts, cur_counts)
            _, _, p_value = chi_square_test(ref_counts, cur_counts)
            statistics |= {"js_distance": distance, "chi2_pvalue": p_value}
            if distance >= config.js_threshold and p_value < config.ks_pvalue:
                reasons.append(
                    f"Jensen-Shannon distance {distance:.3f} >= {config.js_threshold:g} "
                    f"(chi-square p-value {p_value:.2g} < {config.ks_pvalue:g})"
                )
        if unseen >= config.unseen_threshold:
            reasons.append(
                f"{unseen:.1%} of values are categories unseen in training "
                f"(>= {config.unseen_threshold:.1%})"
            )
    histogram = _category_histogram(
        known, {**column.counts, **column.unseen_top}, unnamed=column.unseen_other
    )
    found = _Found(statistics, thresholds, reasons, (n_ref, n_cur))
    return _verdict(name, "categorical", config, missing, found, histogram=histogram)


class _Found(NamedTuple):
    """What a kind's rules found on a column: its statistics, the bars they were held to, the
    reasons it drifted, and how many values the reference and the current side have."""

    statistics: dict[str, float | None]
    thresholds: dict[str, float]
    reasons: list[str]
    rows: tuple[int, int]


def _verdict(
    name: str,
    kind: str,
    config: DriftConfig,
    missing: dict[str, float],
    found: _Found,
    *,
    histogram: dict[str, Any],
    warning: bool = False,
    note: str = "",
) -> FeatureDrift:
    """The column's verdict on what its kind's rules found, after the rule every kind shares:
    a rise of the missing rate."""
    statistics, thresholds, reasons, rows = found
    reasons = reasons + _missing_reason(missing, config, statistics, thresholds)
    return FeatureDrift(
        name=name,
        type=kind,
        test="psi+wasserstein" if kind == "numeric" else "js+unseen",
        statistics=statistics,
        thresholds=thresholds,
        drifted=bool(reasons),
        warning=warning,
        reasons=tuple(reasons),
        reference_rows=rows[0],
        current_rows=rows[1],
        missing_rate=missing,
        histogram=histogram,
        note=note,
    )


def _category_histogram(
    reference: Mapping[str, int], current: Mapping[str, int], unnamed: int = 0
) -> dict[str, Any]:
    """The ``TOP_CATEGORIES`` categories with the largest share on either side (new ones
    included), the rest as "other"; shares of each side's non-missing values. ``unnamed``:
    current values the sketch counted without their name (unseen ones beyond its K)."""
    ref_total = sum(reference.values()) or 1
    cur_total = (sum(current.values()) + unnamed) or 1
    every = set(reference) | set(current)
    weight = {c: max(reference.get(c, 0) / ref_total, current.get(c, 0) / cur_total) for c in every}
    top = sorted(every, key=lambda c: (-weight[c], c))[:TOP_CATEGORIES]
    ref_shares = [reference.get(c, 0) / ref_total for c in top]
    cur_shares = [current.get(c, 0) / cur_total for c in top]
    if len(every) > len(top) or unnamed:
        top.append("other")
        ref_shares.append(max(1.0 - sum(ref_shares), 0.0) if reference else 0.0)
        cur_shares.append(max(1.0 - sum(cur_shares), 0.0) if current or unnamed else 0.0)
    return {"categories": top, "reference": ref_shares, "current": cur_shares}


def _missing_rates(summary: Mapping[str, Any], missing: int, present: int) -> dict[str, float]:
    total = missing + present
    return {
        "reference": float(summary.get("missing_rate") or 0.0),
        "current": missing / total if total else 0.0,
    }


def _missing_reason(
    missing: Mapping[str, float],
    config: DriftConfig,
    statistics: dict[str, float | None],
    thresholds: dict[str, float],
) -> list[str]:
    change = missing["current"] - missing["reference"]
    statistics["missing_rate_change"] = change
    thresholds["missing_rate_change"] = config.missing_rate_threshold
    if change >= config.missing_rate_threshold:
        return [
            f"missing rate {missing['reference']:.1%} -> {missing['current']:.1%} "
            f"(+{change:.1%} >= {config.missing_rate_threshold:.1%})"
        ]
    return []


def _bound(
    pick: Callable[[float, float], float],
    train: float | None,
    live: float | None,
    edges: FloatArray,
) -> float:
    """An open end bin's closing point: the training extreme widened by the live one (never
    inside the edges)."""
    candidates = [float(v) for v in (train, live) if v is not None]
    if edges.size:
        candidates.append(float(edges[0] if pick is min else edges[-1]))
    return pick(*candidates) if len(candidates) > 1 else (candidates[0] if candidates else 0.0)


def _share_list(counts: FloatArray) -> list[float]:
    total = float(counts.sum())
    return [float(c) / total if total else 0.0 for c in counts]
