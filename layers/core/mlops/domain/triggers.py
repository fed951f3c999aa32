"""What starts a retraining: an upload under the training prefix or a retrain request.

The retrain request is an EventBridge event (contract, ``schema_version`` 1) that the drift
evaluator and ``mlops retrain`` put on the stack's retrain bus::

    {"source": "mlops.drift" | "mlops.cli", "detail-type": "RetrainRequested",
     "detail": {"schema_version": 1, "model": "house-prices", "request_id": "<unique>",
                "reason": "dataset drift: 6 of 9 features drifted",
                "requested_by": "<who, optional>",
                "data_uri": "s3://<training bucket>/<prefix>/<key>" | null,
                "report_uri": "s3://.../reports/drift/....json" | null}}

``data_uri`` null means "the newest object under the training prefix". ``request_id`` is the
idempotency key: a request delivered twice trains once.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

from mlops.errors import InvalidEventError, Problem

DETAIL_TYPE = "RetrainRequested"
REQUEST_SCHEMA_VERSION = 1
# What ``new_candidate_id`` makes: it becomes part of S3 keys, so nothing else is accepted.
_SHA256 = re.compile(r"[0-9a-f]{64}")
_CANDIDATE_ID = re.compile(r"[0-9]{8}T[0-9]{6}Z-[0-9a-f]{8}")  # ASCII digits: \d is Unicode


@dataclass(frozen=True)
class Trigger:
    kind: str  # "s3_upload" | "retrain_request"
    model: str | None = None
    bucket: str | None = None
    key: str | None = None  # None for a request without data: the newest object
    version_id: str | None = None
    etag: str | None = None
    request_id: str | None = None
    reason: str | None = None
    requested_by: str | None = None
    report_uri: str | None = None
    event_time: str | None = None
    # The object alone is the training set (a request resolved to one object version, with no
    # window and no feedback): the object, not the request, identifies the run.
    data_only: bool = False

    @property
    def idempotency_key(self) -> str:
        """One object version, or one request, trains at most once."""
        if self.kind == "s3_upload" or self.data_only:
            return f"s3://{self.bucket}/{self.key}#{self.version_id or self.etag}"
        return f"request:{self.model}:{self.request_id}"

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self).items() if v is not None and v is not False} | {
            "idempotency_key": self.idempotency_key
        }


def is_candidate_id(text: str) -> bool:
    return bool(_CANDIDATE_ID.fullmatch(text))


def parse_triggers(event: Any) -> list[Trigger]:
    """The triggers in an S3 notification or an EventBridge retrain request; anything else
    is an ``InvalidEventError`` naming what was wrong."""
    if not isinstance(event, Mapping):
        raise InvalidEventError("expected an S3 notification or a RetrainRequested event")
    if "Records" in event:
        return _s3_records(event["Records"])
    if event.get("detail-type") == DETAIL_TYPE:
        return [_request(event)]
    if "detail-type" in event:
        raise InvalidEventError(
            f"EventBridge event of type {event.get('detail-type')!r}; expected {DETAIL_TYPE!r}"
        )
    raise InvalidEventError("expected an S3 notification or a RetrainRequested event")


def _s3_records(records: Any) -> list[Trigger]:
    if not isinstance(records, list) or not records:
        raise InvalidEventError("Records: expected a non-empty list")
    out = []
    for i, record in enumerate(records):
        if not isinstance(record, Mapping):
            raise InvalidEventError(f"Records[{i}]: not an S3 event record (not an object)")
        try:
            if not str(record["eventName"]).startswith("ObjectCreated:"):
                continue  # a notification for another event type: nothing to train on
            s3 = record["s3"]
            if str(s3["object"]["key"]).endswith("/"):
                continue  # a "folder" made in the console: a zero-byte placeholder, not data
            trigger = Trigger(
                kind="s3_upload",
                bucket=str(s3["bucket"]["name"]),
                # Keys arrive URL-encoded, spaces as "+".
                key=unquote_plus(str(s3["object"]["key"])),
                version_id=s3["object"].get("versionId") or None,
                etag=s3["object"].get("eTag") or None,
                event_time=record.get("eventTime"),
            )
        except (KeyError, TypeError, AttributeError) as exc:
            raise InvalidEventError(
                f"Records[{i}]: not an S3 event record (missing {exc})"
            ) from exc
        if trigger.version_id is None and trigger.etag is None:
            # Without either, two uploads to one key would share an idempotency key.
            raise InvalidEventError(f"Records[{i}]: s3.object has neither versionId nor eTag")
        out.append(trigger)
    return out


def _request(event: Mapping[str, Any]) -> Trigger:
    detail = event.get("detail")
    if not isinstance(detail, Mapping):
        raise InvalidEventError("detail: expected an object", [Problem("detail", "required")])
    problems: list[Problem] = []
    version = detail.get("schema_version")
    if isinstance(version, bool) or version != REQUEST_SCHEMA_VERSION:  # JSON true == 1
        problems.append(Problem("detail.schema_version", f"expected {REQUEST_SCHEMA_VERSION}"))
    for name in ("model", "request_id", "reason"):
        value = detail.get(name)
        if not isinstance(value, str) or not value.strip():
            problems.append(Problem(f"detail.{name}", "required, a non-empty string"))
    for name in ("data_uri", "report_uri", "requested_by"):
        value = detail.get(name)
        if value is not None and not isinstance(value, str):
            problems.append(Problem(f"detail.{name}", "expected a string or null"))
    data_uri = detail.get("data_uri")
    bucket = key = None
    if isinstance(data_uri, str):
        bucket, _, key = data_uri.removeprefix("s3://").partition("/")
        if not data_uri.startswith("s3://") or not bucket or not key:
            problems.append(Problem("detail.data_uri", "expected s3://bucket/key"))
    if problems:
        raise InvalidEventError(f"{len(problems)} problem(s) in the retrain request", problems)
    return Trigger(
        kind="retrain_request",
        model=str(detail["model"]),
        bucket=bucket,
        key=key,
        request_id=str(detail["request_id"]),
        reason=str(detail["reason"]),
        requested_by=detail.get("requested_by"),
        report_uri=detail.get("report_uri"),
        event_time=event.get("time"),
    )


def retrain_request(
    model: str,
    request_id: str,
    reason: str,
    *,
    source: str,
    data_uri: str | None = None,
    report_uri: str | None = None,
    requested_by: str | None = None,
) -> dict[str, Any]:
    """A ``PutEvents`` entry (without the bus name) for a retrain request."""
    detail = {
        "schema_version": REQUEST_SCHEMA_VERSION,
        "model": model,
        "request_id": request_id,
        "reason": reason,
        "requested_by": requested_by,
        "data_uri": data_uri,
        "report_uri": report_uri,
    }
    return {"Source": source, "DetailType": DETAIL_TYPE, "Detail": json.dumps(detail)}


def staged_candidates(event: Any, model: str) -> list[dict[str, str]]:
    """The candidates a retrainer run staged, from Lambda's destination invocation record
    (``responsePayload`` is the retrainer's return value, each candidate with the sha256 of
    its ``candidate.json``) or a direct ``{"model": ..., "candidate_id": ...}`` invocation (an
    operator re-running the gate; the digest is then optional)."""
    if not isinstance(event, Mapping):
        raise InvalidEventError("expected a destination invocation record or a candidate")
    if "candidate_id" in event:
        candidates = [event]
    elif "responsePayload" in event:
        context = event.get("requestContext")
        condition = context.get("condition") if isinstance(context, Mapping) else None
        if condition != "Success":
            raise InvalidEventError(f"requestContext.condition is {condition!r}, not 'Success'")
        payload = event["responsePayload"]
        results = payload.get("results") if isinstance(payload, Mapping) else None
        if not isinstance(results, list):
            raise InvalidEventError("responsePayload.results: expected a list")
        candidates = [
            r["candidate"]
            for r in results
            if isinstance(r, Mapping) and r.get("status") == "staged" and "candidate" in r
        ]
    else:
        raise InvalidEventError("expected a destination invocation record or a candidate")
    out = []
    for i, item in enumerate(candidates):
        name, cid = (
            item.get(k) if isinstance(item, Mapping) else None for k in ("model", "candidate_id")
        )
        if not isinstance(cid, str) or not _CANDIDATE_ID.fullmatch(cid):
            raise InvalidEventError(f"candidate {i}: candidate_id {cid!r} is not a candidate id")
        if name != model:
            raise InvalidEventError(f"candidate {i}: model {name!r}; this stack serves {model!r}")
        staged = {"model": model, "candidate_id": cid}
        # The digest of candidate.json travels in Lambda's own record, out of reach of anyone
        # who can write to staging/: the gate refuses a candidate.json that does not match.
        digest = item.get("candidate_sha256")
        if digest is not None or "responsePayload" in event:
            if not isinstance(digest, str) or not _SHA256.fullmatch(digest):
                raise InvalidEventError(
                    f"candidate {i}: candidate_sha256 {digest!r} is not a sha256"
                )
            staged["candidate_sha256"] = digest
        out.append(staged)
    return out


def drift_request(event: Any, default_window_hours: float) -> tuple[float, bool]:
    """``(window_hours, act)`` from a scheduled event (the defaults) or an on-demand
    ``{"window_hours": N, "act": bool}`` invocation; anything else is ``InvalidEventError``."""
    if not isinstance(event, Mapping):
        raise InvalidEventError('expected a scheduled event or {"window_hours": N}')
    if event.get("detail-type") == "Scheduled Event" or event.get("source") == "aws.events":
        return default_window_hours, True
    unknown = set(event) - {"window_hours", "act"}
    if unknown:
        raise InvalidEventError(f"unknown keys {sorted(unknown)}: expected window_hours, act")
    hours = event.get("window_hours", default_window_hours)
    if isinstance(hours, bool) or not isinstance(hours, int | float) or not 1 <= hours <= 24 * 90:
        raise InvalidEventError("window_hours: a number of hours from 1 to 2160")
    act = event.get("act", True)
    if not isinstance(act, bool):
        raise InvalidEventError("act: expected true or false")
    return float(hours), act
