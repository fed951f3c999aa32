"""S3 event notifications, delivered through moto's own S3 → SQS notifications.

Faithful to AWS: prefix/suffix rules (applied by moto), the ``s3:TestEvent`` skipped, each record
invoked asynchronously, as S3 does, in the real record shape (``eventVersion`` 2.1; keys
form-encoded as S3 sends them: space → ``+``, ``/`` kept).

Where moto 5.2.5 differs from AWS, and what this module does about it: its notifications encode
"/" in keys as %2F, so keys are re-encoded with "/" kept, and the fields moto leaves out
(userIdentity, requestParameters, responseElements, bucket ownerIdentity, object sequencer) are
filled in; the object's ``versionId`` (versioned buckets), which only moto knows, is added by
wrapping moto's event builder (``moto_s3_version_ids``: it reaches a moto server running in this
process, as the local stack's does); a completed multipart upload makes moto notify twice
(``ObjectCreated:Put`` from its inner put, then ``ObjectCreated:CompleteMultipartUpload``), so
``moto_s3_one_event_per_upload`` silences the inner one, as S3 sends only the second.
"""

from __future__ import annotations

import base64
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote_plus, unquote_plus

from mlops.errors import ConfigError
from mlops_cli.emulator.sources.declarations import Declaration
from mlops_cli.emulator.sources.lambda_service import InvokeAsync, iso_ms
from mlops_cli.emulator.sources.moto_backend import MotoBackend
from mlops_cli.emulator.template import ACCOUNT, REGION


@dataclass(frozen=True)
class S3Source:
    function: str
    event: str
    bucket: str
    events: tuple[str, ...]
    key_rules: tuple[tuple[str, str], ...] = ()
    enabled: bool = True


def parse_s3_event(ctx: Declaration, raw: dict[str, Any]) -> S3Source:
    template, resolver, _stack, function, event, where = ctx
    bucket_ref = raw.get("Bucket")
    logical = bucket_ref.get("Ref") if isinstance(bucket_ref, dict) else None
    resources = template.get("Resources", {})
    if logical is None or resources.get(logical, {}).get("Type") != "AWS::S3::Bucket":
        # SAM's own rule: the bucket must be declared in the same template.
        raise ConfigError(f"{where}: Bucket must be !Ref to an AWS::S3::Bucket in this template")
    props = resolver.resolve({k: v for k, v in raw.items() if k != "Bucket"})
    events = props.get("Events")
    events = [events] if isinstance(events, str) else events
    if not events or not all(isinstance(e, str) and e.startswith("s3:") for e in events):
        raise ConfigError(f"{where}: Events must be S3 event names like s3:ObjectCreated:*")
    rules = []
    for rule in (props.get("Filter") or {}).get("S3Key", {}).get("Rules", []):
        name = str(rule.get("Name", "")).lower()
        if name not in ("prefix", "suffix"):
            raise ConfigError(f"{where}: Filter.S3Key.Rules[].Name must be prefix or suffix")
        rules.append((name, str(rule.get("Value", ""))))
    return S3Source(
        function=function,
        event=event,
        bucket=str(resolver.ref(logical)),
        events=tuple(events),
        key_rules=tuple(rules),
    )


# ------------------------------------------------------------------ delivery


def notification_queue(
    source: S3Source, moto: MotoBackend, stack: str
) -> tuple[str, dict[str, Any]]:
    """The internal queue moto notifies for ``source``: its URL and the bucket's
    QueueConfiguration for it (``set_notifications`` puts them on the bucket)."""
    url, arn = moto.queue(f"{stack}-s3-{source.function}-{source.event}")
    config: dict[str, Any] = {
        "Id": f"{source.function}{source.event}",
        "QueueArn": arn,
        "Events": list(source.events),
    }
    if source.key_rules:
        rules = [{"Name": name, "Value": value} for name, value in source.key_rules]
        config["Filter"] = {"Key": {"FilterRules": rules}}
    return url, config


def set_notifications(moto: MotoBackend, configs: Mapping[str, list[dict[str, Any]]]) -> None:
    """One call per bucket: the configuration replaces the bucket's whole set."""
    for bucket, queue_configs in configs.items():
        moto.s3.put_bucket_notification_configuration(
            Bucket=bucket,
            NotificationConfiguration={"QueueConfigurations": queue_configs},  # type: ignore[typeddict-item]
        )


