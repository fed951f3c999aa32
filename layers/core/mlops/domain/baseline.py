"""Training statistics that drift evaluation compares live traffic with (``baseline.json``).

Numeric features get quantile bin edges with training counts; live values are later binned on
the same edges, so drift needs only counts. Bins are open-ended: bin 0 is ``x < edges[0]``,
bin i is ``edges[i-1] <= x < edges[i]`` and the last bin is ``x >= edges[-1]``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from mlops.domain.schema import Feature

SCHEMA_VERSION = 1


def quantile_edges(values: npt.NDArray[np.float64], bins: int) -> list[float]:
    """Interior edges at the 1/bins .. (bins-1)/bins quantiles, deduplicated for discrete data."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return []
    edges = np.quantile(finite, np.linspace(0, 1, bins + 1)[1:-1])
    return [float(e) for e in np.unique(edges)]


def bin_counts(values: npt.NDArray[np.float64], edges: list[float]) -> list[int]:
    """Counts of finite ``values`` per open-ended bin on ``edges`` (len(edges) + 1 bins)."""
    finite = values[np.isfinite(values)]
    index = np.searchsorted(np.asarray(edges, dtype=np.float64), finite, side="right")
    return [int(c) for c in np.bincount(index, minlength=len(edges) + 1)]


def numeric_summary(values: npt.NDArray[Any], bins: int) -> dict[str, Any]:
    values = np.asarray(values, dtype=np.float64)
    finite = values[np.isfinite(values)]
    edges = quantile_edges(finite, bins)
    empty = finite.size == 0
    return {
        "edges": edges,
        "counts": bin_counts(finite, edges),
        "count": int(finite.size),
        "mean": None if empty else float(finite.mean()),
        "std": None if empty else float(finite.std()),
        "min": None if empty else float(finite.min()),
        "max": None if empty else float(finite.max()),
        "missing_rate": (values.size - finite.size) / values.size if values.size else 0.0,
    }


def categorical_summary(values: npt.NDArray[Any]) -> dict[str, Any]:
    present = [str(v) for v in values if v is not None and str(v) != ""]
    counts = Counter(present)
    total = len(present)
    return {
        "counts": dict(sorted(counts.items())),
        "frequencies": {k: v / total for k, v in sorted(counts.items())} if total else {},
        "count": total,
        "missing_rate": (len(values) - total) / len(values) if len(values) else 0.0,
    }


def build_baseline(
    features: tuple[Feature, ...],
    columns: Mapping[str, npt.NDArray[Any]],
    predictions: npt.NDArray[Any],
    *,
    task: str,
    metrics: Mapping[str, float],
    bins: int = 20,
) -> dict[str, Any]:
    """The whole ``baseline.json`` document for one model version."""
    numeric = {
        f.name: numeric_summary(columns[f.name], bins) for f in features if f.type == "numeric"
    }
    categorical = {
        f.name: categorical_summary(columns[f.name]) for f in features if f.type == "categorical"
    }
    prediction = (
        numeric_summary(np.asarray(predictions, dtype=np.float64), bins)
        if task == "regression"
        else categorical_summary(np.asarray(predictions, dtype=object))
    )
    rows = len(next(iter(columns.values()))) if columns else 0
    return {
        "schema_version": SCHEMA_VERSION,
        "rows": rows,
        "bins": bins,
        "bin_rule": "bin 0: x < edges[0]; bin i: edges[i-1] <= x < edges[i]; last: x >= edges[-1]",
        "numeric": numeric,
        "categorical": categorical,
        "prediction": prediction,
        "metrics": dict(metrics),
    }
