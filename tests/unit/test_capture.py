"""Capture and feedback log lines: fast, one line each, split under the event size limit,
validated on the way in (POST /feedback) and on the way out (the prediction logger)."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlops.domain.capture import (
    MalformedRecordError,
    capture_lines,
    capture_rows,
    feedback_line,
    feedback_rows,
    is_evaluation,
    parse_capture_line,
    parse_feedback,
)
from mlops.errors import InvalidInputError, PayloadTooLargeError

INSTANCE = {"sqft": 1850, "bedrooms": 3, "location": "riverside"}
PID = "0f8fad5b-d9cb-469f-a165-70867728950e"
PID2 = "7c9e6679-7425-40de-944b-e07fc1f90ae7"


def ids(n: int) -> list[str]:
    return [str(uuid.UUID(int=i + 1, version=4)) for i in range(n)]


def capture(**overrides: Any) -> list[str]:
    fields: dict[str, Any] = {
        "model": "house-prices",
        "version": "3",
        "alias": "production",
        "variant": "champion",
        "request_id": "req-1",
        "timestamp_ms": 1_700_000_000_000,
        "latency_ms": 0.21,
        "instances": [INSTANCE],
        "prediction_ids": [PID],
        "predictions": [412345.6],
        "probabilities": None,
    }
    return capture_lines(**(fields | overrides))


def strict_json(line: str) -> Any:
    """What a CloudWatch filter pattern accepts: JSON without NaN/Infinity."""

    def reject(name: str) -> Any:
        raise AssertionError(f"{name} in a line")

    return json.loads(line, parse_constant=reject)


def rejected(
    body: Any, task: str = "regression", labels: tuple[str | int, ...] = ()
) -> list[tuple[str, str]]:
    with pytest.raises(InvalidInputError) as caught:
        parse_feedback(body, task=task, labels=labels, max_items=10)
    return [(p.field, p.problem) for p in caught.value.details]


# --- capture_lines ----------------------------------------------------------------------------


def test_a_one_row_request_is_one_compact_line_with_every_field() -> None:
    # Given a one-row regression request
    # When its capture is written
    lines = capture()
    # Then it is one compact JSON line holding the request, in the documented order
    assert len(lines) == 1
    assert "\n" not in lines[0]
    assert ", " not in lines[0]
    record = strict_json(lines[0])
    assert list(record) == [
        "type",
        "schema",
        "model",
        "version",
        "alias",
        "variant",
        "request_id",
        "ts",
        "latency_ms",
        "part",
        "parts",
        "instances",
        "prediction_ids",
        "predictions",
    ]
    assert record["type"] == "capture"
    assert record["schema"] == 1
    assert (record["part"], record["parts"]) == (1, 1)
    assert record["instances"] == [INSTANCE]
    assert record["predictions"] == [412345.6]


def test_classification_captures_carry_probabilities() -> None:
    lines = capture(predictions=["sold"], probabilities=[{"sold": 0.7, "unsold": 0.3}])
    assert strict_json(lines[0])["probabilities"] == [{"sold": 0.7, "unsold": 0.3}]


def test_lines_are_ascii_so_their_length_is_their_size_in_bytes() -> None:
    # Given text that is not ASCII, including a lone surrogate JSON allows
    lines = capture(instances=[{**INSTANCE, "location": "Zürich \ud800 東京"}])
    # Then the line is pure ASCII and decodes back to the same text
    assert lines[0].isascii()
    assert strict_json(lines[0])["instances"][0]["location"] == "Zürich \ud800 東京"


def test_a_non_finite_model_output_is_sent_as_null_not_nan() -> None:
    # NaN is not JSON: the subscription filter would not match the line and it would be lost.
    lines = capture(predictions=[float("nan")])
    assert strict_json(lines[0])["predictions"] == [None]


def test_mismatched_lengths_are_a_programming_error() -> None:
    with pytest.raises(ValueError, match="differ in length"):
        capture(prediction_ids=[PID, PID2])


def test_a_large_request_is_split_into_self_contained_parts() -> None:
    # Given 1000 instances, about 60 KB of JSON, and 10 KB lines
    n = 1000
    instances = [{**INSTANCE, "sqft": 1000 + i} for i in range(n)]
    predictions = [float(i) for i in range(n)]
    # When they are captured
    lines = capture(
        instances=instances, prediction_ids=ids(n), predictions=predictions, max_bytes=10_000
    )
    # Then every line fits, parts are numbered 1..k, and together they hold everything, in order
    records = [parse_capture_line(line) for line in lines]
    assert len(lines) > 1
    assert all(len(line.encode()) <= 10_000 for line in lines)
    assert [r["part"] for r in records] == list(range(1, len(lines) + 1))
    assert {r["parts"] for r in records} == {len(lines)}
    assert {r["request_id"] for r in records} == {"req-1"}
    assert [x for r in records for x in r["instances"]] == instances
    assert [x for r in records for x in r["prediction_ids"]] == ids(n)
    assert [x for r in records for x in r["predictions"]] == predictions


def test_an_instance_too_big_for_a_line_is_sent_without_its_inputs() -> None:
    # Given a request whose middle instance alone exceeds the line size
    huge = {**INSTANCE, "location": "x" * 5000}
    lines = capture(
        instances=[INSTANCE, huge, INSTANCE],
        prediction_ids=ids(3),
        predictions=[1.0, 2.0, 3.0],
        probabilities=[{"a": 1.0}] * 3,
        max_bytes=2000,
    )
    # Then it gets a line of its own with its id and outputs but no inputs, marked truncated
    records = [parse_capture_line(line) for line in lines]
    assert all(len(line) <= 2000 for line in lines)
    truncated = [r for r in records if r.get("truncated")]
    assert len(truncated) == 1
    assert truncated[0]["instances"] is None
    assert truncated[0]["prediction_ids"] == [ids(3)[1]]
    assert truncated[0]["predictions"] == [2.0]
    # And nothing else is lost, in order
    assert [x for r in records for x in r["prediction_ids"]] == ids(3)


@settings(derandomize=True, deadline=None, max_examples=60)
@given(
    sizes=st.lists(st.integers(0, 900), min_size=1, max_size=40),
    max_bytes=st.integers(600, 3000),
)
def test_splitting_never_exceeds_the_limit_nor_loses_a_prediction(
    sizes: list[int], max_bytes: int
) -> None:
    # Given instances of random sizes, some larger than a line
    n = len(sizes)
    instances = [{"location": "y" * size, "sqft": i} for i, size in enumerate(sizes)]
    # When they are captured
    lines = capture(
        instances=instances, prediction_ids=ids(n), predictions=list(range(n)), max_bytes=max_bytes
    )
    # Then every line fits and parses, and every prediction is there once, with its own inputs
    records = [parse_capture_line(line) for line in lines]
    assert all(len(line) <= max_bytes for line in lines)
    rows = [row for r in records for row in capture_rows(r)]
    assert [row["prediction_id"] for row in rows] == ids(n)
    for i, row in enumerate(rows):
        assert row["prediction"] == i
        assert row["inputs"] in (instances[i], None)
        assert (row["inputs"] is None) == row.get("truncated", False)


# --- feedback lines ---------------------------------------------------------------------------


def test_feedback_is_one_line_per_request_and_split_when_large() -> None:
    items = [{"prediction_id": pid, "actual": 400_000 + i} for i, pid in enumerate(ids(300))]
    one = feedback_line(model="house-prices", timestamp_ms=1, items=items[:1])
    many = feedback_line(model="house-prices", timestamp_ms=1, items=items, max_bytes=2000)
    assert strict_json(one[0]) == {
        "type": "feedback",
        "schema": 1,
        "model": "house-prices",
        "ts": 1,
        "feedback": items[:1],
    }
    assert len(many) > 1
    assert all(len(line) <= 2000 for line in many)
    rows = [row for line in many for row in feedback_rows(parse_capture_line(line))]
    assert [(r["prediction_id"], r["actual"]) for r in rows] == [
        (i["prediction_id"], i["actual"]) for i in items
    ]
    assert rows[0] == {
        "prediction_id": ids(1)[0],
        "actual": 400_000,
        "ts": 1,
        "model": "house-prices",
    }


# --- parse_feedback ---------------------------------------------------------------------------


def test_a_single_label_and_a_batch_are_both_accepted() -> None:
    single = parse_feedback(
        {"prediction_id": PID, "actual": 405000}, task="regression", labels=(), max_items=10
    )
    batch = parse_feedback(
        {"feedback": [{"prediction_id": PID, "actual": 1.5}, {"prediction_id": PID2, "actual": 2}]},
        task="regression",
        labels=(),
        max_items=10,
    )
    assert single == [{"prediction_id": PID, "actual": 405000}]
    assert batch == [{"prediction_id": PID, "actual": 1.5}, {"prediction_id": PID2, "actual": 2}]


@pytest.mark.parametrize(
    ("body", "field", "problem_start"),
    [
        ({"prediction_id": PID}, "actual", "missing required field"),
        ({"actual": 1}, "prediction_id", "missing required field"),
        ({"prediction_id": PID, "actual": 1, "extra": 1}, "extra", "unknown field"),
        ({"prediction_id": PID.upper(), "actual": 1}, "prediction_id", "expected a prediction id"),
        ({"prediction_id": PID.replace("-", ""), "actual": 1}, "prediction_id", "expected a"),
        ({"prediction_id": 42, "actual": 1}, "prediction_id", "expected a prediction id"),
        ({"prediction_id": PID, "actual": "405000"}, "actual", "expected a finite number"),
        ({"prediction_id": PID, "actual": True}, "actual", "expected a finite number"),
        ({"prediction_id": PID, "actual": None}, "actual", "expected a finite number"),
        ({"prediction_id": PID, "actual": float("inf")}, "actual", "expected a finite number"),
        ({"prediction_id": PID, "actual": 10**400}, "actual", "expected a finite number"),
        ({"feedback": [], "x": 1}, "x", "unknown field"),
        ({"feedback": []}, "feedback", "expected a non-empty list"),
        ({"feedback": {"prediction_id": PID}}, "feedback", "expected a non-empty list"),
        ({"feedback": [1]}, "feedback[0]", "expected an object"),
        ({"feedback": [{"prediction_id": PID, "actual": 1, "y": 2}]}, "feedback[0].y", "unknown"),
    ],
)
def test_each_bad_regression_label_is_reported_with_its_field(
    body: dict[str, Any], field: str, problem_start: str
) -> None:
    found = rejected(body)
    assert any(f == field and p.startswith(problem_start) for f, p in found), found


def test_a_body_that_is_not_an_object_is_rejected() -> None:
    assert rejected([{"prediction_id": PID, "actual": 1}])[0][0] == "body"


def test_every_problem_of_a_batch_is_listed_by_its_path() -> None:
    # Given a batch with problems in two items, and a duplicate id
    body = {
        "feedback": [
            {"prediction_id": PID, "actual": 1},
            {"prediction_id": "nope", "actual": "x"},
            {"prediction_id": PID, "actual": 2},
            {"prediction_id": PID2, "actual": 3},
        ]
    }
    # Then each is named, in order
    assert [f for f, _ in rejected(body)] == [
        "feedback[1].prediction_id",
        "feedback[1].actual",
        "feedback[2].prediction_id",
    ]
    assert rejected(body)[2][1] == "duplicate of feedback[0]"


def test_the_problem_list_is_capped_but_the_count_is_exact() -> None:
    body = {"feedback": [{"prediction_id": "bad", "actual": "bad"}] * 40}
    with pytest.raises(InvalidInputError) as caught:
        parse_feedback(body, task="regression", labels=(), max_items=100)
    assert len(caught.value.details) == 50
    assert caught.value.message == "80 problems in feedback (first 50 listed)"


def test_more_items_than_the_limit_is_payload_too_large() -> None:
    body = {"feedback": [{"prediction_id": PID, "actual": 1}] * 11}
    with pytest.raises(PayloadTooLargeError):
        parse_feedback(body, task="regression", labels=(), max_items=10)


@pytest.mark.parametrize(
    ("labels", "actual", "ok"),
    [
        ((0, 1), 1, True),
        ((0, 1), "1", False),  # an integer class is not its text
        ((0, 1), 1.0, False),
        ((0, 1), True, False),  # True == 1 in Python, not in the model
        ((0, 1), 2, False),
        (("sold", "unsold"), "sold", True),
        (("sold", "unsold"), "SOLD", False),
        (("1", "2"), 1, False),  # a text class is not a number
        (("1", "2"), "1", True),
    ],
)
def test_classification_labels_must_be_a_class_in_its_trained_type(
    labels: tuple[str | int, ...], actual: Any, ok: bool
) -> None:
    body = {"prediction_id": PID, "actual": actual}
    if ok:
        items = parse_feedback(body, task="classification", labels=labels, max_items=1)
        assert items == [body]
    else:
        [(field, problem)] = rejected(body, task="classification", labels=labels)
        assert field == "actual"
        assert problem.startswith("expected")


def test_a_label_that_only_differs_in_type_says_which_type() -> None:
    [(_, problem)] = rejected(
        {"prediction_id": PID, "actual": "1"}, task="classification", labels=(0, 1)
    )
    assert problem == 'expected the class 1, got "1"'


# --- parse_capture_line and rows --------------------------------------------------------------


def test_captured_lines_parse_into_one_flat_row_per_prediction() -> None:
    line = capture(
        instances=[INSTANCE, {**INSTANCE, "sqft": 900}],
        prediction_ids=[PID, PID2],
        predictions=["sold", "unsold"],
        probabilities=[{"sold": 0.9, "unsold": 0.1}, {"sold": 0.2, "unsold": 0.8}],
    )[0]
    rows = capture_rows(parse_capture_line(line))
    assert rows[1] == {
        "prediction_id": PID2,
        "request_id": "req-1",
        "ts": 1_700_000_000_000,
        "model": "house-prices",
        "version": "3",
        "variant": "champion",
        "inputs": {**INSTANCE, "sqft": 900},
        "prediction": "unsold",
        "latency_ms": 0.21,
        "probabilities": {"sold": 0.2, "unsold": 0.8},
    }
    assert "probabilities" not in capture_rows(parse_capture_line(capture()[0]))[0]
    assert "candidate_error" not in rows[0]


def test_a_failed_candidate_is_carried_on_the_rows_production_answered() -> None:
    record = parse_capture_line(capture()[0]) | {"candidate_error": "RuntimeError: boom"}
    assert [row["candidate_error"] for row in capture_rows(record)] == ["RuntimeError: boom"]
    record["candidate_error"] = 7  # not a message: ignored rather than stored
    assert "candidate_error" not in capture_rows(record)[0]


def test_an_evaluation_capture_says_so_on_every_line_and_row_and_live_ones_say_nothing() -> None:
    # Live lines are byte for byte what they were before the field: old readers see no change
    assert "source" not in strict_json(capture()[0])
    [line] = capture(evaluation=True)
    assert strict_json(line)["source"] == "evaluation"
    assert [row["source"] for row in capture_rows(parse_capture_line(line))] == ["evaluation"]
    parts = capture(
        instances=[INSTANCE] * 40, prediction_ids=ids(40), predictions=[1.0] * 40,
        evaluation=True, max_bytes=600,
    )  # fmt: skip
    assert len(parts) > 1
    assert {strict_json(part)["source"] for part in parts} == {"evaluation"}


@pytest.mark.parametrize("source", ["live", "evaluation"])
def test_the_strict_parser_accepts_either_source_and_a_record_without_one(source: str) -> None:
    rows = capture_rows(parse_capture_line(json.dumps({**GOOD_LINE, "source": source})))
    assert is_evaluation(rows[0]) is (source == "evaluation")
    assert not is_evaluation(capture_rows(parse_capture_line(json.dumps(GOOD_LINE)))[0])


GOOD_LINE = strict_json(capture()[0])


@pytest.mark.parametrize(
    ("message", "field"),
    [
        ("not json", "message"),
        ('{"type":"capture","ts":NaN}', "message"),
        ("[1]", "message"),
        (json.dumps({**GOOD_LINE, "type": "other"}), "type"),
        (json.dumps({**GOOD_LINE, "schema": 2}), "schema"),
        (json.dumps({**GOOD_LINE, "schema": True}), "schema"),
        (json.dumps({k: v for k, v in GOOD_LINE.items() if k != "version"}), "version"),
        (json.dumps({**GOOD_LINE, "ts": "yesterday"}), "ts"),
        (json.dumps({**GOOD_LINE, "model": ""}), "model"),
        (json.dumps({**GOOD_LINE, "part": 2}), "part"),
        (json.dumps({**GOOD_LINE, "instances": None}), "instances"),
        (json.dumps({**GOOD_LINE, "instances": [1]}), "instances[0]"),
        (json.dumps({**GOOD_LINE, "prediction_ids": [PID, PID2]}), "prediction_ids"),
        (json.dumps({**GOOD_LINE, "prediction_ids": [7]}), "prediction_ids[0]"),
        (json.dumps({**GOOD_LINE, "probabilities": [{}, {}]}), "prediction_ids"),
        (json.dumps({**GOOD_LINE, "truncated": "yes"}), "truncated"),
        (json.dumps({**GOOD_LINE, "source": "holdout"}), "source"),
        (json.dumps({**GOOD_LINE, "source": None}), "source"),
        (json.dumps({**GOOD_LINE, "source": True}), "source"),
        (json.dumps({"type": "feedback", "schema": 1, "model": "m", "ts": 1}), "feedback"),
        (
            json.dumps({"type": "feedback", "schema": 1, "model": "m", "ts": 1, "feedback": [{}]}),
            "feedback[0].prediction_id",
        ),
    ],
)
def test_a_malformed_line_is_refused_naming_what_is_wrong(message: str, field: str) -> None:
    with pytest.raises(MalformedRecordError) as caught:
        parse_capture_line(message)
    assert field in [p.field for p in caught.value.details], caught.value.details
    assert isinstance(caught.value, InvalidInputError)


def test_unknown_keys_in_a_line_are_tolerated_for_rolling_deploys() -> None:
    record = parse_capture_line(json.dumps({**GOOD_LINE, "added_later": 1}))
    assert record["added_later"] == 1
