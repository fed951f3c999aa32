"""Pure concept drift on a dataset that is not house prices: the inputs keep their
distribution, the relation to the target flips. Feature tests must stay quiet (nothing moved
there to see) and live quality must catch it."""

from __future__ import annotations

import numpy as np

from mlops.domain import drift, quality
from mlops.domain.baseline import build_baseline
from mlops.domain.config import DriftConfig
from mlops.domain.schema import Feature

FEATURES = (
    Feature(name="temperature", type="numeric"),
    Feature(name="humidity", type="numeric"),
    Feature(name="season", type="categorical"),
)


def bikes(rows: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "temperature": rng.normal(18, 7, rows),
        "humidity": rng.uniform(20, 95, rows),
        "season": rng.choice(
            np.array(["spring", "summer", "autumn", "winter"], dtype=object), rows
        ),
    }


def rentals(columns: dict[str, np.ndarray], warm_helps: bool) -> np.ndarray:
    """Rentals per hour: warmth brings riders, until it does not (a heat-wave city)."""
    sign = 1.0 if warm_helps else -1.0
    return 300 + sign * 12 * (columns["temperature"] - 18) - 1.5 * (columns["humidity"] - 55)


def test_a_flipped_target_function_is_caught_by_live_quality_not_by_feature_tests() -> None:
    config = DriftConfig()
    train = bikes(5000, seed=1)
    model = lambda c: rentals(c, warm_helps=True)  # noqa: E731 - the deployed model, exactly
    baseline = build_baseline(
        FEATURES, train, model(train), task="regression", metrics={"rmse": 0.0}
    )
    live = bikes(3000, seed=2)  # the same distribution of inputs
    predictions = model(live)
    truth = rentals(live, warm_helps=False)  # the world changed its mind
    # As captured: JSON values (plain floats and strings)
    columns = {f.name: live[f.name].tolist() for f in FEATURES}
    inputs = [{name: values[i] for name, values in columns.items()} for i in range(3000)]

    result = drift.evaluate_rows(
        baseline, inputs, FEATURES, config, predictions=predictions.tolist()
    )
    assert result.enough_data
    assert not result.dataset_drift
    assert result.drifted_features == ()

    joined = quality.join(
        [{"prediction_id": f"p{i}", "ts": i, "version": "1", "prediction": float(predictions[i])}
         for i in range(3000)],
        [{"prediction_id": f"p{i}", "ts": i + 1, "actual": float(truth[i])} for i in range(3000)],
        label_delay_ms=10_000,
    )  # fmt: skip
    holdout_rmse = 20.0  # what the model scored before the world changed
    measured = quality.measure(
        joined, task="regression", classes=(), metric="rmse", greater_is_better=False,
        holdout=holdout_rmse, tolerance=config.quality_tolerance, min_labels=config.min_labels,
    )  # fmt: skip
    assert measured.breach
    assert measured.value is not None
    assert measured.value > 100  # 2 x 12 x 7 degrees of std
