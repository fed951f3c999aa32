"""Drift sketches bin live rows exactly as the baseline binned training data, and merge exactly:
the merge of sketches of any split of the rows is the sketch of all the rows."""

from __future__ import annotations

import itertools
import json
import math
import sys
import tracemalloc
from fractions import Fraction
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlops.domain import exact_sum
from mlops.domain.baseline import bin_counts, build_baseline
from mlops.domain.config import DriftConfig
from mlops.domain.drift import evaluate_sketch
from mlops.domain.exact_sum import MAX_BITS
from mlops.domain.schema import Feature
from mlops.domain.sketch import (
    DEFAULT_MAX_UNSEEN,
    MAX_TIMESTAMP_MS,
    IncompatibleSketchError,
    Sketch,
    SketchError,
    SketchPlan,
    baseline_fingerprint,
    build_sketch,
)
from mlops.domain.sketch_columns import (
    MAX_CATEGORY_CHARS,
    MAX_COUNT,
    MAX_UNSEEN_LIMIT,
    CategoricalSketch,
    NumericSketch,
)
from mlops.domain.sketch_merge import merge, merge_all

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


def sketch(
    rows: list[dict[str, Any]], baseline: Any = PLAN, max_unseen: int = DEFAULT_MAX_UNSEEN
) -> Sketch:
    return build_sketch(baseline, rows, model="house-prices", version="3", max_unseen=max_unseen)


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
    assert location == CategoricalSketch(
        counts={"riverside": 1}, unseen_top={"harbor": 2}, unseen_other=0, missing=2
    )
    assert location.unseen == 2
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
        counts={"0": 1, "1": 2}, unseen_top={"2": 1}, missing=1
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
        {"schema": 1},  # written before unseen categories were bounded
        {"schema": 3},
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


# --- bounded size: the top K unseen categories, the rest as one count ---------------------------


def located(*values: Any) -> list[dict[str, Any]]:
    return [row({"location": v}) for v in values]


def test_exactly_k_unseen_categories_are_all_kept_by_name() -> None:
    # Given K = 3 and three categories never seen in training, plus a baseline one
    rows = located("a", "a", "b", "c", "downtown")
    # When sketched
    location = build_sketch(PLAN, rows, max_unseen=3).categorical["location"]
    # Then all three are named, nothing is folded
    assert location == CategoricalSketch(
        counts={"downtown": 1}, unseen_top={"a": 2, "b": 1, "c": 1}, unseen_other=0
    )


def test_one_unseen_category_past_k_is_folded_into_the_other_count() -> None:
    # Given K = 3 and four unseen categories: "d" and "c" tie on the smallest count
    rows = located("a", "a", "a", "b", "b", "c", "d", "downtown")
    location = build_sketch(PLAN, rows, max_unseen=3).categorical["location"]
    # Then the three most frequent are kept (ties by name), the fourth is counted as other
    assert location.unseen_top == {"a": 3, "b": 2, "c": 1}
    assert (location.unseen_other, location.unseen, location.counts) == (1, 7, {"downtown": 1})


def test_k_zero_keeps_no_unseen_name_and_every_unseen_value_counted() -> None:
    location = build_sketch(PLAN, located("a", "b", "b"), max_unseen=0).categorical["location"]
    assert (location.unseen_top, location.unseen_other, location.unseen) == ({}, 3, 3)


def test_an_unseen_value_is_cut_to_64_characters_before_it_is_counted() -> None:
    # Given a value of exactly 64 characters, and two longer ones sharing its first 64
    at_cap = "x" * MAX_CATEGORY_CHARS
    rows = located(at_cap, at_cap + "y", at_cap + "z" * 10_000)
    location = sketch(rows).categorical["location"]
    # Then the 64-character one is kept whole, and the longer ones count under their cut
    assert location.unseen_top == {at_cap: 3}
    # And one character shorter is a different value
    shorter = sketch(located(at_cap[:-1], at_cap)).categorical["location"]
    assert shorter.unseen_top == {at_cap[:-1]: 1, at_cap: 1}


def test_a_long_baseline_category_is_matched_whole_not_cut() -> None:
    # Given a baseline whose category is longer than the cap
    long_name = "district-" + "n" * 100
    plan = SketchPlan(
        fingerprint="f",
        numeric={},
        categorical={"location": frozenset({long_name})},
        prediction_edges=np.asarray([1.0]),
        prediction_classes=None,
    )
    location = sketch(located(long_name, long_name + "!"), baseline=plan).categorical["location"]
    # Then it is counted exactly under its name; a longer unseen value is cut
    assert location.counts == {long_name: 1}
    assert location.unseen_top == {(long_name + "!")[:MAX_CATEGORY_CHARS]: 1}


pool = st.sampled_from(["downtown", "riverside", *(f"new-{i}" for i in range(8)), None, ""])