def notification_delivery(source: S3Source, invoke_async: InvokeAsync) -> Callable[[Any], None]:
    """What becomes of each notification on the source's queue: its records, each invoked
    asynchronously."""

    def deliver(body: Any) -> None:
        if not isinstance(body, dict) or body.get("Event") == "s3:TestEvent":
            return  # S3 sends a test event when the configuration is set
        for record in body.get("Records", []):
            invoke_async(source.function, {"Records": [s3_record(record)]})

    return deliver


# ------------------------------------------------------------------ the event


def moto_s3_version_ids() -> None:
    """Make moto's S3 notifications carry the object's ``versionId`` in a versioned bucket,
    as S3's do (moto 5.2.5 leaves it out). Idempotent; affects moto servers in this process."""
    from moto.s3 import notifications

    build = notifications._get_s3_event
    if getattr(build, "adds_version_id", False):
        return

    def with_version_id(
        event_name: str, bucket: Any, key: Any, notification_id: str
    ) -> dict[str, list[dict[str, Any]]]:
        event = build(event_name, bucket, key, notification_id)
        version = getattr(key, "version_id", None)
        if version and version != "null":  # moto's "null": an unversioned bucket
            for record in event.get("Records", []):
                obj = record["s3"]["object"]
                # S3's field order: key, size, eTag, versionId, sequencer.
                record["s3"]["object"] = {
                    **{k: v for k, v in obj.items() if k != "sequencer"},
                    "versionId": version,
                    **({"sequencer": obj["sequencer"]} if "sequencer" in obj else {}),
                }
        return event

    with_version_id.adds_version_id = True  # type: ignore[attr-defined]
    notifications._get_s3_event = with_version_id


_completing = threading.local()


def moto_s3_one_event_per_upload() -> None:
    """One notification per completed multipart upload, as S3 sends (moto 5.2.5 sends two,
    so a large upload would invoke its function twice). Idempotent; affects moto servers in
    this process; other requests on other threads keep their notifications."""
    from moto.s3.models import S3Backend

    complete = S3Backend.complete_multipart_upload
    if getattr(complete, "one_event", False):
        return
    put = S3Backend.put_object

    def put_object(self: Any, *args: Any, **kwargs: Any) -> Any:
        if getattr(_completing, "active", False):
            kwargs["disable_notification"] = True
        return put(self, *args, **kwargs)

    def complete_multipart_upload(self: Any, *args: Any, **kwargs: Any) -> Any:
        _completing.active = True
        try:
            return complete(self, *args, **kwargs)
        finally:
            _completing.active = False

    complete_multipart_upload.one_event = True  # type: ignore[attr-defined]
    S3Backend.put_object = put_object  # type: ignore[method-assign]
    S3Backend.complete_multipart_upload = complete_multipart_upload  # type: ignore[method-assign]


def s3_record(record: Mapping[str, Any]) -> dict[str, Any]:
    """moto's S3 notification record in the real shape, with the fields moto leaves out."""
    s3 = record.get("s3", {})
    bucket = s3.get("bucket", {})
    obj = dict(s3.get("object", {}))
    # moto encodes "/" too; S3 form-encodes the key but keeps "/" (space → "+").
    obj["key"] = quote_plus(unquote_plus(obj.get("key", "")), safe="/")
    obj.setdefault("sequencer", f"{time.time_ns():018X}")
    return {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": record.get("awsRegion", REGION),
        "eventTime": record.get("eventTime") or iso_ms(datetime.now(UTC)),
        "eventName": record.get("eventName", ""),
        "userIdentity": record.get("userIdentity") or {"principalId": f"AWS:{ACCOUNT}"},
        "requestParameters": record.get("requestParameters") or {"sourceIPAddress": "127.0.0.1"},
        "responseElements": record.get("responseElements")
        or {
            "x-amz-request-id": secrets.token_hex(8).upper(),
            "x-amz-id-2": base64.b64encode(secrets.token_bytes(48)).decode(),
        },
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": s3.get("configurationId", ""),
            "bucket": {
                "name": bucket.get("name", ""),
                "ownerIdentity": bucket.get("ownerIdentity") or {"principalId": ACCOUNT},
                "arn": bucket.get("arn", f"arn:aws:s3:::{bucket.get('name', '')}"),
            },
            "object": obj,
        },
    }
