"""The interpreter on small fixture definitions: JSONPath order, Retry/Catch, Choice, Pass,
Wait, Fail, intrinsic functions and inline Map, with a fake runtime and a clock that never
sleeps."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from mlops_cli.emulator.states.interpreter import StatesError
from tests.states.conftest import HandlerError, Kit, definition


def test_jsonpath_fields_apply_in_aws_order(kit: Kit) -> None:
    # Given a Task with InputPath, Parameters, ResultSelector, ResultPath and OutputPath
    kit.runtime.handlers["Scorer"] = lambda event: {"scored": len(event["rows"]), "echo": event}
    data = {"job": {"name": "march", "rows": [1, 2, 3]}, "outside": True}

    # When it runs
    output = kit.run(definition("order"), data)

    # Then the function got Parameters built on InputPath's slice, with intrinsics and $$
    ((function, event),) = kit.runtime.calls
    assert function == "Scorer"
    assert event["rows"] == [1, 2, 3]
    assert event["label"] == "3 rows of march"
    assert event["state"] == "Score"
    assert len(event["execution"]) == 36  # the execution's name, a UUID
    # and ResultSelector shaped lambda:invoke's result before ResultPath placed it in the
    # state's raw input and OutputPath cut it
    assert output == {"name": "march", "rows": [1, 2, 3], "result": {"scored": 3, "status": 200}}


def test_a_missing_path_fails_with_states_runtime(kit: Kit) -> None:
    kit.runtime.handlers["Scorer"] = lambda event: {}
    with pytest.raises(StatesError) as failure:
        kit.run(definition("order"), {"job": {"name": "x"}})
    assert failure.value.error == "States.Runtime"
    assert "$.rows" in failure.value.cause
    assert kit.runtime.calls == []


def test_result_path_into_a_non_object_is_a_result_path_match_failure(kit: Kit) -> None:
    raw = {
        "StartAt": "P",
        "States": {"P": {"Type": "Pass", "Result": 1, "ResultPath": "$.a.b", "End": True}},
    }
    with pytest.raises(StatesError) as failure:
        kit.run(raw, {"a": "text"})
    assert failure.value.error == "States.ResultPathMatchFailure"


def _flaky(errors: list[str]) -> Any:
    remaining = list(errors)

    def handler(event: Any) -> Any:
        if remaining:
            raise HandlerError(remaining.pop(0), "planned")
        return {**event, "scored": True}

    return handler


def test_retry_backs_off_then_succeeds(kit: Kit) -> None:
    # Given a function throttled twice
    kit.runtime.handlers["Flaky"] = _flaky(["Throttled", "Throttled"])
    output = kit.run(definition("retry_catch"), {"id": 1})
    # Then it was retried after 2 s then 6 s (IntervalSeconds x BackoffRate^n) and succeeded
    assert kit.clock.sleeps == [2.0, 6.0]
    assert output == {"id": 1, "scored": True}
    assert len(kit.runtime.calls) == 3


def test_retry_delay_is_capped_and_attempts_are_bounded(kit: Kit) -> None:
    # Given a function throttled 4 times: 3 retries allowed (2, 6, then 18 capped at 10)
    kit.runtime.handlers["Flaky"] = _flaky(["Throttled"] * 4)
    with pytest.raises(StatesError) as failure:
        kit.run(definition("retry_catch"), {"id": 1})
    assert kit.clock.sleeps == [2.0, 6.0, 10.0]
    # and once the first matching retrier is spent the error goes to Catch (States.ALL →
    # Crashed, a Fail state that reports it from the error object)
    assert failure.value.error == "Throttled"
    assert '"errorMessage": "planned"' in failure.value.cause


def test_retry_exactly_at_max_attempts_succeeds(kit: Kit) -> None:
    kit.runtime.handlers["Flaky"] = _flaky(["Throttled"] * 3)
    assert kit.run(definition("retry_catch"), {"id": 1}) == {"id": 1, "scored": True}
    assert kit.clock.sleeps == [2.0, 6.0, 10.0]


def test_catch_places_the_error_with_its_result_path(kit: Kit) -> None:
    kit.runtime.handlers["Flaky"] = _flaky(["BadInput"])
    output = kit.run(definition("retry_catch"), {"id": 7})
    # States.ALL's retrier ran once first (BadInput matched it), then Catch took it
    assert kit.clock.sleeps == [1.0]
    kit.runtime.handlers["Flaky"] = _flaky(["BadInput", "BadInput"])
    output = kit.run(definition("retry_catch"), {"id": 7})
    assert output["outcome"] == "rejected"
    assert output["error"]["Error"] == "BadInput"
    assert output["id"] == 7


def test_states_all_does_not_catch_states_runtime(kit: Kit) -> None:
    raw = copy.deepcopy(definition("retry_catch"))
    raw["States"]["Score"]["InputPath"] = "$.missing"
    with pytest.raises(StatesError) as failure:
        kit.run(raw, {"id": 1})
    assert failure.value.error == "States.Runtime"
    assert kit.clock.sleeps == []  # not retried either


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"size": 11, "threshold": 10}, "large"),
        ({"size": 10, "threshold": 10, "key": "batch/a.csv"}, "small"),
        ({"key": "batch/a.json", "when": "2026-03-01T00:00:00Z"}, "recent"),
        ({"key": "k", "when": "2025-12-31T23:59:59Z", "flag": True}, "flagged"),
        ({"key": "k", "when": "2025-12-31T23:59:59Z", "flag": "true"}, "other"),
    ],
)
def test_choice_rules(kit: Kit, data: dict[str, Any], expected: str) -> None:
    assert kit.run(definition("choice"), data) == expected


def test_choice_without_match_or_default_fails(kit: Kit) -> None:
    raw = copy.deepcopy(definition("choice"))
    del raw["States"]["Route"]["Default"]
    with pytest.raises(StatesError) as failure:
        kit.run(raw, {"key": "k", "when": "2020-01-01T00:00:00Z", "flag": False})
    assert failure.value.error == "States.NoChoiceMatched"


def test_choice_on_a_missing_variable_is_a_runtime_error(kit: Kit) -> None:
    raw = {
        "StartAt": "C",
        "States": {
            "C": {
                "Type": "Choice",
                "Choices": [{"Variable": "$.x", "NumericEquals": 1, "Next": "S"}],
                "Default": "S",
            },
            "S": {"Type": "Succeed"},
        },
    }
    with pytest.raises(StatesError) as failure:
        kit.run(raw, {})
    assert failure.value.error == "States.Runtime"


def test_wait_uses_the_clock(kit: Kit) -> None:
    raw = {
        "StartAt": "W",
        "States": {
            "W": {"Type": "Wait", "SecondsPath": "$.pause", "Next": "U"},
            "U": {"Type": "Wait", "Timestamp": "2026-12-07T12:10:00Z", "End": True},
        },
    }
    assert kit.run(raw, {"pause": 30}) == {"pause": 30}
    assert kit.clock.sleeps == [30.0, 570.0]


def test_execution_timeout(kit: Kit) -> None:
    raw = {
        "TimeoutSeconds": 60,
        "StartAt": "W",
        "States": {
            "W": {"Type": "Wait", "Seconds": 60, "Next": "S"},
            "S": {"Type": "Succeed"},
        },
    }
    with pytest.raises(StatesError) as failure:
        kit.run(raw, {})
    assert failure.value.error == "States.Timeout"


def test_intrinsics(kit: Kit) -> None:
    raw = {
        "StartAt": "P",
        "States": {
            "P": {
                "Type": "Pass",
                "Parameters": {
                    "parsed.$": "States.StringToJson($.text)",
                    "text.$": "States.JsonToString($.object)",
                    "count.$": "States.ArrayLength($.list)",
                    "id.$": "States.UUID()",
                    "quoted.$": "States.Format('it\\'s {} \\{x\\}', $.list[1])",
                    "chunks.$": "States.ArrayPartition($.list, 2)",
                },
                "End": True,
            }
        },
    }
    out = kit.run(raw, {"text": '{"a": [1]}', "object": {"b": 2}, "list": [1, "two", 3]})
    assert out["parsed"] == {"a": [1]}
    assert out["text"] == '{"b":2}'
    assert out["count"] == 3
    assert len(out["id"]) == 36
    assert out["quoted"] == "it's two {x}"
    assert out["chunks"] == [[1, "two"], [3]]


def test_a_failing_intrinsic_is_an_intrinsic_failure(kit: Kit) -> None:
    raw = {
        "StartAt": "P",
        "States": {
            "P": {"Type": "Pass", "Parameters": {"v.$": "States.StringToJson($.t)"}, "End": True}
        },
    }
    with pytest.raises(StatesError) as failure:
        kit.run(raw, {"t": "{not json"})
    assert failure.value.error == "States.IntrinsicFailure"


def test_inline_map_keeps_item_order_and_bounds_concurrency(kit: Kit) -> None:
    kit.runtime.handlers["Scorer"] = lambda event: {"i": event["index"], "v": event["row"] * 2}
    out = kit.run(definition("inline_map"), {"model": "m", "rows": list(range(10))})
    assert out["scored"] == [{"i": i, "v": i * 2} for i in range(10)]
    assert kit.runtime.most_in_flight <= 2
    assert all(event["model"] == "m" for _, event in kit.runtime.calls)


def test_inline_map_fails_with_an_iterations_error(kit: Kit) -> None:
    def score(event: Any) -> Any:
        if event["row"] == 3:
            raise HandlerError("ValueError", "row 3")
        return {}

    kit.runtime.handlers["Scorer"] = score
    with pytest.raises(StatesError) as failure:
        kit.run(definition("inline_map"), {"model": "m", "rows": [1, 2, 3]})
    assert failure.value.error == "ValueError"


def test_fail_state(kit: Kit) -> None:
    raw = {"StartAt": "F", "States": {"F": {"Type": "Fail", "Error": "Bad", "Cause": "why"}}}
    with pytest.raises(StatesError) as failure:
        kit.run(raw, {})
    assert (failure.value.error, failure.value.cause) == ("Bad", "why")
