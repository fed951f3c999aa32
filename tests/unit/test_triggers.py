"""What starts a retraining (S3 uploads, RetrainRequested events) and what reaches the gate
(the retrainer's destination record), parsed from real-shaped events."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from mlops.domain.triggers import (
    Trigger,
    parse_triggers,
    retrain_request,
    staged_candidates,
)
from mlops.errors import InvalidEventError
from tests.conftest import EVENTS, load_event

MODEL = "house-prices"
CANDIDATE_ID = "20261128T231005Z-0a1b2c3d"
S3_EVENTS = sorted(p.name for p in EVENTS.glob("s3_*.json"))


def s3_event(key: str = "training-data/houses.csv", **object_fields: Any) -> dict[str, Any]:
    """events/s3_put.json with its object replaced."""
    event = copy.deepcopy(load_event("s3_put.json"))
    event["Records"][0]["s3"]["object"] = {"key": key, "size": 10} | object_fields
    return event


def request_event(**detail: Any) -> dict[str, Any]:
    """events/retrain_request.json with detail fields replaced (None removes one)."""
    event = copy.deepcopy(load_event("retrain_request.json"))
    for name, value in detail.items():
        if value is None:
            event["detail"].pop(name, None)
        else:
            event["detail"][name] = value
    return event


def problem_fields(exc: InvalidEventError) -> list[str]:
    return [p.field for p in exc.details]


# --- S3 uploads ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", S3_EVENTS)
def test_s3_event_file_gives_one_upload_trigger(name: str) -> None:
    # Given a real-shaped S3 ObjectCreated notification
    event = load_event(name)
    s3 = event["Records"][0]["s3"]

    # When it is parsed
    (trigger,) = parse_triggers(event)

    # Then it names the bucket, the object version and the event time
    assert trigger.kind == "s3_upload"
    assert trigger.bucket == s3["bucket"]["name"]
    assert trigger.etag == s3["object"]["eTag"]
    assert trigger.version_id == s3["object"].get("versionId")
    assert trigger.event_time == event["Records"][0]["eventTime"]


def test_s3_put_event_key_is_decoded_from_form_encoding() -> None:
    # Given events/s3_put.json, whose key "training-data/month 3.csv.gz" arrives as "month+3"
    (trigger,) = parse_triggers(load_event("s3_put.json"))

    # Then the key is the object's real key
    assert trigger.key == "training-data/month 3.csv.gz"


@pytest.mark.parametrize(
    ("encoded", "key"),
    [
        ("training-data/a+b.csv", "training-data/a b.csv"),
        ("training-data/a%2Bb.csv", "training-data/a+b.csv"),
        ("training-data/a%2B+b%20c.csv", "training-data/a+ b c.csv"),
        ("training-data/caf%C3%A9.csv", "training-data/café.csv"),
    ],
)
def test_s3_keys_are_url_decoded_with_plus_as_space(encoded: str, key: str) -> None:
    # Given an upload whose key S3 form-encoded
    (trigger,) = parse_triggers(s3_event(encoded, eTag="e"))

    # Then "+" is a space and "%2B" a plus
    assert trigger.key == key


def test_records_for_other_event_types_are_skipped() -> None:
    # Given a notification with a deletion and an upload
    event = s3_event(eTag="e")
    deletion = copy.deepcopy(event["Records"][0]) | {"eventName": "ObjectRemoved:Delete"}
    event["Records"].insert(0, deletion)

    # When it is parsed
    triggers = parse_triggers(event)

    # Then only the upload is a trigger
    assert [t.kind for t in triggers] == ["s3_upload"]


@pytest.mark.parametrize(
    ("path", "missing"),
    [
        (("eventName",), "eventName"),
        (("s3",), "s3"),
        (("s3", "bucket", "name"), "name"),
        (("s3", "object", "key"), "key"),
    ],
)
def test_record_missing_a_field_is_refused_naming_the_record(
    path: tuple[str, ...], missing: str
) -> None:
    # Given a notification whose second record lacks a field
    event = s3_event(eTag="e")
    event["Records"].append(copy.deepcopy(event["Records"][0]))
    holder = event["Records"][1]
    for step in path[:-1]:
        holder = holder[step]
    del holder[path[-1]]

    # When it is parsed
    with pytest.raises(InvalidEventError) as caught:
        parse_triggers(event)

    # Then the error names the record and the missing field
    assert str(caught.value) == f"Records[1]: not an S3 event record (missing '{missing}')"


@pytest.mark.parametrize("records", [[], {}, "x", None])
def test_records_that_are_not_a_non_empty_list_are_refused(records: Any) -> None:
    # Given a notification whose Records are empty or not a list
    # When it is parsed, Then it is refused
    with pytest.raises(InvalidEventError, match=r"^Records: expected a non-empty list$"):
        parse_triggers({"Records": records})


def test_record_that_is_not_an_object_is_refused_naming_it() -> None:
    # Given a notification whose second record is a string
    event = s3_event(eTag="e")
    event["Records"].append("ObjectCreated:Put")

    # When it is parsed, Then the error names that record
    with pytest.raises(InvalidEventError, match=r"^Records\[1\]: not an S3 event record"):
        parse_triggers(event)


def test_upload_without_version_or_etag_is_refused() -> None:
    # Given an upload record that cannot tell one upload of a key from the next
    event = s3_event()

    # When it is parsed
    with pytest.raises(InvalidEventError) as caught:
        parse_triggers(event)

    # Then it is refused rather than given an idempotency key every re-upload would share
    assert str(caught.value) == "Records[0]: s3.object has neither versionId nor eTag"


def test_idempotency_key_uses_the_version_id_when_there_is_one() -> None:
    # Given an upload to a versioned bucket
    (trigger,) = parse_triggers(s3_event("d/a.csv", eTag="etag1", versionId="v1"))

    # Then the object version identifies it
    assert trigger.idempotency_key == "s3://mlops-local-trainingdatabucket/d/a.csv#v1"


def test_idempotency_key_falls_back_to_the_etag() -> None:
    # Given an upload to an unversioned bucket
    (trigger,) = parse_triggers(s3_event("d/a.csv", eTag="etag1"))

    # Then its content hash identifies it
    assert trigger.idempotency_key == "s3://mlops-local-trainingdatabucket/d/a.csv#etag1"


def test_two_versions_of_one_key_have_different_idempotency_keys() -> None:
    # Given the same bytes uploaded twice to one key of a versioned bucket
    (first,) = parse_triggers(s3_event("d/a.csv", eTag="same", versionId="v1"))
    (second,) = parse_triggers(s3_event("d/a.csv", eTag="same", versionId="v2"))

    # Then each upload trains
    assert first.idempotency_key != second.idempotency_key


def test_trigger_record_rebuilds_the_trigger() -> None:
    # Given a trigger as the retrainer hands it to its idempotent function
    (trigger,) = parse_triggers(load_event("s3_training_upload.json"))
    record = trigger.as_dict()

    # When it is rebuilt, as functions/retrainer does
    rebuilt = Trigger(**{k: v for k, v in record.items() if k != "idempotency_key"})

    # Then it is the same trigger, and the record carries its idempotency key
    assert rebuilt == trigger
    assert record["idempotency_key"] == trigger.idempotency_key


# --- retrain requests ----------------------------------------------------------------------


def test_retrain_request_event_file_gives_a_request_trigger() -> None:
    # Given events/retrain_request.json (no data_uri: the newest object)
    (trigger,) = parse_triggers(load_event("retrain_request.json"))

    # Then it is a request for the model, keyed by its request id
    assert trigger == Trigger(
        kind="retrain_request",
        model=MODEL,
        request_id="9b2f6c1e-3d4a-4f5b-8e7c-1a2b3c4d5e6f",
        reason="dataset drift: 6 of 9 features drifted",
        event_time="2026-11-28T23:00:00Z",
    )
    assert trigger.idempotency_key == f"request:{MODEL}:9b2f6c1e-3d4a-4f5b-8e7c-1a2b3c4d5e6f"


def test_retrain_request_data_uri_becomes_bucket_and_key() -> None:
    # Given a request naming the object to train on
    (trigger,) = parse_triggers(request_event(data_uri="s3://bucket/training-data/x/y.csv"))

    # Then the trigger points at it
    assert (trigger.bucket, trigger.key) == ("bucket", "training-data/x/y.csv")


@pytest.mark.parametrize(
    ("detail", "field"),
    [
        ({"model": ""}, "detail.model"),
        ({"model": None}, "detail.model"),
        ({"model": 7}, "detail.model"),
        ({"request_id": "  "}, "detail.request_id"),
        ({"request_id": None}, "detail.request_id"),
        ({"reason": None}, "detail.reason"),
        ({"schema_version": 2}, "detail.schema_version"),
        ({"schema_version": "1"}, "detail.schema_version"),
        ({"schema_version": True}, "detail.schema_version"),
        ({"schema_version": None}, "detail.schema_version"),
        ({"data_uri": "https://bucket/key.csv"}, "detail.data_uri"),
        ({"data_uri": "bucket/key.csv"}, "detail.data_uri"),
        ({"data_uri": "s3://bucket"}, "detail.data_uri"),
        ({"data_uri": "s3://bucket/"}, "detail.data_uri"),
        ({"data_uri": "s3:///key.csv"}, "detail.data_uri"),
        ({"data_uri": 5}, "detail.data_uri"),
        ({"report_uri": ["s3://b/k"]}, "detail.report_uri"),
        ({"requested_by": 1}, "detail.requested_by"),
    ],
)
def test_schema_violation_in_a_request_is_named(detail: dict[str, Any], field: str) -> None:
    # Given a retrain request with one field wrong
    event = request_event(**detail)

    # When it is parsed
    with pytest.raises(InvalidEventError) as caught:
        parse_triggers(event)

    # Then the one problem names that field
    assert problem_fields(caught.value) == [field]


def test_every_violation_in_a_request_is_named_at_once() -> None:
    # Given a request with four fields wrong
    event = request_event(model="", request_id=None, schema_version=0, data_uri="ftp://x/y")

    # When it is parsed
    with pytest.raises(InvalidEventError) as caught:
        parse_triggers(event)

    # Then all four are named, so a sender fixes them in one go
    assert problem_fields(caught.value) == [
        "detail.schema_version",
        "detail.model",
        "detail.request_id",
        "detail.data_uri",
    ]


@pytest.mark.parametrize("detail", [None, "text", ["a"]])
def test_request_whose_detail_is_not_an_object_is_refused(detail: Any) -> None:
    # Given a RetrainRequested event whose detail is not an object
    event = load_event("retrain_request.json") | {"detail": detail}

    # When it is parsed, Then it is refused
    with pytest.raises(InvalidEventError, match=r"^detail: expected an object"):
        parse_triggers(event)


def test_another_eventbridge_detail_type_is_refused_by_name() -> None:
    # Given an EventBridge event of another type
    event = load_event("eventbridge_custom.json")

    # Then it is refused, naming its type and the expected one
    with pytest.raises(InvalidEventError) as caught:
        parse_triggers(event)
    assert str(caught.value) == (
        f"EventBridge event of type {event['detail-type']!r}; expected 'RetrainRequested'"
    )


@pytest.mark.parametrize("event", [{}, {"detail": {}}, [], "Records", None])
def test_anything_else_is_refused(event: Any) -> None:
    # Given neither an S3 notification nor an EventBridge event
    # When it is parsed, Then it is refused
    with pytest.raises(
        InvalidEventError, match=r"^expected an S3 notification or a RetrainRequested event$"
    ):
        parse_triggers(event)


def as_delivered(entry: dict[str, Any]) -> dict[str, Any]:
    """The event EventBridge delivers to a rule's target for a ``PutEvents`` entry."""
    return {
        "version": "0",
        "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
        "detail-type": entry["DetailType"],
        "source": entry["Source"],
        "account": "123456789012",
        "time": "2026-11-29T08:00:00Z",
        "region": "us-east-1",
        "resources": [],
        "detail": json.loads(entry["Detail"]),
    }


