"""The parity gate: onnxruntime must reproduce scikit-learn on the holdout and edge cases."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from mlops.domain.config import ModelConfig, ParityConfig
from mlops.domain.config_document import parse_config
from mlops.domain.dataset import parse_csv
from mlops.domain.export import to_onnx_bytes
from mlops.domain.parity import UNSEEN_CATEGORY, compare_case, edge_cases, judge
from mlops.domain.scoring import OnnxModel
from mlops.domain.synthetic import conditions_for_month, csv_bytes, generate
from mlops.domain.training import train
from mlops.services.training import check_parity, signature_from_training


def test_compare_case_counts_rows_outside_relative_tolerance() -> None:
    tolerance = ParityConfig(rtol=1e-3, atol=0.0)
    expected = np.array([100.0, 200.0, 300.0])
    actual = np.array([100.05, 200.5, 300.0])  # rel diffs 5e-4, 2.5e-3, 0
    case = compare_case("x", expected, actual, tolerance)
    assert case.mismatches == 1
    assert case.max_abs_diff == pytest.approx(0.5)
    assert case.max_rel_diff == pytest.approx(2.5e-3)
    assert not judge([case], tolerance).passed
    assert judge([case], replace(tolerance, max_mismatch_fraction=0.34)).passed


def test_classification_cases_need_equal_labels_and_close_probabilities() -> None:
    tolerance = ParityConfig(prob_atol=1e-3)
    probs = np.array([[0.9, 0.1], [0.4, 0.6]])
    same = compare_case(
        "c",
        probs,
        probs + 1e-4,
        tolerance,
        expected_labels=np.array(["a", "b"]),
        actual_labels=np.array(["a", "b"]),
    )
    flipped = compare_case(
        "c",
        probs,
        probs,
        tolerance,
        expected_labels=np.array(["a", "b"]),
        actual_labels=np.array(["a", "a"]),
    )
    assert same.mismatches == 0
    assert flipped.mismatches == 1


def test_edge_cases_use_declared_bounds_and_unseen_categories(config: ModelConfig) -> None:
    columns = generate(50, conditions_for_month(0), seed=1)
    cases = edge_cases(config.features, columns, columns)
    assert set(cases["numeric_at_lower_bound"]["sqft"]) == {200.0}  # declared min
    assert set(cases["numeric_at_upper_bound"]["sqft"]) == {20000.0}
    assert set(cases["unseen_categories"]["location"]) == {UNSEEN_CATEGORY}
    # the other features keep their sampled values
    np.testing.assert_array_equal(cases["unseen_categories"]["sqft"], columns["sqft"])


def test_regression_export_passes_parity_on_holdout_and_edges(
    config: ModelConfig, month0_csv: bytes
) -> None:
    trained = train(config, parse_csv(month0_csv, config))
    model = OnnxModel(
        to_onnx_bytes(trained.pipeline, config),
        signature_from_training(config, trained.train),
        config.task,
    )
    report = check_parity(config, trained, model)
    assert report.passed, report.summary()
    assert [c.name for c in report.cases] == [
        "holdout",
        "numeric_at_lower_bound",
        "numeric_at_upper_bound",
        "unseen_categories",
    ]
    assert max(c.max_rel_diff for c in report.cases) < config.parity.rtol


def test_a_zero_tolerance_fails_the_gate(config: ModelConfig, month0_csv: bytes) -> None:
    # ONNX Runtime sums tree leaves in float32; exact equality with float64 sklearn is not real.
    strict = replace(config, parity=ParityConfig(rtol=0.0, atol=0.0))
    trained = train(strict, parse_csv(month0_csv, strict))
    model = OnnxModel(
        to_onnx_bytes(trained.pipeline, strict),
        signature_from_training(strict, trained.train),
        strict.task,
    )
    report = check_parity(strict, trained, model)
    assert not report.passed
    assert "outside tolerance" in report.summary()


@pytest.mark.parametrize(
    "estimator", ["hist_gradient_boosting", "random_forest", "logistic_regression"]
)
def test_classification_export_passes_parity(estimator: str) -> None:
    config = parse_config(
        {
            "name": "expensive",
            "task": "classification",
            "target": "band",
            "features": [
                {"name": "sqft", "type": "numeric", "min": 200},
                {"name": "interest_rate", "type": "numeric"},
                {"name": "location", "type": "categorical"},
            ],
            "estimator": {
                "type": estimator,
                "params": {"random_state": 0}
                | ({"n_estimators": 20} if estimator == "random_forest" else {}),
            },
        }
    )
    columns = generate(1200, conditions_for_month(0), seed=5)
    band = np.where(columns["price"] > np.median(columns["price"]), "high", "low").astype(object)
    data = csv_bytes(
        {
            "sqft": columns["sqft"],
            "interest_rate": columns["interest_rate"],
            "location": columns["location"],
            "band": band,
        }
    )
    trained = train(config, parse_csv(data, config))
    model = OnnxModel(
        to_onnx_bytes(trained.pipeline, config),
        signature_from_training(config, trained.train),
        config.task,
        trained.classes,
    )
    report = check_parity(config, trained, model)
    assert report.passed, report.summary()
    scores = model.score(trained.holdout.columns)
    assert set(scores.values) <= {"high", "low"}
    assert scores.probabilities is not None
    np.testing.assert_allclose(scores.probabilities.sum(axis=1), 1.0, atol=1e-5)
    assert trained.metrics["accuracy"] > 0.75


def test_a_label_flip_at_an_exact_probability_tie_is_not_a_mismatch() -> None:
    tolerance = ParityConfig(prob_atol=1e-4)
    probs = np.array([[0.5, 0.5], [0.45, 0.55]])
    case = compare_case(
        "tie",
        probs,
        probs,
        tolerance,
        expected_labels=np.array(["a", "b"]),
        actual_labels=np.array(["b", "a"]),
    )
    assert case.mismatches == 1  # only the untied second row counts


def test_a_prediction_near_zero_is_judged_against_the_typical_magnitude() -> None:
    # float32 sums err in proportion to the output range: 1e-4 of a 1,211 price is noise
    # when the typical price is 300,000 (a 1M-row model failed the old per-row rule).
    tolerance = ParityConfig(rtol=1e-4, atol=0.0)
    expected = np.array([300_000.0, 300_000.0, 1_210.79])
    bound = 1e-4 * 300_000.0  # the median magnitude sets the bar for the small row
    within = compare_case("x", expected, expected + np.array([0.0, 0.0, bound * 0.99]), tolerance)
    beyond = compare_case("x", expected, expected + np.array([0.0, 0.0, bound * 1.01]), tolerance)
    assert within.mismatches == 0
    assert beyond.mismatches == 1
    # And a row above the median is still judged against its own value
    big = np.array([1.0, 1.0, 1_000_000.0])
    assert compare_case("x", big, big + np.array([0, 0, 99.0]), tolerance).mismatches == 0
    assert compare_case("x", big, big + np.array([0, 0, 101.0]), tolerance).mismatches == 1
