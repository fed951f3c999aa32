"""Reading the template's event sources: every supported type, and errors that name the event."""

from __future__ import annotations

from typing import Any

import pytest

from mlops.errors import ConfigError
from mlops_cli.emulator.sources.event_sources import event_sources
from mlops_cli.emulator.sources.logs import LogsSource, function_log_groups
from mlops_cli.emulator.sources.rules import EventBridgeSource
from mlops_cli.emulator.sources.s3 import S3Source
from mlops_cli.emulator.sources.schedule import ScheduleSource
from mlops_cli.emulator.sources.sns import SnsSource
from mlops_cli.emulator.sources.sqs import SqsSource
from tests.sources.conftest import STACK, local_resolver, stack_template

ALL = (
    "JobsFunction",
    "UploadFunction",
    "NightlyFunction",
    "OrdersFunction",
    "ProducerFunction",
    "CaptureFunction",
    "AlertFunction",
    "HttpFunction",
)


def _sources(template: dict[str, Any]) -> list[Any]:
    return event_sources(template, local_resolver(template, "http://127.0.0.1:1"))


def test_every_declared_source_is_read_and_http_api_is_left_to_the_api() -> None:
    sources = _sources(stack_template(*ALL))
    by_event = {s.event: s for s in sources}
    assert sorted(by_event) == sorted(
        ["Jobs", "Upload", "Nightly", "Every5", "OrderPlaced", "Captures", "Alerts"]
    )
    assert by_event["Jobs"] == SqsSource(
        "JobsFunction",
        "Jobs",
        f"arn:aws:sqs:us-east-1:123456789012:{STACK}-JobsQueue",
        report_batch_item_failures=True,
    )
    assert by_event["Upload"] == S3Source(
        "UploadFunction",
        "Upload",
        f"{STACK}-uploadsbucket",
        ("s3:ObjectCreated:*",),
        (("prefix", "uploads/"), ("suffix", ".json")),
    )
    nightly = by_event["Nightly"]
    assert isinstance(nightly, ScheduleSource)
    assert (nightly.kind, nightly.expression, nightly.has_input) == (
        "Schedule",
        "cron(0 3 * * ? *)",
        False,
    )
    assert nightly.resource_arn == "arn:aws:events:us-east-1:123456789012:rule/nightly-rule"
    every5 = by_event["Every5"]
    assert isinstance(every5, ScheduleSource)
    assert (every5.kind, every5.input) == ("ScheduleV2", {"job": "refresh"})
    orders = by_event["OrderPlaced"]
    assert isinstance(orders, EventBridgeSource)
    assert (orders.bus, orders.rule_name) == ("orders", f"{STACK}-OrdersFunctionOrderPlaced")
    captures = by_event["Captures"]
    assert isinstance(captures, LogsSource)
    assert captures.log_group == "/mlops/producer"
    assert captures.filter_pattern.text == '{ $.type = "capture" }'
    assert by_event["Alerts"] == SnsSource(
        "AlertFunction",
        "Alerts",
        f"arn:aws:sns:us-east-1:123456789012:{STACK}-AlertsTopic",
        {"severity": ["high"]},
    )


def test_log_groups_come_from_logging_config_or_the_function_name() -> None:
    template = stack_template("ProducerFunction", "CaptureFunction")
    groups = function_log_groups(template, local_resolver(template, "http://x"))
    assert groups == {
        "ProducerFunction": "/mlops/producer",
        "CaptureFunction": f"/aws/lambda/{STACK}-CaptureFunction",
    }


def test_a_log_group_without_a_name_gets_cloudformations_kind_of_name() -> None:
    template = stack_template("ProducerFunction")
    del template["Resources"]["ProducerLogs"]["Properties"]["LogGroupName"]
    groups = function_log_groups(template, local_resolver(template, "http://x"))
    assert groups == {"ProducerFunction": f"{STACK}-ProducerLogs"}


