"""The template's state machines on moto's server: created from the template (DefinitionUri,
DefinitionSubstitutions, !Ref / !GetAtt), executions started through the Step Functions API run
by the interpreter, their end written back so DescribeExecution answers as AWS does."""

from __future__ import annotations

import json
import logging
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer

from mlops.errors import ConfigError
from mlops_cli.emulator.stack import free_port
from mlops_cli.emulator.states.service import (
    StateMachines,
    function_resolver,
    load_state_machines,
    name_state_machines,
)
from mlops_cli.emulator.template import ACCOUNT, REGION, Resolver
from tests.states.conftest import FakeRuntime, HandlerError

STACK = "mlops-local"


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def sfn(endpoint: str) -> Iterator[Any]:
    yield boto3.client(
        "stepfunctions",
        region_name=REGION,
        endpoint_url=endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    request = urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST")
    urllib.request.urlopen(request, timeout=5).close()


def _resources(**props: Any) -> list[tuple[str, dict[str, Any]]]:
    base = {
        "DefinitionUri": "order.json",
        "DefinitionSubstitutions": {"Fn": {"Fn::GetAtt": ["Scorer", "Arn"]}},
    }
    return [("Scoring", {**base, **props})]


def _resolver() -> Resolver:
    resolver = Resolver({}, {})
    resolver.refs["Scorer"] = f"{STACK}-Scorer"
    resolver.attrs[("Scorer", "Arn")] = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{STACK}-Scorer"
    return resolver


def _stack(
    endpoint: str, runtime: FakeRuntime, definition: dict[str, Any], tmp_path: Path
) -> StateMachines:
    (tmp_path / "machine.json").write_text(json.dumps(definition))
    resolver = _resolver()
    resources = _resources(DefinitionUri="machine.json")
    name_state_machines(resources, resolver, STACK)
    machines = load_state_machines(resources, resolver, tmp_path, ["Scorer"])
    service = StateMachines(machines, runtime, function_resolver(resolver, ["Scorer"]), endpoint)
    service.create()
    service.start()
    return service


def _machine(task: dict[str, Any]) -> dict[str, Any]:
    return {"StartAt": "Score", "States": {"Score": {"Type": "Task", **task, "End": True}}}


def _wait(sfn: Any, arn: str) -> dict[str, Any]:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        described = sfn.describe_execution(executionArn=arn)
        if described["status"] != "RUNNING":
            return dict(described)
        time.sleep(0.05)
    raise AssertionError(f"{arn} still RUNNING")


def test_an_execution_runs_and_describe_answers_its_output(
    endpoint: str, sfn: Any, tmp_path: Path
) -> None:
    # Given a machine whose Task's function comes from DefinitionSubstitutions (!GetAtt .Arn)
    runtime = FakeRuntime({"Scorer": lambda event: {"scored": event["n"] * 2}})
    definition = _machine(
        {
            "Resource": "arn:aws:states:::lambda:invoke",
            "Parameters": {"FunctionName": "${Fn}", "Payload.$": "$"},
            "OutputPath": "$.Payload",
        }
    )
    service = _stack(endpoint, runtime, definition, tmp_path)
    try:
        # When a client starts an execution through the Step Functions API
        arn = f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{STACK}-Scoring"
        started = sfn.start_execution(stateMachineArn=arn, input=json.dumps({"n": 21}))
        described = _wait(sfn, started["executionArn"])
    finally:
        service.stop()
    # Then the function ran once and DescribeExecution answers SUCCEEDED with the real output
    assert runtime.calls == [("Scorer", {"n": 21})]
    assert described["status"] == "SUCCEEDED"
    assert json.loads(described["output"]) == {"scored": 42}
    assert described["stopDate"] >= described["startDate"]


def test_a_failed_execution_has_its_error_and_cause(
    endpoint: str, sfn: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    def fail(event: Any) -> Any:
        raise HandlerError("ValueError", "no rows")

    runtime = FakeRuntime({"Scorer": fail})
    definition = _machine({"Resource": "${Fn}"})
    service = _stack(endpoint, runtime, definition, tmp_path)
    try:
        arn = f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{STACK}-Scoring"
        started = sfn.start_execution(stateMachineArn=arn, input="{}")
        described = _wait(sfn, started["executionArn"])
    finally:
        service.stop()
    assert described["status"] == "FAILED"
    assert described["error"] == "ValueError"
    assert json.loads(described["cause"])["errorMessage"] == "no rows"
    # and the stack's log says so
    assert any("FAILED: ValueError" in r.getMessage() for r in caplog.records)


def test_names_and_attributes_resolve() -> None:
    resolver = _resolver()
    name_state_machines(_resources(Name="scorer-machine"), resolver, STACK)
    arn = f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:scorer-machine"
    assert resolver.resolve({"Ref": "Scoring"}) == arn
    assert resolver.resolve({"Fn::GetAtt": ["Scoring", "Arn"]}) == arn
    assert resolver.resolve({"Fn::GetAtt": ["Scoring", "Name"]}) == "scorer-machine"


@pytest.mark.parametrize(
    ("props", "message"),
    [
        (
            {"Events": {"Upload": {"Type": "S3"}}},
            "Scoring (AWS::Serverless::StateMachine): properties ['Events']",
        ),
        (
            {
                "DefinitionSubstitutions": {
                    "Fn": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:Other"
                }
            },
            "function:Other' is not a function of this template",
        ),
        (
            {"Definition": {"StartAt": "A", "States": {}}},
            "exactly one of Definition and DefinitionUri",
        ),
    ],
)
def test_the_stack_refuses_what_it_cannot_run(
    props: dict[str, Any], message: str, tmp_path: Path
) -> None:
    (tmp_path / "machine.json").write_text(json.dumps(_machine({"Resource": "${Fn}"})))
    resolver = _resolver()
    resources = _resources(**{"DefinitionUri": "machine.json", **props})
    if "Definition" in props:
        resources[0][1]["DefinitionUri"] = "machine.json"
    name_state_machines(resources, resolver, STACK)
    with pytest.raises(ConfigError) as refusal:
        load_state_machines(resources, resolver, tmp_path, ["Scorer"])
    assert message in str(refusal.value)


def test_stop_execution_aborts_before_the_next_state(
    endpoint: str, sfn: Any, tmp_path: Path
) -> None:
    # Given an execution whose first task is still running
    entered, release = threading.Event(), threading.Event()

    def score(event: Any) -> Any:
        entered.set()
        release.wait(10)
        return event

    runtime = FakeRuntime({"Scorer": score})
    definition = {
        "StartAt": "First",
        "States": {
            "First": {"Type": "Task", "Resource": "${Fn}", "Next": "Second"},
            "Second": {"Type": "Task", "Resource": "${Fn}", "End": True},
        },
    }
    service = _stack(endpoint, runtime, definition, tmp_path)
    try:
        arn = f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{STACK}-Scoring"
        started = sfn.start_execution(stateMachineArn=arn, input="{}")
        assert entered.wait(10)
        # When it is stopped, then the task returns
        sfn.stop_execution(executionArn=started["executionArn"])
        release.set()
        deadline = time.monotonic() + 10
        while started["executionArn"] in service.running and time.monotonic() < deadline:
            time.sleep(0.02)
        described = sfn.describe_execution(executionArn=started["executionArn"])
    finally:
        service.stop()
    # Then it stays ABORTED and the second task never ran
    assert described["status"] == "ABORTED"
    assert len(runtime.calls) == 1
