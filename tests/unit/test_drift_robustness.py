"""Drift verdicts on the shipped market that a handful of rows cannot fool: false alarms on
unchanged traffic stay rare at every window size, extreme but valid rows make no drift, a
feature the baseline lacks is reported instead of failing the run, and each threshold (per
feature too) is held exactly where it is set. ``benchmarks/drift_false_alarms.py`` measures
the rates these tests guard."""

from __future__ import annotations

import json
import tomllib
from dataclasses import replace
from importlib import resources
from typing import Any

import numpy as np
import pytest

from mlops.domain.baseline import build_baseline
from mlops.domain.config import DriftConfig
from mlops.domain.config_document import load_config, parse_config
from mlops.domain.drift import DriftResult, evaluate_rows, evaluate_sketch
from mlops.domain.drift_report_html import render_html
from mlops.domain.feature_drift import FeatureDrift
from mlops.domain.schema import Feature
from mlops.domain.sketch import SketchPlan, build_sketch
from mlops.domain.synthetic import MarketConditions, conditions_for_month, generate

FEATURES = load_config().features  # the shipped config: its features and declared bounds
CONFIG = DriftConfig()
Rows = list[dict[str, Any]]


def baseline_of(seed: int, rows: int = 3200) -> dict[str, Any]:
    """As training builds it: month-0 training rows, 20 bins, read back from JSON."""
    columns = generate(rows, conditions_for_month(0), seed=seed)
    document = build_baseline(FEATURES, columns, columns["price"], task="regression", metrics={})
    loaded: dict[str, Any] = json.loads(json.dumps(document))
    return loaded


def window(rows: int, seed: int, conditions: MarketConditions | None = None) -> Rows:
    columns = generate(rows, conditions or conditions_for_month(0), seed=seed)
    names = [f.name for f in FEATURES]
    values = zip(*(columns[n].tolist() for n in names), strict=True)
    return [dict(zip(names, row, strict=True)) for row in values]


def from_sketch(
    baseline: dict[str, Any],
    rows: Rows,
    config: DriftConfig = CONFIG,
    features: tuple[Feature, ...] | None = FEATURES,
) -> DriftResult:
    captured = [
        {"ts": 0, "model": "m", "version": "1", "inputs": r, "prediction": None} for r in rows
    ]
    sketch = build_sketch(SketchPlan.from_baseline(baseline), captured)
    return evaluate_sketch(baseline, sketch, config, features)


def feature(result: DriftResult, name: str) -> FeatureDrift:
    return next(f for f in result.features if f.name == name)


# --- false alarms and extreme rows ---------------------------------------------------------


def test_unchanged_windows_of_1000_rows_flag_each_feature_rarely_in_both_modes() -> None:
    # Given 100 unchanged 1,000-row windows, each against its own month-0 baseline
    alarms = {mode: dict.fromkeys((f.name for f in FEATURES), 0) for mode in ("rows", "sketch")}
    for seed in range(100):
        baseline = baseline_of(10_000 + seed)
        rows = window(1000, 20_000 + seed)
        # When judged raw (the evaluator's path at this size) and from a sketch
        for mode, result in (
            ("rows", evaluate_rows(baseline, rows, FEATURES, CONFIG)),
            ("sketch", from_sketch(baseline, rows)),
        ):
            for f in result.features:
                alarms[mode][f.name] += f.drifted
    # Then no feature drifts in more than 8 % of them (measured over 200 windows: <= 0.5 %;
    # whole years and rates rounded to 0.01 were flagged in 19 % and 12 % raw before)
    assert max(max(per.values()) for per in alarms.values()) <= 8, alarms


@pytest.mark.parametrize("seed", range(5))
def test_fifty_rows_at_every_declared_maximum_in_5000_make_no_drift(seed: int) -> None:
    # Given an unchanged 5,000-row window whose first 50 rows hold every declared maximum
    # (sqft 20,000, lot_size 500,000, interest_rate 25, ...): valid, extreme, 1 % of the rows
    baseline = baseline_of(10_000 + seed)
    rows = window(5000, 40_000 + seed)
    for row in rows[:50]:
        row.update({f.name: f.max for f in FEATURES if f.max is not None})
    # When judged from the sketch (the evaluator's path at this size) and raw
    for result in (from_sketch(baseline, rows), evaluate_rows(baseline, rows, FEATURES, CONFIG)):
        # Then no feature drifts, so the dataset does not either (before: 6 of 9 features)
        assert result.drifted_features == (), [
            (f.name, f.reasons) for f in result.features if f.drifted
        ]
        assert not result.dataset_drift
        # though the untrimmed distance sees them
        assert (feature(result, "lot_size").statistics["wasserstein_untrimmed"] or 0.0) > 0.3


