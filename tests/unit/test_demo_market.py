"""The demo's market schedule, the generator's buyer-mix knob it uses, and the pure pieces of
``mlops demo`` (what it reads from a drift report, how it labels who served, its JSON line)."""

from __future__ import annotations

import hashlib
import itertools
import json
from dataclasses import replace

import numpy as np
import pytest

from mlops.domain.synthetic import MarketConditions, csv_bytes, generate
from mlops_cli.demo.digest import drift_digest, feature_scores, metric_text, serving_label
from mlops_cli.demo.market import COUNTRYSIDE_NOISE, SHOCKS, demo_conditions, describe_month
from mlops_cli.demo.summary import json_summary


def test_calm_months_only_inflate_and_shocks_come_one_at_a_time_with_calm_between() -> None:
    # The demo's market: the generator's, with the countryside's prices noisier from month 0
    assert demo_conditions(0) == MarketConditions(countryside_noise=COUNTRYSIDE_NOISE)
    for month in (1, 2):
        assert demo_conditions(month) == replace(demo_conditions(0), price_level=1.01**month)
    shocks = sorted(SHOCKS)
    assert shocks == [3, 5, 7, 9, 13, 15, 17]
    assert all(b - a >= 2 for a, b in itertools.pairwise(shocks))
    # The default run (months 0 to 11) ends on two calm months after its last shock
    assert not {10, 11, 12} & set(SHOCKS)
    assert demo_conditions(11) == replace(
        demo_conditions(9), price_level=demo_conditions(11).price_level
    )


@pytest.mark.parametrize(
    ("month", "knob", "value"),
    [
        (3, "interest_rate", 7.5),
        (5, "new_location_share", 0.15),
        (7, "size_shift", 0.25),
        (7, "house_share", 0.75),
        (9, "countryside_share", 0.8),
        (15, "interest_rate", 6.0),
        (17, "new_location_share", 0.30),
    ],
)
def test_each_shock_turns_its_knob_and_it_stays_turned(month: int, knob: str, value: float) -> None:
    assert getattr(demo_conditions(month - 1), knob) != value
    assert getattr(demo_conditions(month), knob) == value
    assert getattr(demo_conditions(month + 1), knob) == value


def test_the_cooling_market_moves_the_price_level_alone() -> None:
    before, after = demo_conditions(12), demo_conditions(13)
    assert after.price_level / before.price_level == pytest.approx(1.01 * 0.88)
    assert replace(after, price_level=before.price_level) == before


def test_months_are_described_for_a_person() -> None:
    assert describe_month(0) == "the market v1 is trained on"
    assert describe_month(4) == "calm: prices +1%"
    assert describe_month(3).startswith("rates jump from 4% to 7.5%")
    # The stated effect of the rate jump is the generator's: 7 % a point, and 3 % sentiment.
    assert "24% less" in describe_month(3)
    assert round(100 * (1 - np.exp(-0.07 * 3.5) * 0.97)) == 24


def test_buyer_mix_knob_moves_property_types_and_leaves_the_default_draws_alone() -> None:
    # Given the default mix, the generator draws exactly as before the knob existed
    default = generate(3000, MarketConditions(), seed=5)
    explicit = generate(3000, MarketConditions(house_share=None), seed=5)
    np.testing.assert_array_equal(default["property_type"], explicit["property_type"])
    np.testing.assert_array_equal(default["price"], explicit["price"])
    shares = {t: np.mean(default["property_type"] == t) for t in ("house", "townhouse", "condo")}
    assert shares["house"] == pytest.approx(0.55, abs=0.03)
    # When buyers move to houses, condos and townhouses share the rest in their usual ratio
    moved = generate(3000, MarketConditions(house_share=0.75), seed=5)["property_type"]
    assert np.mean(moved == "house") == pytest.approx(0.75, abs=0.03)
    assert np.mean(moved == "townhouse") / np.mean(moved == "condo") == pytest.approx(
        25 / 20, rel=0.2
    )
    with pytest.raises(ValueError, match="house_share"):
        generate(10, MarketConditions(house_share=1.5))


