"""``mlops retrain``: start the event-driven retraining and follow it to its decision.

A local file is uploaded under the training prefix, so the S3 notification triggers the
retrainer exactly as any upload would; ``s3://...`` (or nothing: the newest upload) becomes a
``RetrainRequested`` event on the stack's retrain bus. Then the reports the pipeline writes in
``reports/retrain/`` are followed until the one for this trigger says what happened.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from mlops.adapters.aws import client
from mlops.domain.layout import RETRAIN_REPORTS
from mlops.domain.triggers import retrain_request
from mlops.errors import ConfigError, MlopsError, StorageError
from mlops_cli.emulator.target import Target


@dataclass
class Started:
    """What was triggered, and how to recognise its reports."""

    description: str
    matches: Callable[[dict[str, Any]], bool]
    since: datetime = field(default_factory=lambda: datetime.now(UTC))


def start(target: Target, data: str | None, reason: str, actor: str) -> Started:
    prefix = target.output("TrainingDataPrefix")
    bucket = target.output("TrainingDataBucketName")
    if data is not None and not data.startswith("s3://"):
        path = Path(data)
        try:
            body = path.read_bytes()
        except OSError as exc:
            raise ConfigError(f"cannot read {path}: {exc.strerror}") from exc
        key = prefix + path.name
        since = datetime.now(UTC)
        try:
            put = client("s3").put_object(Bucket=bucket, Key=key, Body=body)
        except Exception as exc:
            raise StorageError(f"cannot upload to s3://{bucket}/{key}: {exc}") from exc
        version = put.get("VersionId")
        etag = put["ETag"].strip('"')

        def same_object(doc: dict[str, Any]) -> bool:
            trigger = _trigger(doc)
            obj = doc.get("object") or {}
            if trigger.get("key") == key or obj.get("uri") == f"s3://{bucket}/{key}":
                seen = trigger.get("version_id") or obj.get("version_id")
                return bool(seen == version if version else trigger.get("etag", etag) == etag)
            return False

        return Started(f"uploaded {path} to s3://{bucket}/{key}", same_object, since)
    request_id = str(uuid.uuid4())
    entry = retrain_request(
        target.model_name, request_id, reason, source="mlops.cli", data_uri=data, requested_by=actor
    )
    since = datetime.now(UTC)
    try:
        response = client("events").put_events(
            Entries=[entry | {"EventBusName": target.output("RetrainBusName")}]
        )
    except Exception as exc:
        raise StorageError(f"cannot put the retrain request on the bus: {exc}") from exc
    if response.get("FailedEntryCount"):
        raise StorageError(f"the retrain bus refused the request: {response['Entries']}")

    def same_request(doc: dict[str, Any]) -> bool:
        return _trigger(doc).get("request_id") == request_id

    what = data or "the newest upload"
    return Started(f"requested retraining on {what} (request {request_id})", same_request, since)


def follow(target: Target, started: Started, timeout: float) -> Iterator[dict[str, Any]]:
    """This trigger's reports as they appear (data report, then the decision or rejection);
    stops after the final one. Raises ``MlopsError`` when none is final within ``timeout``."""
    store = target.store()
    s3 = client("s3")
    # Report keys start with their UTC time; a minute of slack covers clock skew.
    after = RETRAIN_REPORTS + f"{started.since - timedelta(minutes=1):%Y%m%dT%H%M%SZ}"
    seen: set[str] = set()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        listing = s3.list_objects_v2(Bucket=store.bucket, Prefix=RETRAIN_REPORTS, StartAfter=after)
        for item in sorted(listing.get("Contents", []), key=lambda o: o["Key"]):
            key = item["Key"]
            if key in seen:
                continue
            seen.add(key)
            doc = store.get_json(key)
            if not started.matches(doc):
                continue
            doc["uri"] = store.uri(key)
            yield doc
            if final(doc):
                return
        time.sleep(0.5)
    raise MlopsError(
        f"no decision within {timeout:.0f} s: the retrainer may still be running "
        "(see `mlops status` and reports/retrain/)"
    )


# An accepted data report (never the end of a retrain): <time>-data-accepted-<file>...
_ACCEPTED_DATA = re.compile(re.escape(RETRAIN_REPORTS) + r"\d{8}T\d{6}Z-data-accepted-")


def recent(target: Target, limit: int = 5, days: float = 7.0) -> list[dict[str, Any]]:
    """The last ``limit`` finished retrains of the past ``days`` (decision, rejection or skip),
    oldest first, each with its ``uri``: what every requested retrain came to."""
    store = target.store()
    s3 = client("s3")
    after = RETRAIN_REPORTS + f"{datetime.now(UTC) - timedelta(days=days):%Y%m%dT%H%M%SZ}"
    keys: list[str] = []
    try:
        for page in s3.get_paginator("list_objects_v2").paginate(
            Bucket=store.bucket, Prefix=RETRAIN_REPORTS, StartAfter=after
        ):
            # An accepted data report is never the end of a retrain: not worth a read.
            listed = (o["Key"] for o in page.get("Contents", []))
            keys += [key for key in listed if not _ACCEPTED_DATA.match(key)]
            keys = keys[-4 * limit :]  # the newest few; report keys sort by time
    except Exception as exc:
        raise StorageError(f"cannot list {store.uri(RETRAIN_REPORTS)}: {exc}") from exc
    docs: list[dict[str, Any]] = []
    for key in reversed(keys):
        doc = store.get_json(key)
        if final(doc):
            docs.append(doc | {"uri": store.uri(key)})
            if len(docs) == limit:
                break
    return docs[::-1]


def trigger_of(doc: dict[str, Any]) -> str:
    """What started a retrain, in a few words: an upload's key or a request's reason."""
    trigger = _trigger(doc)
    if trigger.get("kind") == "s3_upload":
        return f"upload of {trigger.get('key')}"
    if trigger.get("kind") == "cli":
        return f"mlops train on {trigger.get('uri')}"
    who = trigger.get("requested_by") or "the drift evaluator"
    return f"request by {who}: {trigger.get('reason') or 'no reason given'}"


def final(doc: dict[str, Any]) -> bool:
    """A decision, a rejected trigger, or rejected new data (window files are not final)."""
    if doc.get("kind") == "training_data":
        return doc.get("status") == "rejected" and doc.get("role") == "new"
    return True


def describe(doc: dict[str, Any]) -> str:
    kind = doc.get("kind")
    if kind == "training_data":
        report = doc.get("report") or {}
        return f"data {doc.get('status')}: {report.get('summary', '')} ({doc['uri']})"
    if kind == "retrain_rejected":
        return f"rejected: {doc.get('reason')} ({doc['uri']})"
    if kind == "retrain_skipped":
        return f"skipped: {doc.get('reason')} ({doc['uri']})"
    status, version = doc.get("status"), doc.get("version")
    head = {
        "production": f"v{version} promoted to production",
        "candidate": f"v{version} registered as a candidate (not promoted)",
        "held": f"v{version} held: it may run only as a shadow until live labels clear it",
    }.get(str(status), f"rejected{f' (registered as v{version})' if version else ''}")
    reasons = "; ".join(doc.get("reasons") or [])
    return f"{head}: {reasons} ({doc['uri']})"


def outcome(doc: dict[str, Any]) -> str:
    """promoted | candidate | held | rejected | skipped, for ``--json`` and the exit code."""
    if doc.get("kind") == "retrain_skipped":
        return "skipped"
    if doc.get("kind") == "retrain_decision":
        return {"production": "promoted"}.get(str(doc.get("status")), str(doc.get("status")))
    return "rejected"


def _trigger(doc: dict[str, Any]) -> dict[str, Any]:
    trigger = doc.get("trigger") or (doc.get("lineage") or {}).get("trigger") or {}
    return dict(trigger) if isinstance(trigger, dict) else {}


def as_json(docs: list[dict[str, Any]]) -> str:
    last = docs[-1]
    return json.dumps(
        {
            "outcome": outcome(last),
            "version": last.get("version"),
            "reasons": last.get("reasons")
            or [last.get("reason") or (last.get("report") or {}).get("summary")],
            "reports": [d["uri"] for d in docs],
        }
    )