@pytest.mark.parametrize(
    "optional",
    [
        {},
        {
            "data_uri": "s3://training/training-data/month 4.csv",
            "report_uri": "s3://artifacts/reports/drift/1.json",
            "requested_by": "arn:aws:iam::123456789012:user/ops",
        },
    ],
    ids=["minimal", "everything"],
)
def test_retrain_request_round_trips_through_eventbridge(optional: dict[str, str]) -> None:
    # Given a PutEvents entry built by retrain_request, delivered by EventBridge
    entry = retrain_request(MODEL, "req-1", "operator asked", source="mlops.cli", **optional)

    # When the delivered event is parsed
    (trigger,) = parse_triggers(as_delivered(entry))

    # Then every field came through
    assert trigger.as_dict() == {
        "kind": "retrain_request",
        "model": MODEL,
        "request_id": "req-1",
        "reason": "operator asked",
        "event_time": "2026-11-29T08:00:00Z",
        "idempotency_key": f"request:{MODEL}:req-1",
    } | (
        {
            "bucket": "training",
            "key": "training-data/month 4.csv",
            "report_uri": optional["report_uri"],
            "requested_by": optional["requested_by"],
        }
        if optional
        else {}
    )


def test_retrain_request_is_a_put_events_entry_without_a_bus() -> None:
    # Given a request built for PutEvents
    entry = retrain_request(MODEL, "req-1", "drift", source="mlops.drift")

    # Then the caller adds the bus; the detail is JSON text, as PutEvents takes it
    assert set(entry) == {"Source", "DetailType", "Detail"}
    assert isinstance(entry["Detail"], str)


