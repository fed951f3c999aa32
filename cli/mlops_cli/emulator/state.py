"""The local stack's state on disk: S3 objects, DynamoDB items and queued messages, kept when
the stack stops and put back when it starts, so models, the registry, captures and reports
survive a restart.

Saved by the template's logical resource ids (a bucket's physical name may follow a parameter),
through the same boto3 APIs a user would call, while moto still runs and after the functions
and event sources have stopped. Restored after the resources are created and before any event
source is wired, so putting objects back triggers nothing. What is not kept, by design: older
S3 object versions (the newest of each key is; version ids are new after a restore), messages
in flight when the stack stopped (a function was working on them; they are lost as on a crash),
CloudWatch log groups and schedules' timers.
"""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from mlops.errors import ConfigError, StorageError
from mlops_cli.emulator.template import REGION

FORMAT = 1
MANIFEST = "state.json"


@dataclass(frozen=True)
class Resources:
    """The template's stateful resources by logical id: bucket names, table names, queue URLs."""

    model: str
    buckets: dict[str, str]
    tables: dict[str, str]
    queues: dict[str, str]


@dataclass(frozen=True)
class Counts:
    objects: int = 0
    items: int = 0
    messages: int = 0

    def describe(self) -> str:
        return f"{self.objects} objects, {self.items} items, {self.messages} queued messages"


def save(directory: Path, resources: Resources) -> Counts:
    """Write the state to ``directory`` (replaced whole, never half-written)."""
    try:
        return _save(directory, resources)
    except (ClientError, BotoCoreError, OSError) as exc:
        raise StorageError(f"cannot keep the local state in {directory}: {exc}") from exc


def _save(directory: Path, resources: Resources) -> Counts:
    staging = directory.with_name(directory.name + ".saving")
    shutil.rmtree(staging, ignore_errors=True)
    (staging / "blobs").mkdir(parents=True)
    objects = sum(_save_bucket(staging, lid, b) for lid, b in resources.buckets.items())
    items = sum(_save_table(staging, lid, t) for lid, t in resources.tables.items())
    messages = sum(_save_queue(staging, lid, q) for lid, q in resources.queues.items())
    counts = Counts(objects, items, messages)
    manifest = {"format": FORMAT, "model": resources.model, "counts": counts.__dict__}
    (staging / MANIFEST).write_text(json.dumps(manifest, indent=2))
    previous = directory.with_name(directory.name + ".previous")
    shutil.rmtree(previous, ignore_errors=True)
    if directory.exists():
        directory.rename(previous)
    staging.rename(directory)
    shutil.rmtree(previous, ignore_errors=True)
    return counts


