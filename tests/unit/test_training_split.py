"""No leakage: identical rows never straddle the split, and labeled traffic that repeats the
upload is dropped before training, so the holdout metric is a metric on unseen rows."""

from __future__ import annotations

import json
import os
import subprocess
import sys
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


SPLIT_IN_A_PROCESS = """
import json, sys
import numpy as np
from mlops.domain.dataset import Dataset
from mlops.domain.training import split
# Text features with many repeated rows: the split groups identical rows by their keys
rng = np.random.default_rng(2)
plan = np.asarray([str(v) for v in rng.choice(["basic", "pro", "plus"], 400)], dtype=object)
tenure = rng.integers(0, 24, 400).astype(np.float64)
target = np.asarray([str(v) for v in (tenure < 6)], dtype=object)
data = Dataset({"tenure": tenure, "plan": plan}, target, 400, "0" * 64)
train_set, holdout = split(data, 0.2, seed=0)
print(json.dumps([holdout.rows, holdout.columns["tenure"].tolist(), list(holdout.columns["plan"])]))
"""


def test_a_seeded_split_of_text_rows_is_the_same_in_every_process() -> None:
    # Given the same file with text columns and repeated rows, trained in two processes whose
    # string hashing is seeded differently (as every Python process is, by default)
    outputs = []
    for hash_seed in ("1", "2", "3"):
        done = subprocess.run(
            [sys.executable, "-c", SPLIT_IN_A_PROCESS],
            env=os.environ | {"PYTHONHASHSEED": hash_seed},
            capture_output=True,
            text=True,
            check=True,
        )
        outputs.append(json.loads(done.stdout))
    # Then the holdout is the same rows: one file trained twice gives one model
    assert outputs[0] == outputs[1] == outputs[2]
    assert 60 <= outputs[0][0] <= 100
