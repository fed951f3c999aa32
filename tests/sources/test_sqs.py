"""SQS event source mappings: batching, partial batch failures, redrive to the DLQ."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from typing import Any

import pytest

from mlops_cli.emulator.runtime import Invocation
from mlops_cli.emulator.sources.sqs import SqsSource, batch_failures, sqs_record
from tests.sources.conftest import Aws, Running, fail, stack_template, succeed

QUEUE_ARN = "arn:aws:sqs:us-east-1:123456789012:mlops-local-JobsQueue"


def _ids(event: dict[str, Any]) -> list[str]:
    return [r["messageId"] for r in event["Records"]]


def _bodies(event: dict[str, Any]) -> list[str]:
    return [r["body"] for r in event["Records"]]


def _send(aws: Aws, *bodies: str) -> list[str]:
    """Send in one call, so the messages are all there for the next receive."""
    entries = [{"Id": str(i), "MessageBody": b} for i, b in enumerate(bodies)]
    sent = aws.sqs.send_message_batch(QueueUrl=aws.queue_url("JobsQueue"), Entries=entries)
    return [m["MessageId"] for m in sorted(sent["Successful"], key=lambda m: int(m["Id"]))]


def _with_sqs(**properties: Any) -> dict[str, Any]:
    template = stack_template("JobsFunction")
    event = template["Resources"]["JobsFunction"]["Properties"]["Events"]["Jobs"]
    event["Properties"].update(properties)
    return template


def test_a_batch_is_a_real_sqs_event(aws: Aws, start_sources: Callable[..., Running]) -> None:
    # Given the consumer is running
    running = start_sources("JobsFunction")
    # When one message with an attribute arrives
    aws.sqs.send_message(
        QueueUrl=aws.queue_url("JobsQueue"),
        MessageBody='{"job": "score"}',
        MessageAttributes={"tenant": {"DataType": "String", "StringValue": "acme"}},
    )
    # Then the function gets Lambda's SQS record for it
    (event,) = running.invoker.wait_for("JobsFunction", 1)
    (record,) = event["Records"]
    assert list(record) == [
        "messageId",
        "receiptHandle",
        "body",
        "attributes",
        "messageAttributes",
        "md5OfBody",
        "md5OfMessageAttributes",
        "eventSource",
        "eventSourceARN",
        "awsRegion",
    ]
    assert record["body"] == '{"job": "score"}'
    assert record["md5OfBody"] == hashlib.md5(b'{"job": "score"}').hexdigest()
    assert record["eventSource"] == "aws:sqs"
    assert record["eventSourceARN"] == QUEUE_ARN
    assert record["awsRegion"] == "us-east-1"
    assert set(record["attributes"]) >= {
        "ApproximateReceiveCount",
        "SentTimestamp",
        "SenderId",
        "ApproximateFirstReceiveTimestamp",
    }
    assert record["attributes"]["ApproximateReceiveCount"] == "1"
    assert record["messageAttributes"] == {
        "tenant": {
            "stringValue": "acme",
            "stringListValues": [],
            "binaryListValues": [],
            "dataType": "String",
        }
    }


def test_success_deletes_the_whole_batch(aws: Aws, start_sources: Callable[..., Running]) -> None:
    running = start_sources("JobsFunction")
    _send(aws, "a", "b")
    running.invoker.wait_for("JobsFunction", 1)
    # The queue's visibility timeout is 1 s: anything not deleted would be back by now.
    time.sleep(1.6)
    assert len(running.invoker.events_for("JobsFunction")) == 1
    assert aws.receive_all("JobsQueue", wait=0) == []


def test_batch_size_caps_each_batch(aws: Aws, start_sources: Callable[..., Running]) -> None:
    # Given BatchSize 2 and five messages waiting
    running = start_sources(template=_with_sqs(BatchSize=2))
    _send(aws, *"abcde")
    # Then every message is delivered once, never more than two per invocation
    events = running.invoker.wait_for("JobsFunction", 3)
    time.sleep(0.3)
    events = running.invoker.events_for("JobsFunction")
    assert all(len(e["Records"]) <= 2 for e in events)
    assert sorted(b for e in events for b in _bodies(e)) == list("abcde")


def test_the_batching_window_gathers_messages_that_arrive_apart(
    aws: Aws, start_sources: Callable[..., Running]
) -> None:
    # Given a 1 s batching window
    running = start_sources(template=_with_sqs(MaximumBatchingWindowInSeconds=1))
    # When two messages arrive 0.3 s apart
    _send(aws, "first")
    time.sleep(0.3)
    _send(aws, "second")
    # Then they come in one batch
    (event,) = running.invoker.wait_for("JobsFunction", 1)
    assert _bodies(event) == ["first", "second"]


def test_without_a_window_a_batch_is_what_is_there(
    aws: Aws, start_sources: Callable[..., Running]
) -> None:
    running = start_sources("JobsFunction")
    _send(aws, "first")
    running.invoker.wait_for("JobsFunction", 1)
    _send(aws, "second")
    events = running.invoker.wait_for("JobsFunction", 2)
    assert [_bodies(e) for e in events] == [["first"], ["second"]]


def _partial(failing_body: str) -> Callable[[str, Any, int], Invocation]:
    def script(function: str, event: Any, n: int) -> Invocation:
        failures = [
            {"itemIdentifier": r["messageId"]}
            for r in event["Records"]
            if r["body"] == failing_body
        ]
        return succeed({"batchItemFailures": failures})

    return script


def test_partial_failure_redelivers_only_the_failed_message_then_dead_letters_it(
    aws: Aws, start_sources: Callable[..., Running]
) -> None:
    # Given the function reports message "b" as failed, every time
    running = start_sources("JobsFunction", script=_partial("b"))
    # When a, b and c arrive together
    _send(aws, "a", "b", "c")
    # Then only b comes back (after the 1 s visibility timeout), with its receive count
    first, second = running.invoker.wait_for("JobsFunction", 2, timeout=6)
    assert _bodies(first) == ["a", "b", "c"]
    assert _bodies(second) == ["b"]
    assert second["Records"][0]["attributes"]["ApproximateReceiveCount"] == "2"
    # And after maxReceiveCount (2) receives, the queue's redrive policy moves it to the DLQ
    dead: list[dict[str, Any]] = []
    deadline = time.monotonic() + 6
    while not dead and time.monotonic() < deadline:
        dead = aws.receive_all("JobsDeadLetterQueue")
    assert [m["Body"] for m in dead] == ["b"]
    assert len(running.invoker.events_for("JobsFunction")) == 2


def test_a_function_error_fails_the_whole_batch(
    aws: Aws, start_sources: Callable[..., Running]
) -> None:
    # Given the function raises on its first batch only
    def script(function: str, event: Any, n: int) -> Invocation:
        return fail() if n == 1 else succeed()

    running = start_sources("JobsFunction", script=script)
    ids = _send(aws, "a", "b")
    # Then the whole batch is delivered again
    first, second = running.invoker.wait_for("JobsFunction", 2, timeout=6)
    assert sorted(_ids(first)) == sorted(ids)
    assert sorted(_ids(second)) == sorted(ids)


def _records(*ids: str) -> list[dict[str, Any]]:
    return [{"messageId": i} for i in ids]


@pytest.mark.parametrize(
    ("payload", "failed"),
    [
        (None, set()),
        ({}, set()),
        ({"batchItemFailures": []}, set()),
        ({"batchItemFailures": None}, set()),
        ({"batchItemFailures": [{"itemIdentifier": "m2"}]}, {"m2"}),
        ({"batchItemFailures": [{"itemIdentifier": "m1"}, {"itemIdentifier": "m2"}]}, {"m1", "m2"}),
        # Lambda's rules: any of these fails the whole batch.
        ({"batchItemFailures": [{"itemIdentifier": ""}]}, {"m1", "m2"}),
        ({"batchItemFailures": [{"itemIdentifier": None}]}, {"m1", "m2"}),
        ({"batchItemFailures": [{"itemIdentifier": "unknown"}]}, {"m1", "m2"}),
        ({"batchItemFailures": [{"itemidentifier": "m2"}]}, {"m1", "m2"}),
        ({"batchItemFailures": "m2"}, {"m1", "m2"}),
        ("ok", {"m1", "m2"}),
    ],
)
def test_batch_item_failure_rules(payload: Any, failed: set[str]) -> None:
    result = succeed(payload)
    assert batch_failures(_records("m1", "m2"), result, report_failures=True) == failed


def test_without_report_batch_item_failures_the_response_is_ignored() -> None:
    result = succeed({"batchItemFailures": [{"itemIdentifier": "m2"}]})
    assert batch_failures(_records("m1", "m2"), result, report_failures=False) == set()
    assert batch_failures(_records("m1", "m2"), fail(), report_failures=False) == {"m1", "m2"}


def test_an_unknown_item_identifier_redelivers_the_whole_batch(
    aws: Aws, start_sources: Callable[..., Running]
) -> None:
    def script(function: str, event: Any, n: int) -> Invocation:
        if n == 1:
            return succeed({"batchItemFailures": [{"itemIdentifier": "not-in-batch"}]})
        return succeed()

    running = start_sources("JobsFunction", script=script)
    _send(aws, "a", "b")
    first, second = running.invoker.wait_for("JobsFunction", 2, timeout=6)
    assert sorted(_bodies(second)) == sorted(_bodies(first)) == ["a", "b"]


def test_filter_criteria_drop_what_no_filter_matches(
    aws: Aws, start_sources: Callable[..., Running]
) -> None:
    # Given a filter on the JSON body
    template = _with_sqs(
        FilterCriteria={"Filters": [{"Pattern": '{"body": {"kind": ["score"]}}'}]},
    )
    running = start_sources(template=template)
    # When a matching, a non-matching and a non-JSON message arrive
    _send(aws, '{"kind": "score"}', '{"kind": "train"}', "plain text")
    # Then only the match is delivered, and the others are deleted (not redelivered)
    (event,) = running.invoker.wait_for("JobsFunction", 1)
    assert _bodies(event) == ['{"kind": "score"}']
    time.sleep(1.6)
    assert len(running.invoker.events_for("JobsFunction")) == 1
    assert aws.receive_all("JobsQueue", wait=0) == []


def test_a_disabled_mapping_does_not_poll(aws: Aws, start_sources: Callable[..., Running]) -> None:
    running = start_sources(template=_with_sqs(Enabled=False))
    _send(aws, "a")
    time.sleep(1.2)
    assert running.invoker.events_for("JobsFunction") == []
    assert [m["Body"] for m in aws.receive_all("JobsQueue", wait=0)] == ["a"]


def test_sqs_record_converts_binary_attributes() -> None:
    message = {
        "MessageId": "m1",
        "ReceiptHandle": "r1",
        "Body": "x",
        "MessageAttributes": {"blob": {"DataType": "Binary", "BinaryValue": b"\x00\x01"}},
    }
    record = sqs_record(message, QUEUE_ARN)
    assert record["messageAttributes"]["blob"]["binaryValue"] == "AAE="
    assert record["md5OfBody"] == hashlib.md5(b"x").hexdigest()


def test_the_parsed_mapping_has_lambdas_defaults() -> None:
    from mlops_cli.emulator.sources.event_sources import event_sources
    from tests.sources.conftest import local_resolver

    template = _with_sqs()
    event = template["Resources"]["JobsFunction"]["Properties"]["Events"]["Jobs"]
    event["Properties"] = {"Queue": event["Properties"]["Queue"]}
    (source,) = event_sources(template, local_resolver(template, "http://x"))
    assert source == SqsSource("JobsFunction", "Jobs", QUEUE_ARN)


def test_a_message_back_within_the_window_is_in_the_batch_once(
    aws: Aws, start_sources: Callable[..., Running]
) -> None:
    # Given a window (2 s) longer than the queue's visibility timeout (1 s)
    running = start_sources(template=_with_sqs(MaximumBatchingWindowInSeconds=2))
    # When one message arrives, and is received again while the batch is gathered
    (sent,) = _send(aws, "only")
    # Then it is in the batch once
    (event,) = running.invoker.wait_for("JobsFunction", 1, timeout=6)
    assert _ids(event) == [sent]
