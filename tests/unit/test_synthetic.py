"""The synthetic market: deterministic per seed, and its knobs move what they claim to."""

from __future__ import annotations

import numpy as np

from mlops.domain.synthetic import (
    NEW_LOCATIONS,
    MarketConditions,
    conditions_for_month,
    generate,
)


def test_same_seed_same_data_different_seed_different_data() -> None:
    a = generate(300, MarketConditions(), seed=3)
    b = generate(300, MarketConditions(), seed=3)
    c = generate(300, MarketConditions(), seed=4)
    np.testing.assert_array_equal(a["price"], b["price"])
    assert not np.array_equal(a["price"], c["price"])


def test_price_level_moves_prices_for_the_same_houses() -> None:
    base = generate(2000, MarketConditions(), seed=1)
    up = generate(2000, MarketConditions(price_level=1.2), seed=1)
    np.testing.assert_array_equal(base["sqft"], up["sqft"])
    ratio = np.median(up["price"] / base["price"])
    assert 1.19 < ratio < 1.21


def test_higher_rates_lower_prices_and_show_in_the_feature() -> None:
    base = generate(2000, MarketConditions(), seed=1)
    high = generate(2000, MarketConditions(interest_rate=6.5), seed=1)
    assert high["interest_rate"].mean() - base["interest_rate"].mean() > 2.3
    assert np.median(high["price"]) < 0.9 * np.median(base["price"])


def test_new_locations_appear_only_when_the_knob_is_on() -> None:
    assert not set(generate(2000, conditions_for_month(3), seed=1)["location"]) & set(NEW_LOCATIONS)
    month4 = generate(2000, conditions_for_month(4), seed=1)["location"]
    share = np.mean([loc in NEW_LOCATIONS for loc in month4])
    assert 0.07 < share < 0.13


def test_size_shift_moves_the_sqft_distribution() -> None:
    base = generate(4000, MarketConditions(), seed=1)["sqft"]
    shifted = generate(4000, MarketConditions(size_shift=0.2), seed=1)["sqft"]
    assert 1.15 < np.median(shifted) / np.median(base) < 1.25


def test_generated_values_respect_the_default_config_bounds() -> None:
    data = generate(5000, conditions_for_month(8), seed=2)
    assert data["sqft"].min() >= 200
    assert data["sqft"].max() <= 20000
    assert data["year_built"].max() <= 2030
    assert (data["price"] > 0).all()
