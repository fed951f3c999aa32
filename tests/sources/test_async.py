"""Lambda's asynchronous invocation: retries, event age, dead-letter queue, destinations."""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from mlops.errors import ConfigError
from mlops_cli.emulator.runtime import Invocation
from mlops_cli.emulator.sources.async_invoke import AsyncConfig, Destination, async_configs
from tests.sources.conftest import Aws, Running, fail, local_resolver, stack_template, succeed

EVENT = {"job": "retrain", "month": 3}
FAILED_QUEUE_ARN = "arn:aws:sqs:us-east-1:123456789012:mlops-local-FailedEventsQueue"


def _fails_first(n_failures: int) -> Callable[[str, Any, int], Invocation]:
    def script(function: str, event: Any, n: int) -> Invocation:
        return fail("boom") if n <= n_failures else succeed({"done": True})

    return script


def _wait_idle(running: Running, timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while running.sources.pending_async and time.monotonic() < deadline:
        time.sleep(0.02)
    assert running.sources.pending_async == 0


def test_two_failures_then_success_is_three_attempts_and_no_dead_letter(
    aws: Aws, start_sources: Callable[..., Running]
) -> None:
    running = start_sources("RetrainFunction", script=_fails_first(2))
    running.sources.invoke_async("RetrainFunction", EVENT)
    events = running.invoker.wait_for("RetrainFunction", 3)
    _wait_idle(running)
    assert events == [EVENT, EVENT, EVENT]
    assert aws.receive_all("FailedEventsQueue", wait=0) == []


def test_exhausted_retries_send_the_event_to_the_dead_letter_queue(
    aws: Aws, start_sources: Callable[..., Running]
) -> None:
    # Given a function that always fails, with a DLQ and two retries
    running = start_sources("RetrainFunction", script=_fails_first(99))
    # When an event is invoked asynchronously
    request_id = running.sources.invoke_async("RetrainFunction", EVENT)
    # Then it is attempted three times, then dead-lettered with Lambda's attributes
    running.invoker.wait_for("RetrainFunction", 3)
    _wait_idle(running)
    (message,) = aws.receive_all("FailedEventsQueue")
    assert json.loads(message["Body"]) == EVENT
    assert message["MessageAttributes"] == {
        "RequestID": {"StringValue": request_id, "DataType": "String"},
        "ErrorCode": {"StringValue": "200", "DataType": "Number"},
        "ErrorMessage": {"StringValue": "boom", "DataType": "String"},
    }
    assert len(running.invoker.events_for("RetrainFunction")) == 3


def test_retries_wait_the_retry_delays(start_sources: Callable[..., Running]) -> None:
    stamps: list[float] = []

    def script(function: str, event: Any, n: int) -> Invocation:
        stamps.append(time.monotonic())
        return fail()

    running = start_sources("RetrainFunction", script=script, retry_delays=(0.3, 0.6))
    running.sources.invoke_async("RetrainFunction", EVENT)
    running.invoker.wait_for("RetrainFunction", 3)
    assert stamps[1] - stamps[0] >= 0.3
    assert stamps[2] - stamps[1] >= 0.6


def test_the_error_message_attribute_is_cut_to_1_kb(
    aws: Aws, start_sources: Callable[..., Running]
) -> None:
    running = start_sources("RetrainFunction", script=lambda function, event, n: fail("x" * 5000))
    running.sources.invoke_async("RetrainFunction", EVENT)
    running.invoker.wait_for("RetrainFunction", 3)
    _wait_idle(running)
    (message,) = aws.receive_all("FailedEventsQueue")
    assert message["MessageAttributes"]["ErrorMessage"]["StringValue"] == "x" * 1024


def test_zero_retries_is_one_attempt_then_the_on_failure_record(
    aws: Aws, start_sources: Callable[..., Running]
) -> None:
    running = start_sources("NoRetryFunction", script=_fails_first(99))
    request_id = running.sources.invoke_async("NoRetryFunction", EVENT)
    running.invoker.wait_for("NoRetryFunction", 1)
    _wait_idle(running)
    (message,) = aws.receive_all("FailedEventsQueue")
    record = json.loads(message["Body"])
    assert list(record) == [
        "version",
        "timestamp",
        "requestContext",
        "requestPayload",
        "responseContext",
        "responsePayload",
    ]
    assert record["version"] == "1.0"
    assert record["requestContext"] == {
        "requestId": request_id,
        "functionArn": "arn:aws:lambda:us-east-1:123456789012:function:"
        "mlops-local-NoRetryFunction:$LATEST",
        "condition": "RetriesExhausted",
        "approximateInvokeCount": 1,
    }
    assert record["requestPayload"] == EVENT
    assert record["responseContext"] == {
        "statusCode": 200,
        "executedVersion": "$LATEST",
        "functionError": "Unhandled",
    }
    assert record["responsePayload"]["errorMessage"] == "boom"
    assert len(running.invoker.events_for("NoRetryFunction")) == 1


def test_on_success_gets_the_response(aws: Aws, start_sources: Callable[..., Running]) -> None:
    template = stack_template("NoRetryFunction")
    config = template["Resources"]["NoRetryFunction"]["Properties"]["EventInvokeConfig"]
    config["DestinationConfig"] = {
        "OnSuccess": {"Type": "SQS", "Destination": {"Fn::GetAtt": ["FailedEventsQueue", "Arn"]}}
    }
    running = start_sources(template=template, script=_fails_first(0))
    running.sources.invoke_async("NoRetryFunction", EVENT)
    running.invoker.wait_for("NoRetryFunction", 1)
    _wait_idle(running)
    (message,) = aws.receive_all("FailedEventsQueue")
    record = json.loads(message["Body"])
    assert record["requestContext"]["condition"] == "Success"
    assert record["responseContext"] == {"statusCode": 200, "executedVersion": "$LATEST"}
    assert record["responsePayload"] == {"done": True}


def test_an_event_older_than_the_maximum_age_is_not_retried(
    aws: Aws, start_sources: Callable[..., Running]
) -> None:
    # Given events expire after 1 s and retries wait 0.7 s each
    template = stack_template("RetrainFunction")
    props = template["Resources"]["RetrainFunction"]["Properties"]
    props["EventInvokeConfig"]["MaximumEventAgeInSeconds"] = 1
    running = start_sources(template=template, script=_fails_first(99), retry_delays=(0.7, 0.7))
    running.sources.invoke_async("RetrainFunction", EVENT)
    # Then the third attempt (at 1.4 s) never happens: the event goes to the DLQ
    dead: list[dict[str, Any]] = []
    deadline = time.monotonic() + 4
    while not dead and time.monotonic() < deadline:
        dead = aws.receive_all("FailedEventsQueue")
    assert [json.loads(m["Body"]) for m in dead] == [EVENT]
    assert len(running.invoker.events_for("RetrainFunction")) == 2


def test_without_a_destination_a_lost_event_is_logged(
    start_sources: Callable[..., Running], caplog: pytest.LogCaptureFixture
) -> None:
    running = start_sources("UploadFunction", script=_fails_first(99))
    with caplog.at_level(logging.ERROR, logger="mlops_cli.emulator.sources.async_invoke"):
        request_id = running.sources.invoke_async("UploadFunction", EVENT)
        running.invoker.wait_for("UploadFunction", 3)
        _wait_idle(running)
    (error,) = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert "async invocation failed after 3 attempts" in error
    assert request_id in error


def test_invoke_async_refuses_unknown_functions_and_oversized_events(
    start_sources: Callable[..., Running],
) -> None:
    running = start_sources("RetrainFunction")
    with pytest.raises(ConfigError, match="no function"):
        running.sources.invoke_async("Nope", EVENT)
    with pytest.raises(ConfigError, match="asynchronous limit"):
        running.sources.invoke_async("RetrainFunction", {"blob": "x" * (1024 * 1024)})


def test_async_configs_read_dead_letter_queues_and_destinations() -> None:
    template = stack_template("RetrainFunction", "NoRetryFunction", "UploadFunction")
    configs = async_configs(template, local_resolver(template, "http://x"))
    failed = Destination("SQS", FAILED_QUEUE_ARN)
    assert configs == {
        "RetrainFunction": AsyncConfig(max_retries=2, dead_letter=failed),
        "NoRetryFunction": AsyncConfig(max_retries=0, on_failure=failed),
        "UploadFunction": AsyncConfig(),
    }


@pytest.mark.parametrize(
    ("config", "problem"),
    [
        ({"MaximumRetryAttempts": 3}, "outside 0-2"),
        ({"MaximumRetryAttempts": -1}, "outside 0-2"),
        ({"MaximumEventAgeInSeconds": 21601}, "outside 1-21600"),
        ({"DestinationConfig": {"OnFailure": {"Type": "S3", "Destination": "arn:x"}}}, "S3"),
    ],
)
def test_bad_event_invoke_configs_are_config_errors(config: dict[str, Any], problem: str) -> None:
    template = stack_template("RetrainFunction")
    template["Resources"]["RetrainFunction"]["Properties"]["EventInvokeConfig"] = config
    with pytest.raises(ConfigError, match=problem):
        async_configs(template, local_resolver(template, "http://x"))


def test_stop_returns_promptly_with_every_source_running(
    start_sources: Callable[..., Running],
) -> None:
    running = start_sources(
        "JobsFunction",
        "UploadFunction",
        "NightlyFunction",
        "OrdersFunction",
        "CaptureFunction",
        "AlertFunction",
        "RetrainFunction",
        schedule_seconds=0.1,
    )
    time.sleep(0.5)
    started = time.monotonic()
    running.sources.stop()
    assert time.monotonic() - started <= 2.0
    assert not [t for t in running.sources._threads if t.is_alive()]


def test_an_on_failure_lambda_destination_gets_the_record_asynchronously(
    start_sources: Callable[..., Running],
) -> None:
    template = stack_template("NoRetryFunction", "RetrainFunction")
    config = template["Resources"]["NoRetryFunction"]["Properties"]["EventInvokeConfig"]
    config["DestinationConfig"]["OnFailure"] = {
        "Type": "Lambda",
        "Destination": {"Fn::GetAtt": ["RetrainFunction", "Arn"]},
    }

    def script(function: str, event: Any, n: int) -> Invocation:
        return fail() if function == "NoRetryFunction" else succeed()

    running = start_sources(template=template, script=script)
    request_id = running.sources.invoke_async("NoRetryFunction", EVENT)
    (record,) = running.invoker.wait_for("RetrainFunction", 1)
    assert record["requestContext"]["requestId"] == request_id
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert record["requestPayload"] == EVENT


def test_an_on_success_lambda_destination_gets_lambdas_invocation_record(
    aws: Aws, start_sources: Callable[..., Running]
) -> None:
    # Given a retrainer whose OnSuccess destination is a gate function (the template's shape)
    template = stack_template("RetrainFunction", "NoRetryFunction")
    config = template["Resources"]["RetrainFunction"]["Properties"]["EventInvokeConfig"]
    config["DestinationConfig"] = {
        "OnSuccess": {"Type": "Lambda", "Destination": {"Fn::GetAtt": ["NoRetryFunction", "Arn"]}}
    }

    def script(function: str, event: Any, n: int) -> Invocation:
        if function == "RetrainFunction":
            return fail() if n == 1 else succeed({"candidate_id": "c-1"})
        return succeed({"promoted": True})

    running = start_sources(template=template, script=script)
    # When the retrainer fails once, then succeeds on its retry
    request_id = running.sources.invoke_async("RetrainFunction", EVENT)
    # Then the gate is invoked once with Lambda's record of the successful invocation
    (record,) = running.invoker.wait_for("NoRetryFunction", 1)
    _wait_idle(running)
    assert list(record) == [
        "version",
        "timestamp",
        "requestContext",
        "requestPayload",
        "responseContext",
        "responsePayload",
    ]
    assert record["version"] == "1.0"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", record["timestamp"])
    assert record["requestContext"] == {
        "requestId": request_id,
        "functionArn": "arn:aws:lambda:us-east-1:123456789012:function:"
        "mlops-local-RetrainFunction:$LATEST",
        "condition": "Success",
        "approximateInvokeCount": 2,
    }
    assert record["requestPayload"] == EVENT
    assert record["responseContext"] == {"statusCode": 200, "executedVersion": "$LATEST"}
    assert record["responsePayload"] == {"candidate_id": "c-1"}
    assert aws.receive_all("FailedEventsQueue", wait=0) == []


def test_a_failing_lambda_destination_has_its_own_retries_and_on_failure(
    aws: Aws, start_sources: Callable[..., Running]
) -> None:
    # Given the same chain, with a gate that fails (0 retries, OnFailure to a queue)
    template = stack_template("RetrainFunction", "NoRetryFunction")
    config = template["Resources"]["RetrainFunction"]["Properties"]["EventInvokeConfig"]
    config["DestinationConfig"] = {
        "OnSuccess": {"Type": "Lambda", "Destination": {"Fn::GetAtt": ["NoRetryFunction", "Arn"]}}
    }

    def script(function: str, event: Any, n: int) -> Invocation:
        return succeed({"candidate_id": "c-1"}) if function == "RetrainFunction" else fail("parity")

    running = start_sources(template=template, script=script)
    retrain_id = running.sources.invoke_async("RetrainFunction", EVENT)
    running.invoker.wait_for("NoRetryFunction", 1)
    _wait_idle(running)
    # Then the gate's failure record carries the retrainer's record whole, under its own id
    (message,) = aws.receive_all("FailedEventsQueue")
    record = json.loads(message["Body"])
    assert record["requestContext"]["functionArn"].endswith(":mlops-local-NoRetryFunction:$LATEST")
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert record["requestContext"]["requestId"] != retrain_id
    assert record["requestPayload"]["requestContext"]["requestId"] == retrain_id
    assert record["requestPayload"]["responsePayload"] == {"candidate_id": "c-1"}
    assert record["responsePayload"]["errorMessage"] == "parity"
    assert len(running.invoker.events_for("RetrainFunction")) == 1


def test_reserved_concurrency_queues_a_burst_without_spending_attempts_or_blocking_others(
    start_sources: Callable[..., Running],
) -> None:
    # Given a slow function limited to one at a time (the gate's shape) and another function
    template = stack_template("RetrainFunction", "UploadFunction")
    template["Resources"]["RetrainFunction"]["Properties"]["ReservedConcurrentExecutions"] = 1
    running_now = 0
    most = 0
    lock = threading.Lock()

    def script(function: str, event: Any, n: int) -> Invocation:
        nonlocal running_now, most
        if function == "RetrainFunction":
            with lock:
                running_now += 1
                most = max(most, running_now)
            time.sleep(0.3)
            with lock:
                running_now -= 1
        return succeed()

    running = start_sources(template=template, script=script, async_workers=4)
    # When a burst of four events arrives, then an event for the other function
    for month in range(4):
        running.sources.invoke_async("RetrainFunction", {"month": month})
    started = time.monotonic()
    running.sources.invoke_async("UploadFunction", EVENT)
    # Then the other function runs at once, though the burst holds more events than workers
    running.invoker.wait_for("UploadFunction", 1, timeout=0.25)
    assert time.monotonic() - started < 0.25
    # And the burst runs one at a time, each event once (throttling is not an attempt)
    events = running.invoker.wait_for("RetrainFunction", 4)
    _wait_idle(running)
    assert most == 1
    assert sorted(e["month"] for e in events) == [0, 1, 2, 3]


def test_async_configs_read_reserved_concurrency() -> None:
    template = stack_template("RetrainFunction")
    template["Resources"]["RetrainFunction"]["Properties"]["ReservedConcurrentExecutions"] = 2
    configs = async_configs(template, local_resolver(template, "http://x"))
    assert configs["RetrainFunction"].reserved_concurrency == 2


def test_an_sns_dead_letter_topic_gets_the_event_with_its_attributes(
    aws: Aws, start_sources: Callable[..., Running]
) -> None:
    template = stack_template("RetrainFunction")
    template["Resources"]["RetrainFunction"]["Properties"]["DeadLetterQueue"] = {
        "Type": "SNS",
        "TargetArn": {"Ref": "AlertsTopic"},
    }
    running = start_sources(template=template, script=_fails_first(99))
    topic = running.resolver.refs["AlertsTopic"]
    aws.sns.create_topic(Name=topic.rsplit(":", 1)[-1])
    aws.sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=FAILED_QUEUE_ARN)
    request_id = running.sources.invoke_async("RetrainFunction", EVENT)
    running.invoker.wait_for("RetrainFunction", 3)
    _wait_idle(running)
    (message,) = aws.receive_all("FailedEventsQueue")
    notification = json.loads(message["Body"])
    assert json.loads(notification["Message"]) == EVENT
    assert notification["MessageAttributes"]["RequestID"] == {
        "Type": "String",
        "Value": request_id,
    }
    assert notification["MessageAttributes"]["ErrorCode"] == {"Type": "Number", "Value": "200"}