# --- staged candidates ---------------------------------------------------------------------


def destination_record(
    results: list[dict[str, Any]], condition: str = "Success", **changes: Any
) -> dict[str, Any]:
    """What Lambda sends an OnSuccess/OnFailure destination for an asynchronous invocation."""
    return {
        "version": "1.0",
        "timestamp": "2026-11-28T23:12:41.512Z",
        "requestContext": {
            "requestId": "c2d6a6b4-7a1e-4a55-9c0e-8f5d2a1b3c4d",
            "functionArn": "arn:aws:lambda:us-east-1:123456789012:function:mlops-Retrainer:$LATEST",
            "condition": condition,
            "approximateInvokeCount": 1,
        },
        "requestPayload": load_event("s3_training_upload.json"),
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST"},
        "responsePayload": {"model": MODEL, "results": results},
    } | changes


DIGEST = "0123456789abcdef" * 4


def staged(candidate_id: str = CANDIDATE_ID, model: str = MODEL) -> dict[str, Any]:
    return {
        "status": "staged",
        "trigger": {"kind": "s3_upload"},
        "candidate": {
            "model": model,
            "candidate_id": candidate_id,
            "candidate_sha256": DIGEST,
            "train_rows": 800,
        },
    }


def test_destination_record_gives_the_staged_candidates() -> None:
    # Given the retrainer staged two candidates
    other = "20261128T231006Z-ffffffff"
    record = destination_record([staged(), staged(other)])

    # Then both reach the gate, reduced to model, candidate id and candidate.json's digest
    assert staged_candidates(record, MODEL) == [
        {"model": MODEL, "candidate_id": CANDIDATE_ID, "candidate_sha256": DIGEST},
        {"model": MODEL, "candidate_id": other, "candidate_sha256": DIGEST},
    ]


