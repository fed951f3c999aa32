"""Drift sketches bin live rows exactly as the baseline binned training data, and merge exactly:
the merge of sketches of any split of the rows is the sketch of all the rows."""

from __future__ import annotations

import itertools
import json
import math
from fractions import Fraction
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlops.domain.baseline import bin_counts, build_baseline
from mlops.domain.schema import Feature
from mlops.domain.sketch import (
    CategoricalSketch,
    IncompatibleSketchError,
    NumericSketch,
    Sketch,
    SketchError,
    SketchPlan,
    baseline_fingerprint,
    build_sketch,
    merge,
    merge_all,
)

FEATURES = (
    Feature("sqft", "numeric"),
    Feature("bedrooms", "numeric"),
    Feature("location", "categorical"),
)


def make_baseline(task: str = "regression", seed: int = 0) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    n = 2000
    columns = {
        "sqft": rng.normal(1800, 400, n).round(1),
        "bedrooms": rng.integers(1, 6, n).astype(float),  # discrete: deduplicated edges
        "location": rng.choice(np.array(["downtown", "riverside", "suburbs"], dtype=object), n),
    }
    predictions = rng.normal(400_000, 80_000, n) if task == "regression" else rng.integers(0, 2, n)
    # Round-trip through JSON, as the logger reads baseline.json from S3.
    document: dict[str, Any] = json.loads(
        json.dumps(build_baseline(FEATURES, columns, predictions, task=task, metrics={}, bins=20))
    )
    return document


BASELINE = make_baseline()
CLASSIFIER_BASELINE = make_baseline("classification")
PLAN = SketchPlan.from_baseline(BASELINE)
SQFT_EDGES: list[float] = BASELINE["numeric"]["sqft"]["edges"]
PRICE_EDGES: list[float] = BASELINE["prediction"]["edges"]


def row(inputs: dict[str, Any] | None, prediction: Any = 400_000.0, ts: int = 1) -> dict[str, Any]:
    """A row as capture.capture_rows returns it."""
    out = {
        "prediction_id": "p",
        "request_id": "r",
        "ts": ts,
        "model": "house-prices",
        "version": "3",
        "variant": None,
        "inputs": inputs,
        "prediction": prediction,
    }
    if inputs is None:
        out["truncated"] = True
    return out


def sketch(rows: list[dict[str, Any]], baseline: Any = PLAN) -> Sketch:
    return build_sketch(baseline, rows, model="house-prices", version="3")


# --- binning ----------------------------------------------------------------------------------


def test_a_value_on_an_edge_goes_to_the_upper_bin_as_in_the_baseline() -> None:
    # Given values exactly on every edge, between edges and beyond both ends
    edges = SQFT_EDGES
    values = [
        *edges,
        edges[0] - 1e6,
        edges[-1] + 1e6,
        *((a + b) / 2 for a, b in itertools.pairwise(edges)),
    ]
    # When they are sketched
    result = sketch([row({"sqft": v}) for v in values])
    # Then the counts are exactly baseline.bin_counts on the same values
    assert result.numeric["sqft"].counts == bin_counts(np.array(values), edges)
    # And an edge value went up: bin 0 holds only the value below edges[0]
    assert result.numeric["sqft"].counts[0] == 1
    assert len(result.numeric["sqft"].counts) == len(edges) + 1


def test_predictions_are_binned_on_the_baseline_prediction_edges() -> None:
    values = [*PRICE_EDGES, 0.0, 1e9]
    result = sketch([row({}, prediction=v) for v in values])
    assert isinstance(result.prediction, NumericSketch)
    assert result.prediction.counts == bin_counts(np.array(values), PRICE_EDGES)


def test_missing_values_and_unseen_categories_are_counted() -> None:
    # Given rows with absent, null, non-finite and ill-typed values and a new location
    rows = [
        row({"sqft": 1500.0, "bedrooms": 3, "location": "riverside"}),
        row({"sqft": None, "location": "harbor"}),  # bedrooms absent
        row({"sqft": float("nan"), "bedrooms": True, "location": None}),
        row({"sqft": float("inf"), "bedrooms": "3", "location": ""}),
        row({"sqft": 2000, "bedrooms": 2.0, "location": "harbor"}),
    ]
    # When they are sketched
    result = sketch(rows)
    # Then each missing value is counted once and only finite numbers are binned
    sqft, bedrooms, location = (
        result.numeric["sqft"],
        result.numeric["bedrooms"],
        result.categorical["location"],
    )
    assert (sqft.count, sqft.missing, sum(sqft.counts)) == (2, 3, 2)
    assert (bedrooms.count, bedrooms.missing) == (2, 3)
    assert location == CategoricalSketch(counts={"harbor": 2, "riverside": 1}, unseen=2, missing=2)
    assert result.rows == 5