@settings(derandomize=True, deadline=None, max_examples=150)
@given(values=st.lists(pool, max_size=60), data=st.data())
def test_merging_beyond_k_keeps_every_total_exact_and_bounds_each_kept_count(
    values: list[Any], data: st.DataObject
) -> None:
    # Given K = 2 and up to 8 unseen values, cut into batches sketched one by one
    rows = located(*values)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(rows)), max_size=6)))
    bounds = [0, *cuts, len(rows)]
    parts = [sketch(rows[a:b], max_unseen=2) for a, b in itertools.pairwise(bounds)]
    # When they are merged
    merged = merge_all(parts, max_unseen=2).categorical["location"]
    truth = sketch(rows, max_unseen=MAX_UNSEEN_LIMIT).categorical["location"]
    # Then baseline counts, the unseen total and missing values are exact
    assert (merged.counts, merged.unseen, merged.missing) == (
        truth.counts,
        truth.unseen,
        truth.missing,
    )
    # And at most K names are kept, each within [kept, kept + other] of its true count
    assert len(merged.unseen_top) <= 2
    for name, kept in merged.unseen_top.items():
        assert kept <= truth.unseen_top[name] <= kept + merged.unseen_other


def test_the_drift_statistics_do_not_depend_on_how_many_names_are_kept() -> None:
    # Given a window with many unseen locations, sketched with K = 1 and with every name
    rng = np.random.default_rng(5)
    names = np.array(["downtown", "riverside", "suburbs", *(f"lot-{i}" for i in range(40))])
    rows = located(*rng.choice(names, 3000).tolist())
    bounded = [build_sketch(PLAN, rows[i : i + 300], max_unseen=1) for i in range(0, 3000, 300)]
    exact = build_sketch(PLAN, rows, max_unseen=MAX_UNSEEN_LIMIT)
    # When both are judged
    config = DriftConfig(min_rows=1)
    small = evaluate_sketch(BASELINE, merge_all(bounded, max_unseen=1), config)
    whole = evaluate_sketch(BASELINE, exact, config)
    # Then the unseen share and the Jensen-Shannon distance are the same, exactly
    pick = {f.name: f.statistics for f in small.features}
    assert pick["location"] == {f.name: f.statistics for f in whole.features}["location"]
    assert (
        pick["location"]["unseen_share"]
        == sum(n.startswith("lot-") for n in (r["inputs"]["location"] for r in rows)) / 3000
    )


# --- documents one cannot trust ---------------------------------------------------------------


def one_row_document() -> dict[str, Any]:
    """A well-formed document of one row whose every value is missing."""
    return sketch([row({}, prediction=None)]).to_dict()


def with_rows(document: dict[str, Any], rows: int) -> dict[str, Any]:
    """The document with ``rows`` rows, every one missing in every column (totals agree)."""
    for column in (*document["numeric"].values(), *document["categorical"].values()):
        column["missing"] = rows
    document["prediction"]["missing"] = rows
    for digest in document.get("serving", {}).values():  # one variant: production
        digest["rows"] = rows
    return document | {"rows": rows}


def test_counts_up_to_2_53_minus_1_are_read_and_one_more_is_refused() -> None:
    assert Sketch.from_dict(with_rows(one_row_document(), MAX_COUNT)).rows == 2**53 - 1
    with pytest.raises(SketchError, match="count from 0 to 2"):
        Sketch.from_dict(with_rows(one_row_document(), MAX_COUNT + 1))


def test_rows_that_disagree_with_the_bin_totals_are_refused() -> None:
    # The review's "rows: 1e30": as an integer it is beyond the bound; within it, totals
    document = one_row_document() | {"rows": 2}
    with pytest.raises(SketchError, match="counts 1 values for 2 rows"):
        Sketch.from_dict(document)
    with pytest.raises(SketchError):
        Sketch.from_dict(one_row_document() | {"rows": 10**30})
    with pytest.raises(SketchError):
        Sketch.from_dict(one_row_document() | {"rows": 1e30})


def sqft_document(total: str, *, count: int = 1, low: Any = 1.0, high: Any = 1.0) -> Any:
    document = sketch([row({"sqft": 1.0}, prediction=None)]).to_dict()
    bins = [0] * len(document["numeric"]["sqft"]["counts"])
    bins[0] = count
    document["numeric"]["sqft"] = {
        "counts": bins, "missing": 0, "count": count, "sum": total, "min": low, "max": high,
    }  # fmt: skip
    if count != 1:  # keep every column's totals in agreement with the rows
        document = with_rows(document, count)
        document["numeric"]["sqft"]["missing"] = 0
    return document


@pytest.mark.parametrize(
    ("low", "high"),
    [(float("nan"), 1.0), (1.0, float("inf")), ("1", 1.0), (True, 1.0), (2.0, 1.0), (None, 1.0)],
)
def test_a_minimum_or_maximum_that_is_not_a_finite_bound_is_refused(low: Any, high: Any) -> None:
    with pytest.raises(SketchError):
        Sketch.from_dict(sqft_document("0x1p+0", low=low, high=high))