@pytest.mark.parametrize("digest", [None, "", "abc", DIGEST.upper(), DIGEST + "0", 42])
def test_a_destination_record_needs_candidate_json_s_digest(digest: Any) -> None:
    # The digest is what anchors the staged files: without a valid one nothing is judged
    result = staged()
    result["candidate"]["candidate_sha256"] = digest
    with pytest.raises(InvalidEventError, match="candidate_sha256"):
        staged_candidates(destination_record([result]), MODEL)


def test_a_direct_invocation_may_leave_the_digest_out_but_not_forge_one() -> None:
    direct = {"model": MODEL, "candidate_id": CANDIDATE_ID}
    assert staged_candidates(direct, MODEL) == [direct]
    with pytest.raises(InvalidEventError, match="candidate_sha256"):
        staged_candidates(direct | {"candidate_sha256": "x"}, MODEL)


def test_only_staged_results_are_picked() -> None:
    # Given one rejected upload and one staged candidate
    rejected = {"status": "rejected", "trigger": {}, "reasons": ["too few rows"]}
    record = destination_record([rejected, staged(), {"status": "staged"}])

    # Then only the staged candidate is judged
    assert staged_candidates(record, MODEL) == [
        {"model": MODEL, "candidate_id": CANDIDATE_ID, "candidate_sha256": DIGEST}
    ]


def test_run_that_staged_nothing_gives_no_candidates() -> None:
    # Given a successful run with no results, Then there is nothing to judge
    assert staged_candidates(destination_record([]), MODEL) == []


