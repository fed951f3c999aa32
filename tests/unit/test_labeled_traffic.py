"""Joining captured predictions with their late labels: which label wins, what is dropped and
counted, and the shape of the resulting dataset. Rows come from the real record functions
(``capture_lines`` → ``parse_capture_line`` → ``capture_rows``), as the logger stores them."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import numpy as np
import pytest

from mlops.domain import capture
from mlops.domain.config import ModelConfig
from mlops.domain.config_document import load_config
from mlops.domain.labeled_traffic import join
from mlops.domain.schema import Feature

MODEL = "house-prices"
T0 = 1_714_557_600_000  # 2024-05-01T10:00:00Z
HOUSE = {
    "sqft": 1850,
    "bedrooms": 3,
    "bathrooms": 2,
    "year_built": 1995,
    "lot_size": 5000,
    "distance_to_center": 4.5,
    "interest_rate": 6.5,
    "location": "riverside",
    "property_type": "house",
}


@pytest.fixture(scope="module")
def regression() -> ModelConfig:
    config = load_config()
    assert set(config.feature_names) == set(HOUSE)  # the rows below fit the shipped config
    return config


@pytest.fixture(scope="module")
def classification(regression: ModelConfig) -> ModelConfig:
    return replace(regression, task="classification", target="sold")


def captured(
    houses: list[dict[str, Any]], ts: int = T0, version: str = "1"
) -> tuple[list[str], list[dict[str, Any]]]:
    """Prediction ids and the rows the logger stores for one request."""
    ids = [str(uuid.uuid4()) for _ in houses]
    (line,) = capture.capture_lines(
        model=MODEL,
        version=version,
        alias="production",
        variant=None,
        request_id=str(uuid.uuid4()),
        timestamp_ms=ts,
        latency_ms=0.2,
        instances=houses,
        prediction_ids=ids,
        predictions=[300_000.0] * len(houses),
        probabilities=None,
    )
    return ids, capture.capture_rows(capture.parse_capture_line(line))


def labeled(labels: dict[str, Any], ts: int = T0 + 60_000) -> list[dict[str, Any]]:
    """The rows the logger stores for one ``POST /feedback``."""
    items = [{"prediction_id": pid, "actual": actual} for pid, actual in labels.items()]
    (line,) = capture.feedback_line(model=MODEL, timestamp_ms=ts, items=items)
    return capture.feedback_rows(capture.parse_capture_line(line))


def test_a_labeled_capture_becomes_a_typed_training_row(regression: ModelConfig) -> None:
    # Given two captured predictions, one of them labeled
    (_, b), rows = captured([HOUSE, {**HOUSE, "sqft": 2400}])
    # When they are joined
    traffic = join(rows, labeled({b: 455_000}), regression)
    # Then the labeled one is a row in config order with float64 numbers and str categories
    data = traffic.dataset
    assert (data.rows, traffic.joined, traffic.captured, traffic.labels) == (1, 1, 2, 1)
    assert list(data.columns) == regression.feature_names
    assert data.columns["sqft"].dtype == np.float64
    assert data.columns["sqft"].tolist() == [2400.0]
    assert data.columns["location"].dtype == object
    assert data.columns["location"].tolist() == ["riverside"]
    assert data.target.dtype == np.float64
    assert data.target.tolist() == [455_000.0]
    assert len(data.sha256) == 64


def test_the_last_label_by_timestamp_wins_whatever_the_arrival_order(
    regression: ModelConfig,
) -> None:
    # Given a label corrected later, the correction read first
    (pid,), rows = captured([HOUSE])
    correction = labeled({pid: 410_000}, ts=T0 + 120_000)
    first = labeled({pid: 999_000}, ts=T0 + 60_000)
    # When joined
    traffic = join(rows, correction + first, regression)
    # Then the correction is the target and the superseded label is counted
    assert traffic.dataset.target.tolist() == [410_000.0]
    assert (traffic.labels, traffic.duplicate_labels, traffic.joined) == (2, 1, 1)


def test_labels_with_the_same_timestamp_go_to_the_one_read_last(regression: ModelConfig) -> None:
    (pid,), rows = captured([HOUSE])
    traffic = join(rows, labeled({pid: 1.0}) + labeled({pid: 2.0}), regression)
    assert traffic.dataset.target.tolist() == [2.0]
    assert traffic.duplicate_labels == 1


def test_labels_without_a_capture_are_counted_not_joined(regression: ModelConfig) -> None:
    # Given a label for an id never captured (or not stored yet) and an unlabeled capture
    (pid, _), rows = captured([HOUSE, HOUSE])
    unknown = str(uuid.uuid4())
    # When joined
    traffic = join(rows, labeled({pid: 400_000, unknown: 1.0}), regression)
    # Then only the matched label makes a row
    assert (traffic.joined, traffic.unmatched_labels, traffic.captured) == (1, 1, 2)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"sqft": None}, "sqft"),
        ({"sqft": "big"}, "sqft"),
        ({"bedrooms": True}, "bedrooms"),
        ({"bedrooms": 99}, "bedrooms"),  # above the declared max of 20
        ({"location": 7}, "location"),
        ({"location": ""}, "location"),
    ],
)
def test_a_row_with_an_ill_typed_feature_is_dropped_and_counted(
    regression: ModelConfig, change: dict[str, Any], field: str
) -> None:
    (good, bad), rows = captured([HOUSE, HOUSE])
    rows[1]["inputs"] = {**HOUSE, **change}
    traffic = join(rows, labeled({good: 1.0, bad: 2.0}), regression)
    assert (traffic.joined, traffic.dropped) == (1, 1)
    assert traffic.dataset.target.tolist() == [1.0]
    assert traffic.problems[0].field == f"prediction {bad}.{field}"


def test_a_row_missing_a_feature_of_the_config_is_dropped(regression: ModelConfig) -> None:
    # Given a config that has gained a feature the served model never received
    config = replace(regression, features=(*regression.features, Feature("garage", "numeric")))
    (pid,), rows = captured([HOUSE])
    traffic = join(rows, labeled({pid: 1.0}), config)
    assert (traffic.joined, traffic.dropped, traffic.unmatched_labels) == (0, 1, 0)
    assert traffic.problems[0].problem == "missing feature"


def test_a_truncated_capture_cannot_be_trained_on(regression: ModelConfig) -> None:
    (pid,), rows = captured([HOUSE])
    rows[0] |= {"inputs": None, "truncated": True}
    traffic = join(rows, labeled({pid: 1.0}), regression)
    assert (traffic.joined, traffic.dropped) == (0, 1)
    assert "truncated" in traffic.problems[0].problem


def test_a_regression_label_that_is_not_a_number_is_dropped(regression: ModelConfig) -> None:
    (a, b), rows = captured([HOUSE, HOUSE])
    traffic = join(rows, labeled({a: "expensive", b: 3}), regression)
    assert traffic.dataset.target.tolist() == [3.0]
    assert traffic.dropped == 1


def test_classification_targets_are_their_labels_as_the_trained_classes(
    classification: ModelConfig,
) -> None:
    # Given labels as feedback carries them: strings (the trained classes), an int, a bool
    (a, b, c), rows = captured([HOUSE, HOUSE, HOUSE])
    traffic = join(rows, labeled({a: "yes", b: 1, c: True}), classification)
    # Then the classes are str, like a CSV's, and a bool is no class
    assert traffic.dataset.target.dtype == object
    assert sorted(traffic.dataset.target.tolist()) == ["1", "yes"]
    assert traffic.dropped == 1


def test_a_capture_stored_twice_is_one_row(regression: ModelConfig) -> None:
    # Given the same capture in two objects (a batch stored under two batch ids)
    (pid,), rows = captured([HOUSE])
    traffic = join([*rows, dict(rows[0])], labeled({pid: 1.0}), regression)
    assert (traffic.joined, traffic.duplicate_captures, traffic.captured) == (1, 1, 2)


def test_rows_are_ordered_by_capture_time_and_hashed_by_content(regression: ModelConfig) -> None:
    # Given two requests read in either order
    (late,), late_rows = captured([{**HOUSE, "sqft": 3000}], ts=T0 + 5_000)
    (early,), early_rows = captured([{**HOUSE, "sqft": 1000}], ts=T0)
    labels = labeled({late: 2.0, early: 1.0})
    one = join(late_rows + early_rows, labels, regression)
    other = join(early_rows + late_rows, list(reversed(labels)), regression)
    # Then the rows come in capture-time order and the digest does not depend on read order
    assert one.dataset.columns["sqft"].tolist() == [1000.0, 3000.0]
    assert one.dataset.sha256 == other.dataset.sha256
    # And a different label is different content
    changed = join(late_rows + early_rows, labeled({late: 2.5, early: 1.0}), regression)
    assert changed.dataset.sha256 != one.dataset.sha256


def test_captures_may_stream_and_only_labeled_ones_are_kept(regression: ModelConfig) -> None:
    # Given captures as a one-pass generator (how the S3 reader hands them over)
    (pid, *_), rows = captured([HOUSE] * 50)

    def stream() -> Iterator[dict[str, Any]]:
        yield from rows

    traffic = join(stream(), labeled({pid: 1.0}), regression)
    assert (traffic.captured, traffic.joined) == (50, 1)


def test_no_labels_give_an_empty_dataset_of_the_right_shape(regression: ModelConfig) -> None:
    _, rows = captured([HOUSE])
    traffic = join(rows, [], regression)
    assert traffic.dataset.rows == 0
    assert traffic.dataset.columns["sqft"].dtype == np.float64
    assert traffic.dataset.columns["sqft"].shape == (0,)
    assert traffic.dataset.target.dtype == np.float64
    assert traffic.dataset.matrix(regression.feature_names).shape == (0, len(HOUSE))


def test_rows_without_a_prediction_id_are_counted_as_malformed(regression: ModelConfig) -> None:
    (pid,), rows = captured([HOUSE])
    traffic = join([*rows, {"inputs": HOUSE}], [*labeled({pid: 1.0}), {"actual": 2.0}], regression)
    assert (traffic.joined, traffic.malformed_rows) == (1, 2)
    assert traffic.counts()["malformed_rows"] == 2
