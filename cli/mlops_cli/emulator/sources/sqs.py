"""SQS event source mappings, delivered as Lambda's pollers do.

Faithful to AWS: BatchSize, MaximumBatchingWindowInSeconds, FilterCriteria (filtered-out
messages are deleted, as Lambda does), ReportBatchItemFailures with Lambda's rules (an empty or
unknown ``itemIdentifier`` fails the whole batch), synchronous invocation, delete on success
only; failed messages return after the queue's VisibilityTimeout and moto's RedrivePolicy moves
them to the DLQ after maxReceiveCount (moto applies it on receive).

Not faithful: one poller per mapping (Lambda scales pollers out to many); ScalingConfig is
ignored.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from botocore.exceptions import BotoCoreError, ClientError

from mlops.errors import ConfigError
from mlops_cli.emulator.sources.declarations import Declaration, as_int, event_pattern, truthy
from mlops_cli.emulator.sources.lambda_service import InvocationResult, Invoker
from mlops_cli.emulator.sources.moto_backend import POLL_SECONDS, SQS_MAX_PER_RECEIVE, MotoBackend
from mlops_cli.emulator.template import REGION

if TYPE_CHECKING:
    from mypy_boto3_sqs.type_defs import MessageTypeDef

log = logging.getLogger(__name__)

SYNC_PAYLOAD_LIMIT: Final = 6 * 1024 * 1024


@dataclass(frozen=True)
class SqsSource:
    function: str
    event: str
    queue_arn: str
    batch_size: int = 10
    window_seconds: float = 0.0
    report_batch_item_failures: bool = False
    filters: tuple[str, ...] = ()
    enabled: bool = True


def parse_sqs_event(ctx: Declaration, raw: dict[str, Any]) -> SqsSource:
    _template, resolver, _stack, function, event, where = ctx
    props = resolver.resolve(raw)
    queue_arn = props.get("Queue")
    if not isinstance(queue_arn, str) or not queue_arn.startswith("arn:aws:sqs:"):
        raise ConfigError(f"{where}: Queue must be a queue ARN (!GetAtt Queue.Arn)")
    batch = as_int(props.get("BatchSize", 10), f"{where}.BatchSize", 1, 10_000)
    window = as_int(
        props.get("MaximumBatchingWindowInSeconds", 0),
        f"{where}.MaximumBatchingWindowInSeconds",
        0,
        300,
    )
    if batch > SQS_MAX_PER_RECEIVE and window == 0:
        # Lambda's own rule: over 10 messages needs a batching window.
        raise ConfigError(f"{where}: BatchSize over 10 needs MaximumBatchingWindowInSeconds >= 1")
    response_types = props.get("FunctionResponseTypes") or []
    if any(t != "ReportBatchItemFailures" for t in response_types):
        raise ConfigError(f"{where}: FunctionResponseTypes can only be ReportBatchItemFailures")
    filters = []
    for item in (props.get("FilterCriteria") or {}).get("Filters", []):
        pattern = item.get("Pattern")
        pattern = json.dumps(pattern) if isinstance(pattern, dict) else pattern
        if not isinstance(pattern, str):
            raise ConfigError(f"{where}: FilterCriteria.Filters[].Pattern must be JSON")
        event_pattern(pattern, where)
        filters.append(pattern)
    return SqsSource(
        function=function,
        event=event,
        queue_arn=queue_arn,
        batch_size=batch,
        window_seconds=float(window),
        report_batch_item_failures="ReportBatchItemFailures" in response_types,
        filters=tuple(filters),
        enabled=truthy(props.get("Enabled", True)),
    )


# ------------------------------------------------------------------ delivery


def poll_queue(source: SqsSource, moto: MotoBackend, invoker: Invoker) -> None:
    """The mapping's poller (a thread): gather a batch, invoke synchronously, delete what
    succeeded, until ``moto.stopping``."""
    try:
        queue_url = moto.queue_url(source.queue_arn)
    except (ClientError, BotoCoreError) as exc:
        log.error("%s.%s: queue %s: %s", source.function, source.event, source.queue_arn, exc)
        return
    filters = [event_pattern(p, source.event) for p in source.filters]
    while not moto.stopping.is_set():
        messages = moto.guarded(_gather, source=source, moto=moto, queue_url=queue_url) or []
        if not messages or moto.stopping.is_set():
            continue  # left undeleted, they return after the visibility timeout
        records = [sqs_record(m, source.queue_arn) for m in messages]
        if filters:
            kept = [r for r in records if any(f.matches_event(_filterable(r)) for f in filters)]
            kept_ids = {r["messageId"] for r in kept}
            dropped = [r for r in records if r["messageId"] not in kept_ids]
            # Lambda deletes the messages no filter matches.
            _delete(moto, queue_url, dropped)
            records = kept
        if not records:
            continue
        try:
            result: InvocationResult | None = invoker.invoke(source.function, {"Records": records})
        except Exception:
            log.exception("%s.%s: invoke failed", source.function, source.event)
            result = None
        failed = batch_failures(records, result, source.report_batch_item_failures)
        if failed:
            log.warning(
                "%s.%s: %d of %d messages failed; they return after the visibility timeout",
                source.function,
                source.event,
                len(failed),
                len(records),
            )
        _delete(moto, queue_url, [r for r in records if r["messageId"] not in failed])


def _gather(source: SqsSource, moto: MotoBackend, queue_url: str) -> list[MessageTypeDef]:
    """Receive until the batch is full, the batching window passes, or the payload would
    pass Lambda's 6 MB synchronous limit. The window opens with the first message."""
    # By message id: a message whose visibility timeout is shorter than the window comes
    # back while the batch is gathered; it is kept once, with its newest receipt handle.
    batch: dict[str, MessageTypeDef] = {}
    size = 0
    deadline = float("inf")
    while len(batch) < source.batch_size and not moto.stopping.is_set():
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        wait = POLL_SECONDS if remaining >= POLL_SECONDS else 0
        received = moto.sqs.receive_message(
            QueueUrl=queue_url,
            MaxNumberOfMessages=min(SQS_MAX_PER_RECEIVE, source.batch_size - len(batch)),
            WaitTimeSeconds=wait,
            MessageSystemAttributeNames=["All"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        batch.update((m["MessageId"], m) for m in received)
        size += sum(len(m.get("Body", "")) + 1024 for m in received)
        if batch and deadline == float("inf"):
            if source.window_seconds <= 0:
                break
            deadline = time.monotonic() + source.window_seconds
        if size >= SYNC_PAYLOAD_LIMIT - 256 * 1024:
            break
        if not received and wait == 0:
            time.sleep(min(0.05, max(0.0, remaining)))
    return list(batch.values())


def _delete(moto: MotoBackend, queue_url: str, records: list[dict[str, Any]]) -> None:
    for start in range(0, len(records), SQS_MAX_PER_RECEIVE):
        chunk = records[start : start + SQS_MAX_PER_RECEIVE]
        entries = [{"Id": str(i), "ReceiptHandle": r["receiptHandle"]} for i, r in enumerate(chunk)]
        response = moto.guarded(moto.sqs.delete_message_batch, QueueUrl=queue_url, Entries=entries)
        for failure in (response or {}).get("Failed", []):
            log.warning("could not delete a message from %s: %s", queue_url, failure)


# ------------------------------------------------------------------ the event


# The attributes Lambda copies from SQS into each record.
_SQS_RECORD_ATTRIBUTES: Final = (
    "ApproximateReceiveCount",
    "SentTimestamp",
    "SenderId",
    "ApproximateFirstReceiveTimestamp",
    "SequenceNumber",
    "MessageGroupId",
    "MessageDeduplicationId",
    "AWSTraceHeader",
    "DeadLetterQueueSourceArn",
)


def sqs_record(message: MessageTypeDef | Mapping[str, Any], queue_arn: str) -> dict[str, Any]:
    """An SQS message as Lambda's SQS event record."""
    attributes = message.get("Attributes", {})
    body = message.get("Body", "")
    record: dict[str, Any] = {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": body,
        "attributes": {k: attributes[k] for k in _SQS_RECORD_ATTRIBUTES if k in attributes},
        "messageAttributes": {
            name: _sqs_attribute(value)
            for name, value in message.get("MessageAttributes", {}).items()
        },
        "md5OfBody": message.get("MD5OfBody") or hashlib.md5(body.encode()).hexdigest(),
    }
    if message.get("MD5OfMessageAttributes"):
        record["md5OfMessageAttributes"] = message["MD5OfMessageAttributes"]
    record |= {"eventSource": "aws:sqs", "eventSourceARN": queue_arn, "awsRegion": REGION}
    return record


def _sqs_attribute(value: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if "StringValue" in value:
        out["stringValue"] = value["StringValue"]
    if "BinaryValue" in value:
        out["binaryValue"] = base64.b64encode(value["BinaryValue"]).decode()
    out["stringListValues"] = list(value.get("StringListValues", []))
    out["binaryListValues"] = [
        base64.b64encode(v).decode() for v in value.get("BinaryListValues", [])
    ]
    out["dataType"] = value.get("DataType", "String")
    return out


def batch_failures(
    records: list[dict[str, Any]], result: InvocationResult | None, report_failures: bool
) -> set[str]:
    """The message ids Lambda keeps on the queue after a batch, by its documented rules."""
    everything = {r["messageId"] for r in records}
    if result is None or result.error_type is not None:
        return everything
    if not report_failures:
        return set()
    response = result.payload
    if response is None:
        return set()
    if not isinstance(response, dict):
        return everything  # not an EventResponse: Lambda fails the batch
    failures = response.get("batchItemFailures")
    if not failures:
        return set()
    if not isinstance(failures, list):
        return everything
    failed = set()
    for item in failures:
        identifier = item.get("itemIdentifier") if isinstance(item, dict) else None
        # An empty, missing or unknown identifier fails the whole batch.
        if not isinstance(identifier, str) or identifier not in everything:
            return everything
        failed.add(identifier)
    return failed


def _filterable(record: Mapping[str, Any]) -> dict[str, Any]:
    """The record as Lambda's filters see it: a JSON body is matched as JSON."""
    out = dict(record)
    try:
        body = json.loads(record["body"])
    except ValueError:
        return out
    if isinstance(body, dict):
        out["body"] = body
    return out