def test_numeric_summaries_agree_with_numpy() -> None:
    values = np.random.default_rng(3).normal(1800, 400, 1000)
    result = sketch([row({"sqft": float(v)}) for v in values]).numeric["sqft"]
    assert (result.min, result.max) == (values.min(), values.max())
    assert result.sum == math.fsum(values)  # correctly rounded, like fsum
    assert result.mean == pytest.approx(values.mean(), rel=1e-15)


def test_the_sum_is_exact_where_float_addition_is_not() -> None:
    # 1e16 + 1.0 rounds to 1e16 in float64, so a running float sum would say 0.0.
    result = sketch([row({"sqft": v}) for v in (1e16, 1.0, -1e16)]).numeric["sqft"]
    assert result.sum == 1.0


def test_classification_predictions_are_counted_per_class() -> None:
    # Given an integer-labelled classifier (the baseline keys its classes as text)
    rows = [row({}, prediction=p) for p in (0, 1, 1, 2, None)]
    # When sketched
    result = sketch(rows, baseline=CLASSIFIER_BASELINE)
    # Then classes are counted as the baseline names them; 2 was never predicted in training
    assert result.prediction == CategoricalSketch(
        counts={"0": 1, "1": 2, "2": 1}, unseen=1, missing=1
    )


def test_truncated_rows_count_as_predictions_but_not_as_missing_inputs() -> None:
    result = sketch([row({"sqft": 1500.0}), row(None, prediction=1.0)])
    assert (result.rows, result.truncated) == (2, 1)
    assert result.numeric["sqft"].count + result.numeric["sqft"].missing == 1
    assert isinstance(result.prediction, NumericSketch)
    assert sum(result.prediction.counts) == 2


def test_a_plan_and_the_baseline_document_give_the_same_sketch() -> None:
    rows = [row({"sqft": 1500.0, "location": "downtown"})]
    assert sketch(rows, baseline=BASELINE) == sketch(rows, baseline=PLAN)


# --- merging ----------------------------------------------------------------------------------

numbers = st.one_of(
    st.sampled_from(SQFT_EDGES),  # exactly on an edge
    st.sampled_from([1.0, 2.0, 3.0, 4.0, 5.0, 6.0]),  # bedrooms edges and beyond
    st.floats(allow_nan=True, allow_infinity=True),  # subnormals, -0.0, 1e308 …
    st.integers(-(10**6), 10**6),
    st.none(),
    st.sampled_from(["12", True]),  # ill-typed: missing
)
locations = st.one_of(
    st.sampled_from(["downtown", "riverside", "suburbs", "harbor", "airport", ""]),
    st.none(),
)
inputs = st.one_of(
    st.none(),  # a truncated row
    st.fixed_dictionaries(
        {}, optional={"sqft": numbers, "bedrooms": numbers, "location": locations}
    ),
)
rows_strategy = st.lists(
    st.builds(
        row, inputs, st.one_of(st.sampled_from(PRICE_EDGES), numbers), st.integers(0, 10**13)
    ),
    max_size=40,
)


@settings(derandomize=True, deadline=None, max_examples=150)
@given(rows=rows_strategy, data=st.data())
def test_merging_sketches_of_any_split_equals_the_sketch_of_all_rows(
    rows: list[dict[str, Any]], data: st.DataObject
) -> None:
    # Given the rows cut into k consecutive parts, sketched one by one, in any order
    cuts = sorted(data.draw(st.lists(st.integers(0, len(rows)), max_size=6)))
    bounds = [0, *cuts, len(rows)]
    parts = [sketch(rows[a:b]) for a, b in itertools.pairwise(bounds)]
    parts = data.draw(st.permutations(parts))
    # When they are merged, all at once and pairwise
    merged = merge_all(parts)
    pairwise = parts[0]
    for part in parts[1:]:
        pairwise = merge(pairwise, part)
    # Then both equal the sketch of all rows, exactly, and survive a JSON round trip
    whole = sketch(rows)
    assert merged == whole
    assert pairwise == whole
    assert Sketch.from_dict(json.loads(json.dumps(merged.to_dict()))) == whole
    assert json.dumps(merged.to_dict()) == json.dumps(whole.to_dict())


