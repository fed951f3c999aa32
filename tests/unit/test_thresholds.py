"""Split thresholds rounded down to float32: scikit-learn unchanged, ONNX exact.

A user's dataset of one-decimal readings (bike rentals: temperature, humidity, season) failed the
parity gate: two scaled training values were adjacent float32 numbers, the float64 midpoint
threshold between them rounded onto one of them in ONNX's float32 graph, and that value took the
other branch (16 % off on one row)."""

from __future__ import annotations

import tomllib
from pathlib import Path

import numpy as np
import pytest

from mlops.domain.config_document import parse_config
from mlops.domain.dataset import parse_csv
from mlops.domain.export import to_onnx_bytes
from mlops.domain.scoring import OnnxModel
from mlops.domain.training import build_pipeline, floor_thresholds_to_float32, train
from mlops.services.training import check_parity, signature_from_training
from tests.datasets import bikes

CONFIG = """
name = "bike-rentals"
task = "regression"
target = "rentals"
[[features]]
name = "temperature"
type = "numeric"
[[features]]
name = "humidity"
type = "numeric"
[[features]]
name = "season"
type = "categorical"
[estimator]
type = "{estimator}"
params = {params}
"""
ESTIMATORS = [
    ("hist_gradient_boosting", "{ max_iter = 40 }"),
    ("random_forest", "{ n_estimators = 30, random_state = 0 }"),
]


@pytest.mark.parametrize(("estimator", "params"), ESTIMATORS)
def test_flooring_thresholds_changes_no_scikit_learn_prediction(
    tmp_path: Path, estimator: str, params: str
) -> None:
    config = parse_config(tomllib.loads(CONFIG.format(estimator=estimator, params=params)))
    data = parse_csv(bikes(tmp_path / "bikes.csv").read_bytes(), config)
    matrix = data.matrix(config.feature_names)
    pipeline = build_pipeline(config).fit(matrix, data.target)
    before = pipeline.predict(matrix)
    floor_thresholds_to_float32(pipeline.steps[-1][1])
    np.testing.assert_array_equal(pipeline.predict(matrix), before)


@pytest.mark.parametrize(("estimator", "params"), ESTIMATORS)
def test_a_dataset_with_adjacent_float32_values_passes_the_parity_gate(
    tmp_path: Path, estimator: str, params: str
) -> None:
    config = parse_config(tomllib.loads(CONFIG.format(estimator=estimator, params=params)))
    trained = train(config, parse_csv(bikes(tmp_path / "bikes.csv").read_bytes(), config))
    model = OnnxModel(
        to_onnx_bytes(trained.pipeline, config),
        signature_from_training(config, trained.train),
        config.task,
    )
    report = check_parity(config, trained, model)
    assert report.passed, report.summary()
    assert all(case.mismatches == 0 for case in report.cases)
