"""No leakage: identical rows never straddle the split, and labeled traffic that repeats the
upload is dropped before training, so the holdout metric is a metric on unseen rows."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from sklearn.metrics import mean_squared_error

from mlops.domain.config import ModelConfig
from mlops.domain.dataset import Dataset, parse_csv
from mlops.domain.synthetic import conditions_for_month, csv_bytes, generate
from mlops.domain.training import row_keys, split, train


def dataset(config: ModelConfig, rows: int, seed: int) -> Dataset:
    return parse_csv(csv_bytes(generate(rows, conditions_for_month(0), seed=seed)), config)


def test_rows_pasted_twice_land_on_one_side_of_the_split(config: ModelConfig) -> None:
    data = dataset(config, 300, 1)
    doubled = Dataset.concat([data, data.take(np.arange(100))])
    train_set, holdout = split(doubled, 0.2, seed=0)
    assert not set(row_keys(train_set)) & set(row_keys(holdout))
    assert train_set.rows + holdout.rows == 400
    assert 60 <= holdout.rows <= 100


def test_a_plain_file_splits_as_before(config: ModelConfig) -> None:
    data = dataset(config, 300, 1)
    train_set, holdout = split(data, 0.2, seed=0)
    order = np.random.default_rng(0).permutation(300)
    assert np.array_equal(holdout.target, data.target[np.sort(order[:60])])
    assert train_set.rows == 240


def test_traffic_repeating_the_upload_is_dropped_and_the_holdout_is_unseen(
    config: ModelConfig,
) -> None:
    # Given an upload and labeled traffic holding the same rows (and 50 of its own)
    fast = replace(config, estimator=replace(config.estimator, params={"max_iter": 30}))
    data = dataset(fast, 400, 2)
    own = dataset(fast, 50, 3)
    extra = Dataset.concat([data, own])
    # When trained with the traffic as extra rows
    trained = train(fast, data, extra)
    # Then the repeated rows were dropped, no holdout row was trained on, and the reported
    # metric is the metric on those unseen rows
    assert trained.overlap_rows == 400
    assert not set(row_keys(trained.train)) & set(row_keys(trained.holdout))
    assert trained.train.rows == 400 - trained.holdout.rows + 50
    predicted = trained.pipeline.predict(trained.holdout.matrix(fast.feature_names))
    unseen = float(np.sqrt(mean_squared_error(trained.holdout.target, predicted)))
    assert trained.metrics["rmse"] == unseen
