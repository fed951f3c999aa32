"""Adversarial review of the retraining pipeline (upload/request → retrainer → gate → registry).

Tests marked ``xfail(strict=True)`` reproduce a defect found in review: each FAILS today
because of it and starts passing (so turns the suite red, on purpose) once the defect is
fixed; then drop the marker. The others pin behaviours the review attacked and found safe.
The fixture is the shared one in ``tests/integration/retrain_pipeline.py``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest

from mlops.domain.layout import staging_prefix
from mlops.errors import ConflictError, IntegrityError, InvalidEventError, StorageError
from mlops.services import promotion
from mlops_cli.emulator.stack import LambdaContext
from tests.conftest import BUCKET, load_event
from tests.integration.retrain_pipeline import (
    DIRECT_CONFIG,
    FAST_CONFIG,
    FIXED_NOW,
    IDEMPOTENCY_TABLE,
    MODEL,
    PREFIX,
    TRAINING_BUCKET,
    WINDOW_CONFIG,
    Pipeline,
    decision,
    emitted,
    month,
    only,
)


def fail_once(monkeypatch: pytest.MonkeyPatch, obj: Any, name: str, when: Any = None) -> None:
    """Make ``obj.name`` raise StorageError the first time ``when(*args)`` holds."""
    real = getattr(obj, name)
    state = {"failed": False}

    def flaky(*args: Any, **kwargs: Any) -> Any:
        if not state["failed"] and (when is None or when(*args, **kwargs)):
            state["failed"] = True
            raise StorageError(f"injected: {name} unavailable")
        return real(*args, **kwargs)

    monkeypatch.setattr(obj, name, flaky)


# ================================================================ findings (xfail, strict)


def test_a_rewritten_candidate_json_cannot_loosen_the_promotion_policy(
    pipeline: Pipeline,
) -> None:
    pipeline.run("m0.csv", month(0))
    # Given a challenger the gate rejects as worse (80 rows: see test_retrainer.py)
    event = pipeline.upload("small.csv", month(0, rows=80, seed=11))
    response = pipeline.retrain(event)
    staged = only(response)["candidate"]
    key = staging_prefix(MODEL, staged["candidate_id"]) + "candidate.json"
    # When someone with write access to staging/ edits the draft manifest's policy
    doc = pipeline.store.get_json(key)
    # (any loss allowed; the config parser accepts negative changes, MLflow does not)
    doc["config"]["promotion"] |= {"min_relative_change": -1e9, "min_absolute_change": -1e18}
    pipeline.s3.put_object(Bucket=BUCKET, Key=key, Body=json.dumps(doc).encode())
    verdict = decision(pipeline.judge(event, response))
    # Then the stack's policy still applies: the worse model does not reach production
    assert verdict["status"] != "production"
    assert pipeline.registry.get_alias(MODEL, "production") == "1"


def test_a_gate_retry_after_promotion_reports_the_promotion_and_registers_once(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    pipeline.run("m0.csv", month(0))
    pipeline.config(DIRECT_CONFIG)
    pipeline.serve(6)
    event = pipeline.upload("m6.csv", month(6))
    response = pipeline.retrain(event)
    # Given S3 refuses the decision report once, after the promotion went through
    fail_once(
        monkeypatch,
        pipeline.gate.gate._store,
        "put_bytes",
        lambda key, *a, **k: key.startswith("reports/retrain/"),
    )
    with pytest.raises(StorageError):
        pipeline.judge(event, response)
    assert pipeline.registry.get_alias(MODEL, "production") == "2"
    # When Lambda retries the destination record
    verdict = decision(pipeline.judge(event, response))
    # Then the retry reports what happened, once
    assert (verdict["status"], verdict["version"]) == ("production", "2")
    assert pipeline.versions() == ["1", "2"]


def test_a_registry_outage_during_promotion_does_not_register_the_candidate_twice(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    event = pipeline.upload("m0.csv", month(0))
    response = pipeline.retrain(event)
    fail_once(monkeypatch, pipeline.gate.gate._registry, "promote")
    with pytest.raises(StorageError):
        pipeline.judge(event, response)
    verdict = decision(pipeline.judge(event, response))
    assert (verdict["status"], verdict["version"]) == ("production", "1")
    assert pipeline.versions() == ["1"]


def test_rollback_refuses_a_version_whose_model_no_longer_matches_the_registry(
    pipeline: Pipeline,
) -> None:
    pipeline.run("m0.csv", month(0))
    pipeline.config(DIRECT_CONFIG)
    pipeline.serve(6)
    pipeline.run("m6.csv", month(6))
    assert pipeline.registry.get_alias(MODEL, "production") == "2"
    # Given v1's model.onnx replaced (or deleted, or expired by a lifecycle rule)
    pipeline.s3.put_object(Bucket=BUCKET, Key=f"models/{MODEL}/1/model.onnx", Body=b"corrupt")
    # When an operator rolls back, Then the rollback is refused and production stays servable
    with pytest.raises(IntegrityError, match="cannot be served"):
        promotion.rollback(
            pipeline.registry, MODEL, actor="oncall", reason="bad v2", store=pipeline.store
        )
    assert pipeline.registry.get_alias(MODEL, "production") == "2"


def test_two_rejections_in_the_same_second_keep_both_reports(pipeline: Pipeline) -> None:
    pipeline.retrainer.service._clock = lambda: FIXED_NOW
    pipeline.config(FAST_CONFIG.replace('task = "regression"', 'task = "forecasting"'))
    first = only(pipeline.retrain(pipeline.upload("a.csv", month(0, rows=100))))
    second = only(pipeline.retrain(pipeline.upload("b.csv", month(1, rows=100))))
    assert first["status"] == second["status"] == "rejected"
    assert first["report_uri"] != second["report_uri"]
    assert pipeline.report(first["report_uri"])["trigger"]["key"].endswith("a.csv")


def test_same_named_objects_in_other_folders_keep_their_own_data_report(
    pipeline: Pipeline,
) -> None:
    pipeline.retrainer.service._clock = lambda: FIXED_NOW
    pipeline.config(WINDOW_CONFIG)
    pipeline.s3.put_object(
        Bucket=TRAINING_BUCKET, Key=PREFIX + "2025/data.csv", Body=month(5, rows=600)
    )
    staged = only(pipeline.retrain(pipeline.upload("2026/data.csv", month(6, rows=1000))))
    assert staged["status"] == "staged"
    prefix = staging_prefix(MODEL, staged["candidate"]["candidate_id"])
    lineage = pipeline.store.get_json(prefix + "candidate.json")["lineage"]["data"]
    new = next(d for d in lineage if d["role"] == "new")
    report = pipeline.report(new["report_uri"])
    assert (report["role"], report["object"]["uri"]) == ("new", new["uri"])


def test_a_folder_placeholder_is_not_reported_as_rejected_data(
    pipeline: Pipeline, capsys: pytest.CaptureFixture[str]
) -> None:
    event = pipeline.upload("2026-12/", b"")
    capsys.readouterr()
    response = pipeline.retrain(event)
    assert response["results"] == []
    assert "TrainingDataRejected" not in emitted(capsys)


def test_an_etag_keyed_trigger_trains_on_the_bytes_its_event_named(pipeline: Pipeline) -> None:
    event = pipeline.upload("data.csv", month(0))
    named = event["Records"][0]["s3"]["object"]
    del named["versionId"]  # as an unversioned bucket sends it
    # Given the key overwritten with other bytes before the retrainer runs
    pipeline.s3.put_object(Bucket=TRAINING_BUCKET, Key=PREFIX + "data.csv", Body=month(6))
    outcome = only(pipeline.retrain(event))
    # Then it does not train the new bytes under the old object's key (they get their own event)
    if outcome["status"] == "staged":
        prefix = staging_prefix(MODEL, outcome["candidate"]["candidate_id"])
        data = pipeline.store.get_json(prefix + "candidate.json")["lineage"]["data"][0]
        assert data["etag"] == named["eTag"]


def _header_bomb(columns: int) -> bytes:
    """A valid-looking file whose header repeats ``columns`` extra names twice each."""
    body = month(0, rows=60).decode().splitlines()
    extra = [f"extra_column_{i:06d}" for i in range(columns)]
    header = ",".join([body[0], *extra, *extra])
    rows = [line + "," * (2 * columns) for line in body[1:]]
    return ("\n".join([header, *rows]) + "\n").encode()


def test_a_rejection_with_a_huge_reason_is_answered_not_retried(pipeline: Pipeline) -> None:
    body = _header_bomb(30_000)
    assert len(body) < 16 * 1024 * 1024
    outcome = only(pipeline.retrain(pipeline.upload("wide.csv", body)))
    assert outcome["status"] == "rejected"
    assert len(json.dumps(outcome)) < 64 * 1024


# ============================================================ attacked and held (passing)


def test_a_forged_event_for_another_bucket_is_refused_and_nothing_trains(
    pipeline: Pipeline,
) -> None:
    event = pipeline.upload("m0.csv", month(0, rows=200))
    pipeline.s3.create_bucket(Bucket="attacker-bucket")
    pipeline.s3.put_object(Bucket="attacker-bucket", Key=PREFIX + "m0.csv", Body=month(0))
    event["Records"][0]["s3"]["bucket"]["name"] = "attacker-bucket"
    outcome = only(pipeline.retrain(event))
    assert outcome["status"] == "rejected"
    assert "not under the training prefix" in outcome["reasons"][0]
    assert pipeline.keys("staging/") == []


@pytest.mark.parametrize(
    "data_uri",
    [
        f"s3://{BUCKET}/models/{MODEL}/1/model.onnx",
        f"s3://{TRAINING_BUCKET}/other/{PREFIX}x.csv",
        f"s3://{TRAINING_BUCKET}/{PREFIX}../config/{MODEL}.toml",
    ],
)
def test_a_retrain_request_for_data_elsewhere_never_trains(
    pipeline: Pipeline, data_uri: str
) -> None:
    event = load_event("retrain_request.json")
    event["detail"] |= {"request_id": f"req-{data_uri}", "data_uri": data_uri}
    outcome = only(pipeline.retrain(event))
    assert outcome["status"] == "rejected"
    assert pipeline.keys("staging/") == []


def test_a_retrain_request_for_another_model_is_refused(pipeline: Pipeline) -> None:
    event = load_event("retrain_request.json")
    event["detail"] |= {"request_id": "other-model", "model": "someone-else"}
    outcome = only(pipeline.retrain(event))
    assert outcome["status"] == "rejected"
    assert "someone-else" in outcome["reasons"][0]


def test_an_object_removed_notification_trains_nothing(pipeline: Pipeline) -> None:
    event = pipeline.upload("m0.csv", month(0, rows=100))
    event["Records"][0]["eventName"] = "ObjectRemoved:Delete"
    assert pipeline.retrain(event)["results"] == []


@pytest.mark.parametrize(
    "candidate_item",
    [
        {"model": "someone-else", "candidate_id": "20261129T010000Z-0123abcd"},
        {"model": MODEL, "candidate_id": "../../models/house-prices/1"},
        {"model": MODEL, "candidate_id": "20261129T010000Z-0123abcd/../x"},
        {
            "model": MODEL,
            "candidate_id": "\uff12\uff10\uff12\uff161129T010000Z-0123abcd",
        },  # full-width digits
    ],
)
def test_the_gate_refuses_a_destination_record_naming_a_foreign_or_crafted_candidate(
    pipeline: Pipeline, candidate_item: dict[str, str]
) -> None:
    response = {"model": MODEL, "results": [{"status": "staged", "candidate": candidate_item}]}
    with pytest.raises(InvalidEventError):
        pipeline.judge({}, response)


def test_the_gate_refuses_a_failure_record(pipeline: Pipeline) -> None:
    record = pipeline.record({}, {"model": MODEL, "results": []})
    record["requestContext"]["condition"] = "RetriesExhausted"
    with pytest.raises(InvalidEventError):
        pipeline.gate.lambda_handler(record, LambdaContext("CandidateGateFunction"))


@pytest.mark.parametrize("name", ["model.onnx", "baseline.json", "parity_inputs.json.gz"])
def test_any_staged_file_changed_after_staging_is_never_registered(
    pipeline: Pipeline, name: str
) -> None:
    event = pipeline.upload("m0.csv", month(0))
    response = pipeline.retrain(event)
    prefix = staging_prefix(MODEL, only(response)["candidate"]["candidate_id"])
    pipeline.s3.put_object(Bucket=BUCKET, Key=prefix + name, Body=b"tampered")
    verdict = decision(pipeline.judge(event, response))
    assert (verdict["status"], verdict["version"]) == ("rejected", None)
    assert pipeline.versions() == []


def test_a_candidate_json_naming_another_candidate_is_refused(pipeline: Pipeline) -> None:
    event = pipeline.upload("m0.csv", month(0))
    response = pipeline.retrain(event)
    prefix = staging_prefix(MODEL, only(response)["candidate"]["candidate_id"])
    doc = pipeline.store.get_json(prefix + "candidate.json")
    doc["model_name"] = "someone-else"
    pipeline.s3.put_object(Bucket=BUCKET, Key=prefix + "candidate.json", Body=json.dumps(doc))
    # The digest Lambda delivered no longer matches: refused before anything is read from it
    verdict = decision(pipeline.judge(event, response))
    assert (verdict["status"], verdict["version"]) == ("rejected", None)
    assert "changed after the retrainer wrote it" in verdict["reasons"][0]
    assert pipeline.versions() == []


def test_a_rejected_version_is_not_promoted_without_force(pipeline: Pipeline) -> None:
    pipeline.run("m0.csv", month(0))
    _, judged = pipeline.run("small.csv", month(0, rows=80, seed=11))
    assert decision(judged)["status"] == "rejected"
    with pytest.raises(ConflictError, match="rejected"):
        promotion.promote(pipeline.registry, MODEL, "2", actor="oncall", reason="")
    assert pipeline.registry.get_alias(MODEL, "production") == "1"


def test_a_reupload_of_identical_bytes_trains_again_and_is_rejected_as_no_better(
    pipeline: Pipeline,
) -> None:
    """Pinned as it is: a new object version is a new trigger, even with the same bytes
    (same sha256); the deterministic fit makes the duplicate a rejected, registered version."""
    body = month(0)
    pipeline.run("m0.csv", body)
    _, judged = pipeline.run("m0.csv", body)
    verdict = decision(judged)
    assert (verdict["status"], verdict["version"]) == ("rejected", "2")
    assert pipeline.registry.get_alias(MODEL, "production") == "1"


def test_the_in_progress_record_expires_with_the_lambda_deadline(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An in-progress idempotency record cannot expire while its run is alive: Powertools sets
    its expiry to now + the context's remaining time (register_lambda_context)."""
    event = pipeline.upload("m0.csv", month(0, rows=200))
    seen: list[dict[str, Any]] = []
    builder = pipeline.retrainer.service._builder
    real_build = builder.build

    def spy(*args: Any, **kwargs: Any) -> Any:
        items = boto3.client("dynamodb").scan(TableName=IDEMPOTENCY_TABLE)["Items"]
        seen.extend(items)
        return real_build(*args, **kwargs)

    monkeypatch.setattr(builder, "build", spy)
    before = datetime.now(UTC).timestamp() * 1000
    pipeline.retrain(event)
    (item,) = seen
    assert item["status"]["S"] == "INPROGRESS"
    expiry = int(item["in_progress_expiration"]["N"])
    remaining = LambdaContext("x").get_remaining_time_in_millis()
    assert before + remaining - 5_000 <= expiry <= before + remaining + 5_000


