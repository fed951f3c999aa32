"""Unsupported ASL is refused when the definition is compiled, naming the state and field."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from mlops_cli.emulator.states.definition import UnsupportedDefinitionError, compile_machine
from tests.states.conftest import definition, resolve_function


def _compile(raw: dict[str, Any]) -> None:
    compile_machine(raw, lambda name: resolve_function(name) is not None)


def _with(name: str, state: str, **fields: Any) -> dict[str, Any]:
    raw = copy.deepcopy(definition(name))
    raw["States"][state].update(fields)
    return raw


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (
            {"StartAt": "P", "States": {"P": {"Type": "Parallel", "Branches": [], "End": True}}},
            "state 'P': Type 'Parallel' is not supported",
        ),
        (
            _with("order", "Score", HeartbeatSeconds=5),
            "state 'Score' (Task): field(s) HeartbeatSeconds",
        ),
        (
            _with("order", "Score", Resource="arn:aws:states:::sqs:sendMessage"),
            "state 'Score'.Resource: 'arn:aws:states:::sqs:sendMessage' is not supported",
        ),
        (
            _with("order", "Score", Resource="arn:aws:states:::lambda:invoke.waitForTaskToken"),
            "state 'Score'.Resource",
        ),
        (
            _with("order", "Score", Parameters={"FunctionName": "Elsewhere", "Payload.$": "$"}),
            "state 'Score'.Parameters.FunctionName: 'Elsewhere' is not a function of this template",
        ),
        (
            _with(
                "order",
                "Score",
                Parameters={"FunctionName": "Scorer", "Payload.$": "States.MathRandom(1, 9)"},
            ),
            "intrinsic function States.MathRandom is not supported",
        ),
        (_with("order", "Score", InputPath="$..rows"), "state 'Score': JSONPath '$..rows'"),
        (_with("order", "Score", InputPath="$.rows[?(@.a)]"), "is not supported locally"),
        (
            _with(
                "choice",
                "Route",
                Choices=[{"Variable": "$.a", "StringContains": "x", "Next": "Large"}],
            ),
            "state 'Route'.Choices[0]: comparison operator 'StringContains'",
        ),
        (_with("order", "Score", Next="Score"), "exactly one of Next and End"),
        (_with("order", "Score", Next="Nowhere", End=None), "transition to 'Nowhere'"),
        ({**definition("order"), "QueryLanguage": "JSONata"}, "QueryLanguage: only JSONPath"),
    ],
)
def test_unsupported_asl_is_refused(raw: dict[str, Any], message: str) -> None:
    for state in raw["States"].values():
        for key in [k for k, v in state.items() if v is None]:
            del state[key]
    with pytest.raises(UnsupportedDefinitionError) as refusal:
        _compile(raw)
    assert message in str(refusal.value)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {
                "ItemReader": {
                    "Resource": "arn:aws:states:::s3:listObjectsV2",
                    "Parameters": {"Bucket": "b"},
                }
            },
            "arn:aws:states:::s3:listObjectsV2",
        ),
        (
            {
                "ItemReader": {
                    "Resource": "arn:aws:states:::s3:getObject",
                    "ReaderConfig": {"InputType": "PARQUET"},
                    "Parameters": {"Bucket": "b", "Key": "k"},
                }
            },
            "InputType: 'PARQUET'",
        ),
        (
            {
                "ResultWriter": {
                    "WriterConfig": {"OutputType": "JSONL"},
                    "Resource": "arn:aws:states:::s3:putObject",
                    "Parameters": {"Bucket": "b"},
                }
            },
            "['WriterConfig'] not supported",
        ),
        ({"ItemBatcher": {"MaxItemsPerBatch": 2, "Mystery": 1}}, "ItemBatcher: fields ['Mystery']"),
    ],
)
def test_unsupported_distributed_map_fields_are_refused(
    change: dict[str, Any], message: str
) -> None:
    raw = _with("csv_map", "ScoreFile", **change)
    with pytest.raises(UnsupportedDefinitionError) as refusal:
        _compile(raw)
    assert "state 'ScoreFile'" in str(refusal.value)
    assert message in str(refusal.value)


def test_an_unsupported_state_inside_a_map_is_named() -> None:
    raw = copy.deepcopy(definition("csv_map"))
    raw["States"]["ScoreFile"]["ItemProcessor"]["States"]["Score"]["Type"] = "Parallel"
    with pytest.raises(UnsupportedDefinitionError, match="state 'Score': Type 'Parallel'"):
        _compile(raw)


def test_the_fixtures_compile() -> None:
    for name in ("order", "retry_catch", "choice", "inline_map", "csv_map"):
        _compile(definition(name))
