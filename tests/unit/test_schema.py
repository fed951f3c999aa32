"""Request validation against a model signature: every problem named by its field."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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


# --- the column-at-a-time check (multi-row requests) agrees with the row-by-row one -----------

VALUES = st.one_of(
    st.integers(min_value=-(10**320), max_value=10**320),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([150, 200, 200.0, 20000, 20000.0, 20000.5, 199.99999, True, False, None]),
    st.text(max_size=4),
    st.sampled_from(["", " ", "\t", "\ud800", "ok\udfff", "riverside", "é"]),
    st.lists(st.integers(), max_size=1),
)
INSTANCE = st.one_of(
    st.fixed_dictionaries(
        {"sqft": VALUES, "bedrooms": VALUES, "location": VALUES},
        optional={"pool": VALUES},
    ),
    st.fixed_dictionaries({"sqft": VALUES, "location": VALUES}),
    st.sampled_from([GOOD, "row", None, 3]),
)


def outcome(check: Any, instances: list[Any]) -> Any:
    try:
        columns = check(instances)
    except InvalidInputError as exc:
        return ("invalid", [(p.field, p.problem) for p in exc.details])
    if columns is None:
        return None
    return {
        name: (column.dtype, column.shape, column.ravel().tolist())
        for name, column in columns.items()
    }


@settings(max_examples=400, deadline=None)
@given(st.lists(INSTANCE, min_size=1, max_size=6))
def test_the_column_check_accepts_exactly_what_the_row_check_accepts(instances: list[Any]) -> None:
    # Given any mix of valid and broken instances
    # When both checks see them
    fast = outcome(SIGNATURE._valid_columns, instances)
    slow = outcome(SIGNATURE._checked_columns, instances)
    # Then the column check never accepts what the row check refuses, and what it returns is
    # exactly the row check's columns (it may decline, and the row check then answers)
    if fast is not None:
        assert fast == slow
    # And the public entry point always answers as the row check does
    assert outcome(lambda rows: SIGNATURE.columns(rows, 10), instances) == slow


@pytest.mark.parametrize(
    "instance",
    [
        GOOD,
        {"sqft": 200, "bedrooms": 0, "location": "x"},  # both bounds inclusive: on the bound
        {"sqft": 20000.0, "bedrooms": -1.5, "location": "é"},
        {"location": "riverside", "bedrooms": 2**64, "sqft": 1234.5},  # key order is free
    ],
)
def test_a_valid_request_is_checked_a_column_at_a_time(instance: dict[str, Any]) -> None:
    # Valid rows take the fast path (the row check runs only to name problems)
    columns = SIGNATURE._valid_columns([instance] * 100)
    assert columns is not None
    assert columns["sqft"].shape == (100, 1)


@pytest.mark.parametrize(
    "bad",
    [
        {"sqft": 199.99999},  # one past the min
        {"sqft": 20000.001},  # one past the max
        {"bedrooms": True},  # a bool is not a number
        {"bedrooms": 10**400},  # an integer beyond float64
        {"bedrooms": float("nan")},
        {"location": " "},
        {"location": "\udfff"},
        {"location": 7},
        {"pool": 1},  # unknown field
    ],
)
def test_one_bad_value_among_many_rows_is_named_by_its_row(bad: dict[str, Any]) -> None:
    instances = [GOOD] * 99 + [{**GOOD, **bad}]
    assert SIGNATURE._valid_columns(instances) is None
    found = problems(instances, max_instances=100)
    assert len(found) == 1
    assert found[0][0].startswith("instances[99].")


def test_a_surrogate_pair_split_across_two_rows_is_still_refused() -> None:
    # "\ud83d" and "\ude00" side by side would read as one emoji if joined as UTF-16
    instances = [{**GOOD, "location": "\ud83d"}, {**GOOD, "location": "\ude00"}]
    assert [field for field, _ in problems(instances)] == [
        "instances[0].location",
        "instances[1].location",
    ]
