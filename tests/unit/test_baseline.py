"""baseline.json statistics agree with an independent numpy computation."""

from __future__ import annotations

import numpy as np

from mlops.domain.baseline import bin_counts, build_baseline, quantile_edges
from mlops.domain.schema import Feature


def test_quantile_bins_hold_equal_shares_and_match_numpy_histogram() -> None:
    values = np.random.default_rng(0).lognormal(7, 0.4, 10_000)
    edges = quantile_edges(values, 20)
    counts = bin_counts(values, edges)
    assert len(edges) == 19
    assert len(counts) == 20
    assert sum(counts) == values.size
    assert max(counts) - min(counts) <= 2  # quantile bins: ~500 each
    # Independent: numpy's histogram on the same interior edges with infinite ends.
    expected, _ = np.histogram(values, bins=[-np.inf, *edges, np.inf])
    # numpy's bins are [a, b) like ours, except the last is closed; no value equals +inf.
    assert counts == expected.tolist()


def test_discrete_features_get_deduplicated_edges() -> None:
    bedrooms = np.random.default_rng(0).integers(1, 6, 1000).astype(float)
    edges = quantile_edges(bedrooms, 20)
    assert edges == sorted(set(edges))
    assert len(edges) <= 5
    assert sum(bin_counts(bedrooms, edges)) == 1000


def test_values_outside_the_training_range_land_in_the_open_end_bins() -> None:
    edges = [1.0, 2.0, 3.0]
    assert bin_counts(np.array([-100.0, 1.0, 2.5, 3.0, 1e9]), edges) == [1, 1, 1, 0 + 2]


def test_build_baseline_describes_every_feature_and_the_predictions() -> None:
    rng = np.random.default_rng(1)
    columns = {
        "x": np.append(rng.normal(10, 2, 999), np.nan),
        "c": np.array(["a"] * 600 + ["b"] * 400, dtype=object),
    }
    doc = build_baseline(
        (Feature("x", "numeric"), Feature("c", "categorical")),
        columns,
        predictions=rng.normal(0, 1, 1000),
        task="regression",
        metrics={"rmse": 1.5},
        bins=20,
    )
    x = doc["numeric"]["x"]
    finite = columns["x"][:-1]
    assert x["missing_rate"] == 0.001
    assert np.isclose(x["mean"], finite.mean())
    assert np.isclose(x["std"], finite.std())
    assert (x["min"], x["max"]) == (finite.min(), finite.max())
    assert sum(x["counts"]) == 999
    assert doc["categorical"]["c"]["frequencies"] == {"a": 0.6, "b": 0.4}
    assert sum(doc["prediction"]["counts"]) == 1000
    assert doc["metrics"] == {"rmse": 1.5}
    assert doc["rows"] == 1000