@settings(derandomize=True, deadline=None, max_examples=150)
@given(values=st.lists(st.floats(allow_nan=False, allow_infinity=False), max_size=30))
def test_the_exact_sum_is_the_rational_sum_of_the_values(values: list[float]) -> None:
    result = sketch([row({"sqft": v}) for v in values]).numeric["sqft"]
    exact = sum((Fraction(v) for v in values), Fraction(0))
    assert Fraction(result.exact_sum, 2**1126) == exact


def test_a_sketch_of_no_rows_is_neutral_in_a_merge() -> None:
    rows = [row({"sqft": 1500.0, "location": "harbor"}, ts=5)]
    assert merge(sketch([]), sketch(rows)) == sketch(rows)
    assert sketch([]).first_ts is None
    with pytest.raises(ValueError, match="model= and version="):
        build_sketch(PLAN, [])


def test_merging_sketches_of_different_versions_is_refused() -> None:
    v3 = sketch([row({"sqft": 1500.0})])
    v4 = build_sketch(PLAN, [], model="house-prices", version="4")
    with pytest.raises(IncompatibleSketchError, match="v4 with one of house-prices v3"):
        merge(v3, v4)


def test_merging_sketches_made_on_different_baselines_is_refused() -> None:
    other = make_baseline(seed=1)
    assert baseline_fingerprint(other) != PLAN.fingerprint
    with pytest.raises(IncompatibleSketchError, match="different baselines"):
        merge(sketch([]), sketch([], baseline=other))


def test_rows_of_another_version_are_refused_when_building() -> None:
    rows = [row({}), {**row({}), "version": "4"}]
    with pytest.raises(IncompatibleSketchError, match="house-prices v4"):
        build_sketch(PLAN, rows)


def test_model_and_version_default_to_the_rows() -> None:
    result = build_sketch(BASELINE, [row({}, ts=7), row({}, ts=3)])
    assert (result.model, result.version, result.first_ts, result.last_ts) == (
        "house-prices",
        "3",
        3,
        7,
    )


# --- documents --------------------------------------------------------------------------------


def test_a_sketch_round_trips_through_json() -> None:
    original = sketch(
        [
            row({"sqft": 0.1, "bedrooms": 3, "location": "harbor"}, ts=9),
            row({"sqft": -2.5e-310, "location": None}),
            row(None, prediction=float("nan")),
        ]
    )
    document = json.loads(json.dumps(original.to_dict(), allow_nan=False))
    assert Sketch.from_dict(document) == original
    assert float.fromhex(document["numeric"]["sqft"]["sum"]) == original.numeric["sqft"].sum
    assert document["prediction"]["type"] == "numeric"


@pytest.mark.parametrize(
    "damage",
    [
        {"schema": 2},
        {"rows": -1},
        {"rows": True},
        {"model": 3},
        {"prediction": {"type": "other"}},
        {
            "numeric": {
                "sqft": {"counts": [1], "missing": 0, "count": 1, "sum": "1.5", "min": 1, "max": 1}
            }
        },
        {"categorical": {"location": {"counts": [], "unseen": 0, "missing": 0}}},
    ],
)
def test_a_damaged_document_is_refused(damage: dict[str, Any]) -> None:
    document = sketch([row({"sqft": 1.0})]).to_dict() | damage
    with pytest.raises(SketchError):
        Sketch.from_dict(document)


def test_a_document_with_other_bins_is_refused_in_a_merge() -> None:
    good = sketch([row({"sqft": 1.0})])
    document = good.to_dict()
    document["numeric"]["sqft"]["counts"] = [0, 1]
    with pytest.raises(IncompatibleSketchError, match="differ in features or bins"):
        merge(good, Sketch.from_dict(document))