def test_a_sum_outside_count_times_min_and_max_is_refused() -> None:
    assert Sketch.from_dict(sqft_document("0x1p+0")).numeric["sqft"].sum == 1.0
    with pytest.raises(SketchError, match="outside count x"):
        Sketch.from_dict(sqft_document("0x1p+1"))


def test_the_sum_exponent_bound_is_read_exactly_on_it_and_refused_one_past() -> None:
    # 2**53 - 1 values below 2**1024 sum to less than 2**1077: MAX_BITS scaled bits.
    on_bound = f"0x1p+{MAX_BITS - 1 - 1126}"  # one bit set: the top one of MAX_BITS
    assert exact_sum.from_hex(on_bound).bit_length() == MAX_BITS == 2203
    with pytest.raises(ValueError, match="more than 2203 bits"):
        exact_sum.from_hex(f"0x1p+{MAX_BITS - 1126}")
    with pytest.raises(ValueError, match="more than 2203 bits"):
        exact_sum.from_hex(f"0x3p+{MAX_BITS - 1 - 1126}")  # two mantissa bits: one past
    # And through a document whose count and maximum make that sum possible
    count, largest = 2**52 + 1, sys.float_info.max
    document = sqft_document(on_bound, count=count, low=0.0, high=largest)
    assert Sketch.from_dict(document).numeric["sqft"].exact_sum == 1 << 2202


@pytest.mark.parametrize("total", ["0x1p+200000000", "0x1p+2000000000", "0x" + "f" * 100_000])
def test_a_hostile_sum_is_refused_without_allocating_it(total: str) -> None:
    tracemalloc.start()
    try:
        with pytest.raises(SketchError):
            Sketch.from_dict(sqft_document(total))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1_000_000  # the review measured 473 MB and a MemoryError at 2.5 GB


def test_at_most_1024_unseen_names_are_read_and_names_of_at_most_64_characters() -> None:
    document = one_row_document()
    location = document["categorical"]["location"]
    names = {f"v{i}": 1 for i in range(MAX_UNSEEN_LIMIT)}
    document = with_rows(document, MAX_UNSEEN_LIMIT)
    location.update(unseen_top=names, missing=0)
    assert len(Sketch.from_dict(document).categorical["location"].unseen_top) == 1024
    location.update(unseen_top=names | {"v-extra": 1}, missing=-1)
    document = with_rows(document, MAX_UNSEEN_LIMIT + 1)
    location.update(missing=0)
    with pytest.raises(SketchError, match="1025 unseen categories"):
        Sketch.from_dict(document)
    for name, ok in (("y" * 64, True), ("y" * 65, False)):
        single = one_row_document()
        single["categorical"]["location"].update(unseen_top={name: 1}, missing=0)
        if ok:
            assert Sketch.from_dict(single).categorical["location"].unseen == 1
        else:
            with pytest.raises(SketchError, match="not as sketched"):
                Sketch.from_dict(single)


def test_timestamps_within_the_calendar_are_read_and_one_ms_past_is_refused() -> None:
    document = one_row_document() | {"first_ts": 0, "last_ts": MAX_TIMESTAMP_MS}
    assert Sketch.from_dict(document).last_ts == MAX_TIMESTAMP_MS
    with pytest.raises(SketchError, match="timestamp"):
        Sketch.from_dict(document | {"last_ts": MAX_TIMESTAMP_MS + 1})
    with pytest.raises(SketchError, match="after last_ts"):
        Sketch.from_dict(document | {"first_ts": 5, "last_ts": 4})


@pytest.mark.parametrize("raw", [None, [], 1, "sketch"])
def test_a_document_that_is_not_an_object_is_refused(raw: Any) -> None:
    with pytest.raises(SketchError, match="JSON object"):
        Sketch.from_dict(raw)


# --- the plan: a document can carry the right fingerprint and still not fit ----------------


def damaged(change: Any) -> Sketch:
    document = sketch([row({"sqft": 1.0, "location": "downtown"})]).to_dict()
    change(document)
    return Sketch.from_dict(document)


def test_a_sketch_binned_on_the_plan_fits_it() -> None:
    PLAN.check(damaged(lambda d: None), "house-prices", "3")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.update(version="4"), "where house-prices v3 was expected"),
        (lambda d: d.update(baseline="another"), "binned on another baseline"),
        (lambda d: d["numeric"]["sqft"]["counts"].pop(), "bins"),
        (lambda d: d["numeric"].pop("bedrooms"), "numeric features differ"),
        (
            lambda d: d["categorical"]["location"].update(counts={}, unseen_top={"downtown": 1}),
            "baseline category as unseen",
        ),
        (
            lambda d: d["categorical"]["location"].update(counts={"harbor": 1}),
            "categories the baseline lacks",
        ),
    ],
)
def test_a_sketch_that_does_not_fit_the_plan_is_refused(change: Any, message: str) -> None:
    with pytest.raises(IncompatibleSketchError, match=message):
        PLAN.check(damaged(change), "house-prices", "3")
