"""Request validation against a model signature: every problem named by its field."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from mlops.domain.schema import Feature, Signature
from mlops.errors import InvalidInputError, PayloadTooLargeError

SIGNATURE = Signature(
    (
        Feature("sqft", "numeric", min=200, max=20000),
        Feature("bedrooms", "numeric"),
        Feature("location", "categorical", categories=("downtown", "riverside")),
    )
)
GOOD = {"sqft": 1850, "bedrooms": 3, "location": "riverside"}


def problems(instances: Any, max_instances: int = 10) -> list[tuple[str, str]]:
    with pytest.raises(InvalidInputError) as caught:
        SIGNATURE.columns(instances, max_instances)
    return [(p.field, p.problem) for p in caught.value.details]


def test_valid_instances_become_one_column_per_feature() -> None:
    # Given two valid instances, one with an unseen category (allowed: drift tracks it)
    instances = [GOOD, {"sqft": 900.5, "bedrooms": 1, "location": "harbor"}]
    # When they are validated
    columns = SIGNATURE.columns(instances, max_instances=10)
    # Then each feature is an (n, 1) column of the ONNX input type
    assert columns["sqft"].dtype == np.float64
    assert columns["sqft"].shape == (2, 1)
    assert columns["sqft"].ravel().tolist() == [1850.0, 900.5]
    assert columns["location"].ravel().tolist() == ["riverside", "harbor"]


@pytest.mark.parametrize(
    ("instance", "field", "problem_start"),
    [
        ({**GOOD, "sqft": "abc"}, "instances[0].sqft", 'expected a finite number, got "abc"'),
        ({**GOOD, "sqft": None}, "instances[0].sqft", "expected a finite number, got null"),
        ({**GOOD, "sqft": True}, "instances[0].sqft", "expected a finite number, got a boolean"),
        ({**GOOD, "sqft": float("nan")}, "instances[0].sqft", "expected a finite number, got nan"),
        ({**GOOD, "sqft": float("inf")}, "instances[0].sqft", "expected a finite number, got inf"),
        ({**GOOD, "sqft": [1]}, "instances[0].sqft", "expected a finite number, got a list"),
        ({**GOOD, "sqft": 100}, "instances[0].sqft", "must be >= 200, got 100"),
        ({**GOOD, "sqft": 20000.5}, "instances[0].sqft", "must be <= 20000, got 20000.5"),
        ({**GOOD, "location": 3}, "instances[0].location", "expected a string, got 3"),
        ({**GOOD, "location": " "}, "instances[0].location", "expected a non-empty string"),
        ({"sqft": 1000, "bedrooms": 2}, "instances[0].location", "missing required field"),
        ({**GOOD, "pool": True}, "instances[0].pool", "unknown field"),
    ],
)
def test_each_bad_value_is_reported_with_its_field(
    instance: dict[str, Any], field: str, problem_start: str
) -> None:
    assert problems([instance]) == [(field, problem_start)]


def test_all_problems_across_instances_are_reported_together() -> None:
    found = problems([GOOD, {"sqft": "x", "location": "downtown"}, "not an object"])
    assert found == [
        ("instances[1].sqft", 'expected a finite number, got "x"'),
        ("instances[1].bedrooms", "missing required field"),
        ("instances[2]", "expected an object, got a string"),
    ]


@pytest.mark.parametrize(
    ("instances", "problem"),
    [
        ([], "expected at least one instance"),
        ({"sqft": 1}, "expected a list of objects, got an object"),
        ("rows", "expected a list of objects, got a string"),
        (None, "expected a list of objects, got null"),
    ],
)
def test_instances_must_be_a_non_empty_list(instances: Any, problem: str) -> None:
    assert problems(instances) == [("instances", problem)]


def test_more_instances_than_allowed_is_payload_too_large() -> None:
    with pytest.raises(PayloadTooLargeError) as caught:
        SIGNATURE.columns([GOOD] * 11, max_instances=10)
    assert caught.value.details[0].field == "instances"


def test_a_huge_bad_batch_reports_a_bounded_number_of_problems() -> None:
    found = problems([{"x": 1}] * 500, max_instances=1000)
    assert 0 < len(found) <= 60


def test_signature_round_trips_through_its_dict_form() -> None:
    assert Signature.from_dict(SIGNATURE.as_dict()) == SIGNATURE
    assert SIGNATURE.as_dict()["features"][0] == {
        "name": "sqft",
        "type": "numeric",
        "min": 200.0,
        "max": 20000.0,
    }