def test_gate_metrics_are_emitted_once_with_the_service_dimension(
    pipeline: Pipeline, capsys: pytest.CaptureFixture[str]
) -> None:
    pipeline.run("m0.csv", month(0))
    capsys.readouterr()
    pipeline.run("small.csv", month(0, rows=80, seed=11))
    out = capsys.readouterr().out
    blobs = [json.loads(x) for x in out.splitlines() if x.startswith("{") and "_aws" in x]
    rejected = [b for b in blobs if "CandidateRejected" in b]
    assert len(rejected) == 1
    assert ["service"] in rejected[0]["_aws"]["CloudWatchMetrics"][0]["Dimensions"]
    assert "CandidatePromoted" not in out


def test_a_promotion_to_a_version_whose_artifacts_changed_is_refused(pipeline: Pipeline) -> None:
    pipeline.run("m0.csv", month(0))
    pipeline.config(FAST_CONFIG.replace('mode = "auto"', 'mode = "manual"'))
    _, judged = pipeline.run("m6.csv", month(6))
    assert decision(judged)["status"] == "candidate"
    # Given v2's manifest rewritten after registration
    key = f"models/{MODEL}/2/manifest.json"
    manifest = pipeline.store.get_json(key)
    manifest["artifacts"]["model.onnx"]["sha256"] = "0" * 64
    pipeline.s3.put_object(Bucket=BUCKET, Key=key, Body=json.dumps(manifest).encode())
    # When an operator promotes it, Then nothing moves: serving it would fail its sha256 check
    with pytest.raises(IntegrityError, match="cannot be served"):
        promotion.promote(
            pipeline.registry, MODEL, "2", actor="oncall", reason="by hand", store=pipeline.store
        )
    assert pipeline.registry.get_alias(MODEL, "production") == "1"