def _with_event(event: dict[str, Any]) -> dict[str, Any]:
    template = stack_template("JobsFunction")
    template["Resources"]["JobsFunction"]["Properties"]["Events"] = {"Trigger": event}
    return template


@pytest.mark.parametrize(
    ("event", "problem"),
    [
        ({"Type": "Kinesis", "Properties": {}}, "event type 'Kinesis' is not supported"),
        ({"Type": "Api", "Properties": {}}, "event type 'Api' is not supported"),
        ({"Type": "DynamoDB", "Properties": {}}, "event type 'DynamoDB' is not supported"),
        (
            {"Type": "SQS", "Properties": {"Queue": "q", "Bogus": 1}},
            r"unknown SQS properties \['Bogus'\]",
        ),
        ({"Type": "SQS", "Properties": {"Queue": "not-an-arn"}}, "Queue must be a queue ARN"),
        (
            {"Type": "SQS", "Properties": {"Queue": "arn:aws:sqs:us-east-1:1:q", "BatchSize": 11}},
            "BatchSize over 10 needs MaximumBatchingWindowInSeconds",
        ),
        (
            {"Type": "SQS", "Properties": {"Queue": "arn:aws:sqs:us-east-1:1:q", "BatchSize": 0}},
            "outside 1-10000",
        ),
        (
            {
                "Type": "S3",
                "Properties": {"Bucket": "literal-name", "Events": "s3:ObjectCreated:*"},
            },
            "Bucket must be !Ref to an AWS::S3::Bucket",
        ),
        (
            {"Type": "S3", "Properties": {"Bucket": {"Ref": "UploadsBucket"}, "Events": "put"}},
            "Events must be S3 event names",
        ),
        ({"Type": "Schedule", "Properties": {"Schedule": "cron(0 3 L * ? *)"}}, "L, W and #"),
        ({"Type": "ScheduleV2", "Properties": {}}, "ScheduleExpression is required"),
        (
            {
                "Type": "ScheduleV2",
                "Properties": {
                    "ScheduleExpression": "rate(1 hour)",
                    "ScheduleExpressionTimezone": "Mars/Base",
                },
            },
            "unknown ScheduleExpressionTimezone",
        ),
        (
            {"Type": "Schedule", "Properties": {"Schedule": "rate(1 hour)", "Input": "{not json"}},
            "Input: must be valid JSON",
        ),
        (
            {
                "Type": "EventBridgeRule",
                "Properties": {"Pattern": {"source": ["a"]}, "InputTransformer": {}},
            },
            "InputTransformer is not supported",
        ),
        (
            {"Type": "EventBridgeRule", "Properties": {"Pattern": {"source": "a"}}},
            "bad event pattern",
        ),
        (
            {
                "Type": "CloudWatchLogs",
                "Properties": {"LogGroupName": "g", "FilterPattern": "[a, b]"},
            },
            "FilterPattern: .*space-delimited",
        ),
        (
            {
                "Type": "SNS",
                "Properties": {"Topic": {"Ref": "AlertsTopic"}, "SqsSubscription": True},
            },
            "SqsSubscription is not supported",
        ),
    ],
)
def test_unsupported_or_malformed_events_name_the_function_and_event(
    event: dict[str, Any], problem: str
) -> None:
    with pytest.raises(ConfigError, match=f"JobsFunction.Events.Trigger.*{problem}"):
        _sources(_with_event(event))


def test_a_function_whose_condition_is_false_has_no_sources() -> None:
    template = stack_template("JobsFunction")
    template["Conditions"] = {"Never": {"Fn::Equals": ["a", "b"]}}
    template["Resources"]["JobsFunction"]["Condition"] = "Never"
    resolver = local_resolver(template, "http://x")
    resolver.conditions = template["Conditions"]
    assert event_sources(template, resolver) == []


def test_disabled_sources_are_read_as_disabled() -> None:
    template = _with_event(
        {"Type": "Schedule", "Properties": {"Schedule": "rate(1 hour)", "State": "DISABLED"}}
    )
    (source,) = _sources(template)
    assert source.enabled is False
