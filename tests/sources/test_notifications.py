"""S3 notifications, EventBridge rules and SNS subscriptions: delivered asynchronously."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest

from mlops_cli.emulator.sources.rules import eventbridge_event
from mlops_cli.emulator.sources.s3 import s3_record
from tests.conftest import load_event
from tests.sources.conftest import Aws, Running, stack_template

BUCKET = "mlops-local-uploadsbucket"


def test_an_object_under_the_prefix_and_suffix_triggers_a_real_s3_event(
    aws: Aws, start_sources: Callable[..., Running]
) -> None:
    # Given the function is subscribed to uploads/*.json
    running = start_sources("UploadFunction")
    # When an object with a space and a plus in its key is put there
    aws.s3.put_object(Bucket=BUCKET, Key="uploads/month 3+4.json", Body=b"{}")
    # Then the function gets one S3 record, shaped like events/s3_put.json
    (event,) = running.invoker.wait_for("UploadFunction", 1)
    (record,) = event["Records"]
    fixture = load_event("s3_put.json")["Records"][0]
    assert list(record) == list(fixture)
    assert list(record["s3"]) == list(fixture["s3"])
    assert list(record["s3"]["bucket"]) == list(fixture["s3"]["bucket"])
    assert record["eventVersion"] == "2.1"
    assert record["eventName"] == "ObjectCreated:Put"
    assert record["s3"]["bucket"]["name"] == BUCKET
    assert record["s3"]["configurationId"] == "UploadFunctionUpload"
    # S3 form-encodes keys: space → "+", "+" → "%2B", "/" kept
    assert record["s3"]["object"]["key"] == "uploads/month+3%2B4.json"
    assert record["s3"]["object"]["size"] == 2


def test_objects_outside_the_filter_and_the_test_event_trigger_nothing(
    aws: Aws, start_sources: Callable[..., Running]
) -> None:
    running = start_sources("UploadFunction")
    for key in ("other/a.json", "uploads/a.txt", "a.json"):
        aws.s3.put_object(Bucket=BUCKET, Key=key, Body=b"{}")
    aws.s3.put_object(Bucket=BUCKET, Key="uploads/last.json", Body=b"{}")
    # Only the last one matches; by the time it arrives the others (sent first) would have too
    running.invoker.wait_for("UploadFunction", 1)
    time.sleep(0.5)
    events = running.invoker.events_for("UploadFunction")
    assert [e["Records"][0]["s3"]["object"]["key"] for e in events] == ["uploads/last.json"]
    # The s3:TestEvent S3 sent when the configuration was set never reached the function
    assert all("Records" in e for e in events)


def test_a_multipart_upload_notifies_once_as_s3_does(
    aws: Aws, start_sources: Callable[..., Running]
) -> None:
    # Given the function is subscribed to uploads/*.json
    running = start_sources("UploadFunction")
    # When a two-part upload completes (moto alone notifies ObjectCreated:Put too)
    key = "uploads/big.json"
    upload = aws.s3.create_multipart_upload(Bucket=BUCKET, Key=key)["UploadId"]
    parts = []
    for number, body in ((1, b" " * 5 * 2**20), (2, b"{}")):
        etag = aws.s3.upload_part(
            Bucket=BUCKET, Key=key, UploadId=upload, PartNumber=number, Body=body
        )["ETag"]
        parts.append({"PartNumber": number, "ETag": etag})
    aws.s3.complete_multipart_upload(
        Bucket=BUCKET, Key=key, UploadId=upload, MultipartUpload={"Parts": parts}
    )
    aws.s3.put_object(Bucket=BUCKET, Key="uploads/after.json", Body=b"{}")
    # Then the function gets one CompleteMultipartUpload record, then the next upload's (moto
    # queues a second record of the first before it, so it would be among the first two)
    events = running.invoker.wait_for("UploadFunction", 2)
    names = [(e["Records"][0]["eventName"], e["Records"][0]["s3"]["object"]["key"]) for e in events]
    assert sorted(names) == [
        ("ObjectCreated:CompleteMultipartUpload", "uploads/big.json"),
        ("ObjectCreated:Put", "uploads/after.json"),
    ]


def test_an_upload_to_a_versioned_bucket_carries_its_version_id(
    aws: Aws, start_sources: Callable[..., Running]
) -> None:
    # Given a versioned bucket (the training data bucket is one)
    running = start_sources("UploadFunction")
    aws.s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    # When an object is put twice under the same key
    versions = [
        aws.s3.put_object(Bucket=BUCKET, Key="uploads/month.json", Body=body)["VersionId"]
        for body in (b"{}", b"[]")
    ]
    # Then each event names its own version, where S3 puts it
    events = running.invoker.wait_for("UploadFunction", 2)
    objects = [e["Records"][0]["s3"]["object"] for e in events]
    assert sorted(o["versionId"] for o in objects) == sorted(versions)
    assert list(objects[0]) == ["key", "size", "eTag", "versionId", "sequencer"]


def test_an_unversioned_bucket_sends_no_version_id(
    aws: Aws, start_sources: Callable[..., Running]
) -> None:
    running = start_sources("UploadFunction")
    aws.s3.put_object(Bucket=BUCKET, Key="uploads/month.json", Body=b"{}")
    (event,) = running.invoker.wait_for("UploadFunction", 1)
    assert list(event["Records"][0]["s3"]["object"]) == ["key", "size", "eTag", "sequencer"]


def test_the_training_upload_fixture_has_the_shape_the_local_stack_delivers(
    aws: Aws, start_sources: Callable[..., Running]
) -> None:
    running = start_sources("UploadFunction")
    aws.s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    aws.s3.put_object(Bucket=BUCKET, Key="uploads/houses-month-01.json", Body=b"{}")
    (event,) = running.invoker.wait_for("UploadFunction", 1)
    (record,) = event["Records"]
    (fixture,) = load_event("s3_training_upload.json")["Records"]
    assert list(record) == list(fixture)
    for part in ("s3", "userIdentity", "requestParameters", "responseElements"):
        assert list(record[part]) == list(fixture[part])
    for part in ("bucket", "object"):
        assert list(record["s3"][part]) == list(fixture["s3"][part])


@pytest.mark.parametrize(
    ("moto_key", "s3_key"),
    [
        ("uploads%2Fmonth+3.json", "uploads/month+3.json"),
        ("uploads%2Fa%2Bb.json", "uploads/a%2Bb.json"),
        ("uploads%2F%C3%A9t%C3%A9.json", "uploads/%C3%A9t%C3%A9.json"),
        ("plain.json", "plain.json"),
    ],
)
def test_s3_record_keeps_slashes_as_s3_does(moto_key: str, s3_key: str) -> None:
    record = s3_record({"s3": {"object": {"key": moto_key}, "bucket": {"name": "b"}}})
    assert record["s3"]["object"]["key"] == s3_key


def _orders(aws: Aws, *entries: dict[str, Any]) -> None:
    response = aws.events.put_events(
        Entries=[
            {
                "Source": e.get("source", "shop.orders"),
                "DetailType": e.get("detail_type", "OrderPlaced"),
                "Detail": json.dumps(e["detail"]),
                "EventBusName": "orders",
            }
            for e in entries
        ]
    )
    assert response["FailedEntryCount"] == 0


def test_put_events_matching_the_pattern_invokes_with_the_event(
    aws: Aws, start_sources: Callable[..., Running]
) -> None:
    # Given a rule on the custom bus "orders" for OrderPlaced with amount > 100
    running = start_sources("OrdersFunction")
    # When one matching and three non-matching events are put
    _orders(
        aws,
        {"detail": {"amount": 50}},
        {"detail": {"amount": 150}, "source": "shop.returns"},
        {"detail": {"amount": 150}, "detail_type": "OrderCancelled"},
        {"detail": {"amount": 150, "id": "o-1"}},
    )
    # Then only the match reaches the function, as EventBridge's event
    (event,) = running.invoker.wait_for("OrdersFunction", 1)
    time.sleep(0.5)
    assert len(running.invoker.events_for("OrdersFunction")) == 1
    assert list(event) == list(load_event("eventbridge_custom.json"))
    assert event["source"] == "shop.orders"
    assert event["detail-type"] == "OrderPlaced"
    assert event["detail"] == {"amount": 150, "id": "o-1"}
    assert event["account"] == "123456789012"


def _with_rule(**properties: Any) -> dict[str, Any]:
    template = stack_template("OrdersFunction")
    event = template["Resources"]["OrdersFunction"]["Properties"]["Events"]["OrderPlaced"]
    event["Properties"].update(properties)
    return template


@pytest.mark.parametrize(
    ("properties", "expected"),
    [
        ({"Input": '{"fixed": true}'}, {"fixed": True}),
        ({"InputPath": "$.detail"}, {"amount": 150}),
        ({"InputPath": "$.detail.amount"}, 150),
    ],
)
def test_input_and_input_path_shape_what_the_function_gets(
    aws: Aws, start_sources: Callable[..., Running], properties: dict[str, Any], expected: Any
) -> None:
    running = start_sources(template=_with_rule(**properties))
    _orders(aws, {"detail": {"amount": 150}})
    (event,) = running.invoker.wait_for("OrdersFunction", 1)
    assert event == expected


def test_eventbridge_event_adds_the_account_moto_leaves_out() -> None:
    body = {"id": "1", "time": "t", "version": "0", "detail-type": "X", "source": "s", "detail": {}}
    event = eventbridge_event(body)
    assert list(event)[:5] == ["version", "id", "detail-type", "source", "account"]
    assert event["account"] == "123456789012"


def test_sns_notifications_matching_the_filter_policy_arrive_as_sns_events(
    aws: Aws, start_sources: Callable[..., Running]
) -> None:
    running = start_sources("AlertFunction")
    topic = running.resolver.refs["AlertsTopic"]
    for severity in ("low", "high"):
        aws.sns.publish(
            TopicArn=topic,
            Message=f"{severity} drift",
            Subject="drift",
            MessageAttributes={"severity": {"DataType": "String", "StringValue": severity}},
        )
    (event,) = running.invoker.wait_for("AlertFunction", 1)
    time.sleep(0.5)
    assert len(running.invoker.events_for("AlertFunction")) == 1
    (record,) = event["Records"]
    assert record["EventSource"] == "aws:sns"
    assert record["EventSubscriptionArn"].startswith(topic + ":")
    assert record["Sns"]["Message"] == "high drift"
    assert record["Sns"]["Subject"] == "drift"
    assert record["Sns"]["TopicArn"] == topic
    assert record["Sns"]["MessageAttributes"] == {"severity": {"Type": "String", "Value": "high"}}