@pytest.mark.parametrize("condition", ["RetriesExhausted", "EventAgeExceeded", "Failure", None])
def test_destination_record_of_a_failed_run_is_refused(condition: str | None) -> None:
    # Given Lambda's record of a run that did not succeed
    record = destination_record([staged()], condition=condition)  # type: ignore[arg-type]

    # Then nothing is judged
    with pytest.raises(InvalidEventError, match=r"^requestContext\.condition"):
        staged_candidates(record, MODEL)


@pytest.mark.parametrize("context", [None, "Success", ["Success"]])
def test_destination_record_without_a_request_context_is_refused(context: Any) -> None:
    # Given a record whose requestContext is missing or not an object
    record = destination_record([staged()], requestContext=context)

    # When it is read, Then it is refused like a failed run
    with pytest.raises(InvalidEventError, match=r"^requestContext\.condition"):
        staged_candidates(record, MODEL)


@pytest.mark.parametrize("payload", [None, {}, {"results": "none"}, ["results"]])
def test_response_payload_without_results_is_refused(payload: Any) -> None:
    # Given a successful run that returned no list of results
    record = destination_record([], responsePayload=payload)

    # When it is read, Then it is refused
    with pytest.raises(InvalidEventError, match=r"^responsePayload.results: expected a list$"):
        staged_candidates(record, MODEL)


@pytest.mark.parametrize(
    "candidate_id",
    [
        "../../models/house-prices/v1",
        "20261128T231005Z-0a1b2c3d/../x",
        "20261128T231005Z-0A1B2C3D",  # upper-case hex: not what new_candidate_id makes
        "20261128T231005Z-0a1b2c3",  # 7 hex digits
        "20261128T231005Z-0a1b2c3d0",  # 9
        "20261128T231005-0a1b2c3d",  # no Z
        "20261128T231005Z-0a1b2c3d\n",
        "\uff12\uff10\uff12\uff161128T231005Z-0a1b2c3d",  # full-width digits match \d
        "",
    ],
)
def test_candidate_id_that_is_not_a_candidate_id_is_refused(candidate_id: str) -> None:
    # Given a record naming a candidate id new_candidate_id could not have made
    record = destination_record([staged(candidate_id)])

    # Then it is refused before it becomes part of an S3 key
    with pytest.raises(InvalidEventError, match=r"^candidate 0: candidate_id .* is not a"):
        staged_candidates(record, MODEL)


@pytest.mark.parametrize("candidate_id", [None, 20261128, ["x"]])
def test_candidate_id_that_is_not_text_is_refused(candidate_id: Any) -> None:
    # Given a direct invocation whose candidate id is not a string
    # When it is read, Then it is refused
    with pytest.raises(InvalidEventError, match=r"^candidate 0: candidate_id"):
        staged_candidates({"model": MODEL, "candidate_id": candidate_id}, MODEL)


def test_candidate_of_another_model_is_refused() -> None:
    # Given a record naming another model's candidate
    record = destination_record([staged(model="churn")])

    # When it is read
    with pytest.raises(InvalidEventError) as caught:
        staged_candidates(record, MODEL)

    # Then it is refused, naming both models
    assert str(caught.value) == (f"candidate 0: model 'churn'; this stack serves {MODEL!r}")


def test_direct_invocation_with_a_candidate_is_accepted() -> None:
    # Given an operator re-running the gate on one candidate
    event = {"model": MODEL, "candidate_id": CANDIDATE_ID}

    # Then it is judged as is
    assert staged_candidates(event, MODEL) == [event]


def test_direct_invocation_for_another_model_is_refused() -> None:
    # Given an operator naming another model's candidate, Then it is refused
    with pytest.raises(InvalidEventError, match="this stack serves"):
        staged_candidates({"model": "churn", "candidate_id": CANDIDATE_ID}, MODEL)


@pytest.mark.parametrize("event", [{}, {"model": MODEL}, [], None, load_event("s3_put.json")])
def test_event_that_is_neither_record_nor_candidate_is_refused(event: Any) -> None:
    # Given an event with neither responsePayload nor candidate_id
    # When it is read, Then it is refused
    with pytest.raises(
        InvalidEventError, match=r"^expected a destination invocation record or a candidate$"
    ):
        staged_candidates(event, MODEL)