def test_two_percent_of_rows_at_every_maximum_in_a_large_window_make_no_drift() -> None:
    # Given a 50,000-row baseline and an unchanged 50,000-row window with 1,000 rows (2 %) at
    # every declared maximum: at this size KS sees them, so only the distance's bound holds
    baseline = baseline_of(10_009, rows=50_000)
    rows = window(50_000, 16)
    for row in rows[:1000]:
        row.update({f.name: f.max for f in FEATURES if f.max is not None})
    # When
    result = from_sketch(baseline, rows)
    # Then no feature drifts: 2 % of the rows move the winsorised distance by at most 2 % of
    # the baseline's central range (~3.3 std), while the untrimmed one reads up to ~10 std
    sqft = feature(result, "sqft")
    assert (sqft.statistics["ks_pvalue"] or 1.0) < CONFIG.ks_pvalue
    assert (sqft.statistics["wasserstein_untrimmed"] or 0.0) > 0.5
    assert result.drifted_features == (), [(f.name, f.reasons) for f in result.features]


def test_a_many_valued_category_in_a_small_unchanged_window_drifts_only_with_evidence() -> None:
    # Given a categorical feature of 20 equally common values and unchanged 200-row windows,
    # where the JS distance's sampling noise alone passes 0.1 in 96 % of them
    rng = np.random.default_rng(3)
    names = np.array([f"district-{i:02d}" for i in range(20)], dtype=object)
    features = (Feature("district", "categorical"),)
    baseline = json.loads(
        json.dumps(
            build_baseline(
                features, {"district": rng.choice(names, 3200)}, np.zeros(3200),
                task="regression", metrics={},
            )
        )
    )  # fmt: skip
    drifted = noisy = 0
    for _ in range(100):
        rows = [{"district": v} for v in rng.choice(names, 200)]
        district = evaluate_rows(baseline, rows, features, CONFIG).features[0]
        noisy += (district.statistics["js_distance"] or 0.0) >= CONFIG.js_threshold
        drifted += district.drifted
    # Then the chi-square test behind the bar keeps it near its 5 % level
    assert noisy >= 80
    assert drifted <= 10


def test_with_every_bar_at_zero_a_feature_drifts_only_where_its_test_rejects() -> None:
    # Given an unchanged 1,000-row window and bars any sampling noise passes
    baseline = baseline_of(10_008)
    rows = window(1000, 15)
    config = replace(
        CONFIG, psi_warn=1e-9, psi_threshold=1e-9, wasserstein_threshold=1e-9, js_threshold=1e-9
    )
    result = from_sketch(baseline, rows, config)
    for f in result.features:
        stats = f.statistics
        assert (stats.get("psi") or 0.0) > 0.0 or (stats.get("js_distance") or 0.0) > 0.0
        # Then each drifts exactly when the chi-square test (PSI, JS) or the KS test (the
        # distance) behind a bar rejects at the 5 % level
        evidence = [stats["chi2_pvalue"], stats.get("ks_pvalue", 1.0)]
        assert f.drifted is any(p is not None and p < CONFIG.ks_pvalue for p in evidence), f


@pytest.mark.parametrize(("share", "drifted"), [(0.03, False), (0.09, True)])
def test_a_rare_flag_with_one_baseline_edge_drifts_on_its_mean_with_evidence(
    share: float, drifted: bool
) -> None:
    # Given a 0/1 flag set on 3 % of the training rows: every quantile edge collapses onto 0,
    # so the bins cannot tell 3 % from 9 %; only the mean can
    rng = np.random.default_rng(5)
    features = (Feature("has_pool", "numeric"),)
    flags = (rng.random(3200) < 0.03).astype(float)
    baseline = json.loads(
        json.dumps(
            build_baseline(features, {"has_pool": flags}, flags, task="regression", metrics={})
        )
    )
    assert len(baseline["numeric"]["has_pool"]["edges"]) == 1
    # When 1,000 live rows have the flag on share of them
    rows = [{"has_pool": float(v)} for v in (rng.random(1000) < share)]
    has_pool = evaluate_rows(baseline, rows, features, CONFIG).features[0]
    # Then a tripled share drifts on the mean's shift (z-test behind it), the same share not
    assert has_pool.drifted is drifted
    assert "shift of the mean" in has_pool.note
    assert ((has_pool.statistics["mean_pvalue"] or 1.0) < CONFIG.ks_pvalue) is drifted


def test_the_moved_market_still_drifts_with_extreme_rows_filtered_out_of_the_distance() -> None:
    # Given month 6 (rates up, a new district, bigger homes) in 1,000 and 5,000 rows
    baseline = baseline_of(10_001)
    for rows in (
        window(1000, 7, conditions_for_month(6)),
        window(5000, 8, conditions_for_month(6)),
    ):
        result = from_sketch(baseline, rows)
        # Then the features its knobs move drift, and the dataset does
        assert {"interest_rate", "location", "sqft"} <= set(result.drifted_features)
        assert result.dataset_drift


# --- a feature the baseline lacks ----------------------------------------------------------


EXTRA = (
    Feature("garage_spaces", "numeric"),  # added to the config after the version was trained
    Feature("location", "numeric"),  # a categorical feature declared numeric
)