def restore(directory: Path, resources: Resources) -> Counts | None:
    """Put ``directory``'s state into the freshly created resources; None if there is none."""
    if not (directory / MANIFEST).exists():
        # A save interrupted between its two renames leaves the last good state aside.
        previous = directory.with_name(directory.name + ".previous")
        if not (previous / MANIFEST).exists():
            return None
        directory = previous
    manifest_path = directory / MANIFEST
    try:
        manifest = json.loads(manifest_path.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{manifest_path} is unreadable ({exc}): use --fresh") from exc
    if manifest.get("format") != FORMAT:
        raise ConfigError(f"{directory} holds state format {manifest.get('format')}: use --fresh")
    if manifest.get("model") != resources.model:
        raise ConfigError(
            f"{directory} holds the state of model {manifest.get('model')!r}, and this stack "
            f"serves {resources.model!r}: pass --fresh to start empty, or another --state-dir"
        )
    try:
        objects = sum(_restore_bucket(directory, lid, b) for lid, b in resources.buckets.items())
        items = sum(_restore_table(directory, lid, t) for lid, t in resources.tables.items())
        messages = sum(_restore_queue(directory, lid, q) for lid, q in resources.queues.items())
    except (ClientError, BotoCoreError, OSError, KeyError, TypeError, ValueError) as exc:
        raise ConfigError(
            f"cannot restore the local state from {directory} ({type(exc).__name__}: {exc}): "
            "pass --fresh to start empty"
        ) from exc
    return Counts(objects, items, messages)


def _client(service: str) -> Any:
    return boto3.client(service, region_name=REGION)  # type: ignore[call-overload]


def _save_bucket(root: Path, logical_id: str, bucket: str) -> int:
    s3 = _client("s3")
    index: list[dict[str, Any]] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for entry in page.get("Contents", []):
            got = s3.get_object(Bucket=bucket, Key=entry["Key"])
            body = got["Body"].read()
            digest = hashlib.sha256(body).hexdigest()
            blob = root / "blobs" / digest
            if not blob.exists():  # the same bytes under many keys are kept once
                blob.write_bytes(body)
            index.append(
                {
                    "key": entry["Key"],
                    "sha256": digest,
                    "content_type": got.get("ContentType"),
                    "content_encoding": got.get("ContentEncoding"),
                    "metadata": got.get("Metadata") or {},
                }
            )
    _write(root / "s3" / f"{logical_id}.json", index)
    return len(index)


def _restore_bucket(root: Path, logical_id: str, bucket: str) -> int:
    index = _read(root / "s3" / f"{logical_id}.json")
    s3 = _client("s3")
    for entry in index:
        headers = (("ContentType", "content_type"), ("ContentEncoding", "content_encoding"))
        extra = {name: entry[field] for name, field in headers if entry.get(field)}
        body = (root / "blobs" / entry["sha256"]).read_bytes()
        s3.put_object(
            Bucket=bucket, Key=entry["key"], Body=body, Metadata=entry["metadata"], **extra
        )
    return len(index)


def _save_table(root: Path, logical_id: str, table: str) -> int:
    items: list[dict[str, Any]] = []
    for page in _client("dynamodb").get_paginator("scan").paginate(TableName=table):
        items.extend(page.get("Items", []))
    _write(root / "dynamodb" / f"{logical_id}.json", items)
    return len(items)


def _restore_table(root: Path, logical_id: str, table: str) -> int:
    items = _read(root / "dynamodb" / f"{logical_id}.json")
    dynamodb = _client("dynamodb")
    for start in range(0, len(items), 25):  # BatchWriteItem's limit
        requests = [{"PutRequest": {"Item": item}} for item in items[start : start + 25]]
        unprocessed: dict[str, Any] = {table: requests}
        while unprocessed:
            unprocessed = dynamodb.batch_write_item(RequestItems=unprocessed).get(
                "UnprocessedItems", {}
            )
    return len(items)


def _save_queue(root: Path, logical_id: str, url: str) -> int:
    """Every visible message, received with a long visibility timeout (the stack is stopping:
    nothing else reads them) and written in the order received."""
    sqs = _client("sqs")
    messages: list[dict[str, Any]] = []
    while True:
        batch = sqs.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=10,
            VisibilityTimeout=3600,
            WaitTimeSeconds=0,
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        if not batch:
            break
        messages.extend(
            {"body": m["Body"], "attributes": m.get("MessageAttributes") or {}} for m in batch
        )
    _write(root / "sqs" / f"{logical_id}.json", messages)
    return len(messages)


def _restore_queue(root: Path, logical_id: str, url: str) -> int:
    messages = _read(root / "sqs" / f"{logical_id}.json")
    sqs = _client("sqs")
    for message in messages:
        attributes = {
            name: {k: v for k, v in value.items() if k in _ATTRIBUTE_FIELDS}
            for name, value in message["attributes"].items()
        }
        sqs.send_message(QueueUrl=url, MessageBody=message["body"], MessageAttributes=attributes)
    return len(messages)


_ATTRIBUTE_FIELDS = ("DataType", "StringValue", "BinaryValue")


def _write(path: Path, value: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value, default=_encode_bytes))


def _read(path: Path) -> list[dict[str, Any]]:
    if not path.exists():  # a resource the template has since added: nothing to restore
        return []
    return list(json.loads(path.read_text(), object_hook=_decode_bytes))


# DynamoDB binary attributes and SQS binary message attributes come back from boto3 as bytes.
_BYTES = "$base64"


def _encode_bytes(value: Any) -> Any:
    if isinstance(value, bytes | bytearray):
        return {_BYTES: base64.b64encode(value).decode()}
    raise TypeError(f"cannot keep {type(value).__name__} in the local state")


def _decode_bytes(value: dict[str, Any]) -> Any:
    return base64.b64decode(value[_BYTES]) if value.keys() == {_BYTES} else value