def test_countryside_knobs_move_its_share_and_its_noise_and_nothing_else() -> None:
    # Given the knobs unset, the generator draws exactly as before they existed: the sha256s
    # of its CSVs as the generator without them (4f56818) wrote them
    default = generate(4000, MarketConditions(), seed=5)
    assert hashlib.sha256(csv_bytes(default)).hexdigest() == (
        "b4a9b04952d3e213fda735cf0100a1cb69237af7f328230772ce44dc673ea6ca"
    )
    shocked = MarketConditions(
        house_share=0.75, size_shift=0.25, interest_rate=7.5, new_location_share=0.15
    )
    assert hashlib.sha256(csv_bytes(generate(4000, shocked, seed=9))).hexdigest() == (
        "72d23ee303555523f3089fd0d19ad6beef60d3a221845f74c7d4f48718f507c5"
    )
    assert np.mean(default["location"] == "countryside") == pytest.approx(0.15, abs=0.02)
    # When buyers leave the city, the other districts share the rest in their usual ratio
    moved = generate(4000, MarketConditions(countryside_share=0.8), seed=5)["location"]
    assert np.mean(moved == "countryside") == pytest.approx(0.8, abs=0.02)
    assert np.mean(moved == "suburbs") / np.mean(moved == "downtown") == pytest.approx(
        0.3 / 0.15, rel=0.25
    )
    for bad in (-0.01, 1.01):
        with pytest.raises(ValueError, match="countryside_share"):
            generate(10, MarketConditions(countryside_share=bad))
    # A noisier countryside leaves every other district's prices exactly as they were
    noisy = generate(4000, MarketConditions(countryside_noise=0.15), seed=5)
    city = default["location"] != "countryside"
    np.testing.assert_array_equal(noisy["price"][city], default["price"][city])
    ratio = np.log(noisy["price"][~city] / default["price"][~city])
    assert np.std(ratio) > 0.05  # the countryside's noise did change: 0.15 against 0.06


def test_feature_scores_are_multiples_of_each_features_bar() -> None:
    report = {
        "features": [
            {
                "name": "sqft",
                "statistics": {"psi": 0.5, "wasserstein": 0.05, "missing_rate_change": 0.0},
                "thresholds": {"psi": 0.25, "wasserstein": 0.1, "missing_rate_change": 0.05},
            },
            {
                # a p-value drifts downwards: 0.005 against 0.05 is ten times past the bar
                "name": "rate",
                "statistics": {"ks_pvalue": 0.005, "psi": float("nan")},
                "thresholds": {"ks_pvalue": 0.05, "psi": 0.25},
            },
            {"name": "location", "statistics": {"js_distance": None}, "thresholds": {}},
        ]
    }
    assert feature_scores(report) == {"sqft": 2.0, "rate": 10.0, "location": 0.0}


def test_the_digest_keeps_what_the_table_and_the_report_show() -> None:
    report = {
        "version": "3",
        "rows": 750,
        "mode": "exact",
        "verdict": {
            "status": "ok",
            "dataset_drift": False,
            "drift_share": 0.11,
            "drift_share_threshold": 0.5,
            "drifted": ["interest_rate"],
            "quality_breach": True,
            "retrain_requested": True,
            "reasons": ["live mape 11.4% ..."],
        },
        "quality": {"metric": "mape", "value": 0.114, "holdout": 0.068, "labels": 6000},
        "features": [],
    }
    digest = drift_digest(report, "reports/drift/20261129T043652Z-v3.json")
    assert digest["report_html"] == "drift/20261129T043652Z-v3.html"
    assert digest["quality_breach"]
    assert digest["retrain_requested"]
    assert (digest["live_quality"], digest["holdout_quality"]) == (0.114, 0.068)
    assert metric_text("mape", 0.114) == "MAPE 11.4%"
    assert metric_text("rmse", 26_424.2) == "RMSE 26,424"


def test_serving_label_names_production_first_and_the_canarys_share() -> None:
    assert serving_label(["2"] * 10, "2") == "v2"
    assert serving_label(["2"] * 7 + ["3"] * 3, "2") == "v2 + canary v3 30%"


def test_the_json_line_holds_the_contract_keys_and_compact_months() -> None:
    summary = {
        "months": [{"month": 0, "rmse_system": 1.0, "drift": {"drift_share": 0.1}}],
        "versions_promoted": 1,
        "rollbacks": 0,
        "drift_detected_months": [],
        "rmse_system_last_month": 1.0,
        "rmse_static_last_month": 2.0,
        "rmse_v1_month0": 1.0,
        "report_path": "/tmp/report.html",
        "seconds": 3.0,
        "events": [{"month": 0, "text": "x"}],
        "drift_reports": [],
        "rollout_reports": [],
    }
    line = json.loads(json_summary(summary))
    assert set(line) == {
        "months", "versions_promoted", "rollbacks", "drift_detected_months",
        "rmse_system_last_month", "rmse_static_last_month", "rmse_v1_month0",
        "report_path", "seconds",
    }  # fmt: skip
    assert line["months"][0]["drift_share"] == 0.1
    assert "drift" not in line["months"][0]