@pytest.mark.parametrize("mode", ["rows", "sketch"])
def test_a_config_feature_the_baseline_lacks_is_not_judged_and_says_why(mode: str) -> None:
    # Given a config naming a feature the baseline does not have
    baseline = baseline_of(10_002)
    rows = window(1000, 9, conditions_for_month(6))
    features = (*FEATURES, EXTRA[0])
    # When (before: evaluate_rows raised ValueError and the run ended without a report)
    if mode == "rows":
        result = evaluate_rows(baseline, rows, features, CONFIG)
    else:
        result = from_sketch(baseline, rows, features=features)
    # Then it is reported, not judged, with the reason, and not counted in the drift share
    garage = feature(result, "garage_spaces")
    assert not garage.judged
    assert not garage.drifted
    assert "the baseline has no numeric feature 'garage_spaces'" in garage.note
    assert garage.as_dict()["judged"] is False
    assert result.drift_share == len(result.drifted_features) / len(FEATURES)
    assert all(f.judged for f in result.features if f.name != "garage_spaces")


def test_a_feature_of_the_other_kind_in_the_baseline_is_not_judged() -> None:
    baseline = baseline_of(10_003)
    result = evaluate_rows(baseline, window(500, 10), (*FEATURES[:-2], EXTRA[1]), CONFIG)
    location = feature(result, "location")
    assert not location.judged
    assert "as a categorical feature, the config as numeric" in location.note


def test_a_report_with_a_feature_not_judged_renders() -> None:
    baseline = baseline_of(10_004)
    result = evaluate_rows(baseline, window(500, 11), (*FEATURES, EXTRA[0]), CONFIG)
    page = render_html({"model": "house-prices", "version": "1", **result.as_dict()})
    assert "garage_spaces" in page


# --- thresholds held where they are set ----------------------------------------------------


def moved_window(seed: int) -> Rows:
    """5,000 rows with the location shares moved (downtown 15 % -> ~40 %, no new category)
    and more houses (55 % -> 80 %): both categorical features clearly drift."""
    rows = window(5000, seed, MarketConditions(house_share=0.8))
    for row in rows[: 5000 * 3 // 10]:
        row["location"] = "downtown"
    return rows


def test_a_per_feature_js_threshold_in_the_model_config_changes_only_that_feature() -> None:
    # Given the shipped config with a lenient JS bar for location only
    text = resources.files("mlops.defaults").joinpath("house_prices.toml").read_text()
    lenient = parse_config(
        tomllib.loads(text + "\n[drift.features.location]\njs_threshold = 0.5\n")
    )
    baseline = baseline_of(10_005)
    rows = moved_window(12)
    # When judged with the defaults and with the override
    default = from_sketch(baseline, rows, load_config().drift)
    overridden = from_sketch(baseline, rows, lenient.drift)
    # Then location drifts by JS under the default bar and not under its own
    assert 0.1 <= (feature(default, "location").statistics["js_distance"] or 0.0) < 0.5
    assert feature(default, "location").drifted
    assert not feature(overridden, "location").drifted
    assert feature(overridden, "location").thresholds["js_distance"] == 0.5
    # and property_type, which has no override, keeps the default bar and its verdict
    assert feature(overridden, "property_type").thresholds["js_distance"] == 0.1
    assert feature(overridden, "property_type").drifted


@pytest.mark.parametrize(("offset", "drifted"), [(0.0, True), (1e-9, False)])
def test_a_js_distance_drifts_from_its_threshold_up_and_not_just_below(
    offset: float, drifted: bool
) -> None:
    # Given a window whose location JS distance is d (no unseen category, clearly significant)
    baseline = baseline_of(10_006)
    rows = moved_window(13)
    distance = feature(from_sketch(baseline, rows), "location").statistics["js_distance"]
    assert distance is not None
    # When the bar is d itself, or just above it (there is no JS warning level: one bar)
    config = replace(CONFIG, js_threshold=distance + offset)
    location = feature(from_sketch(baseline, rows, config), "location")
    # Then at the bar it drifts, by JS; just under it, not
    assert location.drifted is drifted
    assert any("Jensen-Shannon" in r for r in location.reasons) is drifted
    assert not location.warning


@pytest.mark.parametrize(
    ("bars", "warning", "drifted"),
    [
        ((-0.01, 0.01), True, False),  # psi_warn < PSI < psi_threshold: a warning
        ((0.0, 0.01), True, False),  # PSI == psi_warn: a warning
        ((-0.02, 0.0), False, True),  # PSI == psi_threshold: drift
        ((1e-9, 0.01), False, False),  # just under psi_warn: neither
    ],
)
def test_psi_between_its_two_thresholds_warns_and_at_the_upper_one_drifts(
    bars: tuple[float, float], warning: bool, drifted: bool
) -> None:
    # Given 5,000 rows with sqft 10 % larger (PSI p, clearly significant)
    baseline = baseline_of(10_007)
    rows = window(5000, 14, MarketConditions(size_shift=0.1))
    value = feature(from_sketch(baseline, rows), "sqft").statistics["psi"]
    assert value is not None
    # When the bars are set around p (the distance bar out of reach)
    config = replace(
        CONFIG,
        psi_warn=value + bars[0],
        psi_threshold=value + bars[1],
        wasserstein_threshold=100.0,
    )
    sqft = feature(from_sketch(baseline, rows, config), "sqft")
    # Then
    assert (sqft.warning, sqft.drifted) == (warning, drifted)
