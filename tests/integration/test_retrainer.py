"""Upload → retrainer → candidate gate, through the real handlers with real-shaped events,
against moto: promotion, rejection with reasons, bad data, idempotency and races."""

from __future__ import annotations

import copy
import gzip
import hashlib
import json
import threading
from typing import Any

import pytest
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
)

from mlops.adapters import aws
from mlops.adapters.registry import Registry
from mlops.domain import candidate
from mlops.domain.kept_data import kept_metadata
from mlops.domain.layout import staging_prefix
from mlops.services import promotion
from mlops.services.gate import CandidateGate
from tests.conftest import BUCKET, TABLE, load_event
from tests.integration.conftest import BeforeTransaction, writes_item
from tests.integration.retrain_pipeline import (
    DIRECT_CONFIG,
    FAST_CONFIG,
    MODEL,
    PREFIX,
    TRAINING_BUCKET,
    Pipeline,
    decision,
    emitted,
    month,
    only,
)

# ------------------------------------------------------------------------------- the loop


def test_an_upload_becomes_a_promoted_version_with_a_complete_manifest(
    pipeline: Pipeline,
) -> None:
    # Given an empty registry, When month 0 is uploaded under the training prefix
    response, judged = pipeline.run("houses-month-00.csv", month(0))
    # Then the retrainer staged a candidate and the gate promoted it as v1
    staged = only(response)
    assert staged["status"] == "staged"
    verdict = decision(judged)
    assert (verdict["status"], verdict["version"], verdict["promoted"]) == ("production", "1", True)
    assert pipeline.registry.get_alias(MODEL, "production") == "1"
    record = pipeline.registry.get_version(MODEL, "1")
    assert record is not None
    assert record.status == "production"
    assert record.lineage["trigger"]["kind"] == "s3_upload"
    # And the manifest holds the lineage a person needs to trust it
    manifest = pipeline.store.get_json(f"models/{MODEL}/1/manifest.json")
    data = manifest["lineage"]["data"][0]
    assert data["uri"] == f"s3://{TRAINING_BUCKET}/{PREFIX}houses-month-00.csv"
    assert data["version_id"]
    assert data["etag"]
    assert data["rows"] == 1500
    assert data["sha256"]
    assert data["role"] == "new"
    assert manifest["lineage"]["trigger"]["version_id"] == data["version_id"]
    assert set(manifest["lineage"]["timings"]) >= {"fit_s", "export_s", "read_validate_s"}
    assert manifest["lineage"]["config_sha256"]
    assert manifest["lineage"]["code_version"]
    assert manifest["libraries"]["scikit-learn"]
    assert manifest["libraries"]["numpy"]
    assert manifest["parity"]["passed"] is True
    assert manifest["gate"]["passed"] is True
    assert manifest["gate"]["champion"] is None
    assert manifest["gate"]["challenger"] < manifest["gate"]["naive"]
    assert manifest["config"]["estimator"]["params"]["max_iter"] == 60
    # And the accepted data is archived under its sha256, with its data report
    assert pipeline.keys("datasets/") == [f"datasets/{data['sha256']}/houses-month-00.csv"]
    data_report = pipeline.report(data["report_uri"])
    assert data_report["status"] == "accepted"
    assert data_report["report"]["passed"] is True
    # And the decision report says what happened
    report = pipeline.report(verdict["report_uri"])
    assert report["status"] == "production"
    assert report["version"] == "1"
    assert report["parity"]["passed"] is True


def test_a_better_challenger_replaces_production_and_records_the_comparison(
    pipeline: Pipeline,
) -> None:
    pipeline.run("m0.csv", month(0))
    pipeline.config(DIRECT_CONFIG)
    # When the market has moved (month 6), production served it and the labels came back,
    # and the month's data is uploaded
    pipeline.serve(6)
    _, judged = pipeline.run("m6.csv", month(6))
    verdict = decision(judged)
    # Then v2 beat v1 on the same holdout (drawn from month 6) and on the labeled traffic,
    # and took production
    assert verdict["decision"]["outcome"] == "passed", verdict["reasons"]
    assert verdict["status"] == "production"
    assert verdict["version"] == "2"
    assert verdict["champion_version"] == "1"
    gate = verdict["decision"]
    assert gate["metric"] == "rmse"
    assert gate["challenger"] < gate["champion"] * 0.99
    assert pipeline.registry.get_version(MODEL, "1").status == "archived"  # type: ignore[union-attr]
    history = pipeline.registry.history(MODEL)
    assert (history[0].from_version, history[0].to_version) == ("1", "2")
    assert "candidate" in history[0].actor


def test_a_worse_challenger_is_registered_rejected_and_production_is_unchanged(
    pipeline: Pipeline,
) -> None:
    pipeline.run("m0.csv", month(0))
    # When a file too small to learn the market from is uploaded (80 rows of the same month)
    _, judged = pipeline.run("small.csv", month(0, rows=80, seed=11))
    verdict = decision(judged)
    # Then v2 is registered as rejected, with the comparison as its reason
    assert (verdict["status"], verdict["version"], verdict["promoted"]) == ("rejected", "2", False)
    reasons = " ".join(verdict["reasons"])
    assert "vs production" in reasons
    assert "rejected: worse than production on the new data's holdout" in reasons
    record = pipeline.registry.get_version(MODEL, "2")
    assert record is not None
    assert record.status == "rejected"
    assert record.reasons
    assert pipeline.registry.get_alias(MODEL, "production") == "1"
    assert pipeline.registry.get_version(MODEL, "1").status == "production"  # type: ignore[union-attr]


def test_manual_promotion_mode_registers_a_winner_as_a_candidate(pipeline: Pipeline) -> None:
    pipeline.run("m0.csv", month(0))
    pipeline.config(FAST_CONFIG.replace('mode = "auto"', 'mode = "manual"'))
    _, judged = pipeline.run("m6.csv", month(6))
    verdict = decision(judged)
    assert (verdict["status"], verdict["promoted"]) == ("candidate", False)
    assert any("promotion is manual" in r for r in verdict["reasons"])
    assert pipeline.registry.get_alias(MODEL, "production") == "1"


def test_a_model_with_another_feature_set_is_never_a_new_version(pipeline: Pipeline) -> None:
    pipeline.run("m0.csv", month(0))
    # When the config drops property_type and a new file is uploaded
    without = FAST_CONFIG.replace(
        '[[features]]\nname = "property_type"\ntype = "categorical"\n', ""
    )
    assert without != FAST_CONFIG
    pipeline.config(without)
    _, judged = pipeline.run("m6.csv", month(6))
    verdict = decision(judged)
    assert verdict["status"] == "rejected"
    assert any(
        "feature set differs" in r and "removed property_type" in r for r in verdict["reasons"]
    )
    assert pipeline.registry.get_alias(MODEL, "production") == "1"


# ---------------------------------------------------------------------------- bad data

SEMICOLONS = month(0, rows=60).replace(b",", b";")
BAD_FILES = {
    "wrong columns": (month(0, rows=200).replace(b"sqft", b"square_feet", 1), "sqft"),
    "empty": (b"", "empty"),
    "too few rows": (month(0, rows=20), "minimum"),
    "not a CSV": (b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8, "not a CSV"),
    "semicolons": (SEMICOLONS, "semicolon"),
}


def _month0_with(column: str, values: list[str]) -> bytes:
    """Month 0 (200 rows) with one column's cells replaced, row by row."""
    lines = month(0, rows=200).decode().splitlines()
    index = lines[0].split(",").index(column)
    for number, value in enumerate(values, start=1):
        cells = lines[number].split(",")
        cells[index] = value
        lines[number] = ",".join(cells)
    return ("\n".join(lines) + "\n").encode()


BAD_FILES["non-numeric numbers"] = (_month0_with("sqft", ["twelve hundred"]), "twelve hundred")
# Both used to be accepted: a constant price trained (and was promoted), a location per row
# made the fit one-hot encode a column per house (minutes for a few thousand rows).
BAD_FILES["constant price"] = (
    _month0_with("price", ["100000"] * 200),
    "the target price is 100000 in every row: there is nothing to learn",
)
BAD_FILES["location per row"] = (
    _month0_with("location", [f"parcel-{i}" for i in range(200)]),
    "location has 200 distinct values in 200 rows, 100% of them",
)


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_bad_data_is_rejected_with_a_report_a_metric_and_no_crash(
    pipeline: Pipeline, case: str, capsys: pytest.CaptureFixture[str]
) -> None:
    pipeline.run("m0.csv", month(0))
    capsys.readouterr()
    body, words = BAD_FILES[case]
    event = pipeline.upload(f"bad {case}.csv", body)
    # When the retrainer handles it: it returns (no exception, so no retry, no crash loop)
    response = pipeline.retrain(event)
    outcome = only(response)
    assert outcome["status"] == "rejected"
    assert outcome["reasons"][0].startswith("rejected: ")
    # Then a report in reports/retrain/ says why, for a person, in plain words
    report = pipeline.report(outcome["report_uri"])
    assert words.lower() in json.dumps(report).lower()
    assert report["status"] == "rejected"
    assert report["object"]["uri"].endswith(f"bad {case}.csv")
    assert report["report"]["passed"] is False
    # And operators get the metric their alarm watches
    assert emitted(capsys).get("TrainingDataRejected") == 1
    # And nothing is staged, archived or registered; production is untouched
    assert pipeline.keys(f"staging/{MODEL}/")
    # (month 0's candidate alone: its files and, a regressor, DLE's loss model)
    assert len(pipeline.keys(f"staging/{MODEL}/")) == len(candidate.FILES) + 1
    assert len(pipeline.keys("datasets/")) == 1
    assert pipeline.judge(event, response) == {"model": MODEL, "decisions": []}
    assert [v.version for v in pipeline.registry.list_versions(MODEL)] == ["1"]
    assert pipeline.registry.get_alias(MODEL, "production") == "1"


def test_a_file_over_the_size_limit_is_refused_without_being_read(pipeline: Pipeline) -> None:
    pipeline.config(FAST_CONFIG.replace("max_bytes = 268435456", "max_bytes = 1000"))
    body = month(0, rows=200)
    outcome = only(pipeline.retrain(pipeline.upload("big.csv", body)))
    assert outcome["status"] == "rejected"
    assert f"{len(body)} bytes" in outcome["reasons"][0]
    assert "1000" in outcome["reasons"][0]


def test_an_object_deleted_before_the_retrainer_runs_is_reported_not_retried(
    pipeline: Pipeline,
) -> None:
    event = pipeline.upload("gone.csv", month(0))
    key = PREFIX + "gone.csv"
    version = event["Records"][0]["s3"]["object"]["versionId"]
    pipeline.s3.delete_object(Bucket=TRAINING_BUCKET, Key=key, VersionId=version)
    outcome = only(pipeline.retrain(event))
    assert outcome["status"] == "rejected"
    assert "deleted" in outcome["reasons"][0]


def test_a_broken_config_is_reported_and_nothing_trains(pipeline: Pipeline) -> None:
    pipeline.config(FAST_CONFIG.replace('task = "regression"', 'task = "forecasting"'))
    outcome = only(pipeline.retrain(pipeline.upload("m0.csv", month(0))))
    assert outcome["status"] == "rejected"
    assert "task" in outcome["reasons"][0]
    assert pipeline.keys("staging/") == []


def test_an_event_that_is_not_a_trigger_fails_so_it_lands_in_the_failure_queue(
    pipeline: Pipeline,
) -> None:
    with pytest.raises(Exception, match="RetrainRequested"):
        pipeline.retrain(load_event("schedule.json"))


# ------------------------------------------------------------------------- idempotency


def test_a_duplicate_delivery_trains_once_and_returns_the_first_result(
    pipeline: Pipeline, capsys: pytest.CaptureFixture[str]
) -> None:
    event = pipeline.upload("m0.csv", month(0))
    first = pipeline.retrain(event)
    capsys.readouterr()
    # When S3 delivers the same notification again
    second = pipeline.retrain(copy.deepcopy(event))
    # Then nothing is trained again: the same candidate comes back, and operators see it
    assert second == first
    # (month 0's candidate alone: its files and, a regressor, DLE's loss model)
    assert len(pipeline.keys(f"staging/{MODEL}/")) == len(candidate.FILES) + 1
    assert emitted(capsys).get("DuplicateTriggers") == 1
    # And the gate, handed the same destination record twice, registers one version
    assert pipeline.judge(event, first) == pipeline.judge(event, second)
    assert [v.version for v in pipeline.registry.list_versions(MODEL)] == ["1"]


def test_a_new_version_of_the_same_key_is_a_new_trigger(pipeline: Pipeline) -> None:
    first = only(pipeline.retrain(pipeline.upload("data.csv", month(0))))
    second = only(pipeline.retrain(pipeline.upload("data.csv", month(6))))
    assert first["candidate"]["candidate_id"] != second["candidate"]["candidate_id"]


def test_a_duplicate_arriving_while_the_first_trains_is_refused_then_answered(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two deliveries racing: the second finds the first's in-progress record. (Run in turn,
    not in parallel threads: moto's DynamoDB is not thread-safe, DynamoDB's conditions are.)"""
    event = pipeline.upload("m0.csv", month(0))
    training, release = threading.Event(), threading.Event()
    builder = pipeline.retrainer.service._builder
    real_build = builder.build

    def slow_build(*args: Any, **kwargs: Any) -> Any:
        training.set()
        release.wait(timeout=60)
        return real_build(*args, **kwargs)

    monkeypatch.setattr(builder, "build", slow_build)
    first: list[dict[str, Any]] = []
    worker = threading.Thread(target=lambda: first.append(pipeline.retrain(event)))
    worker.start()
    try:
        assert training.wait(timeout=60)
        # When the duplicate arrives while the first delivery is still training
        with pytest.raises(IdempotencyAlreadyInProgressError):
            pipeline.retrain(copy.deepcopy(event))
    finally:
        release.set()
        worker.join()
    # Then one training ran, and Lambda's retry of the duplicate gets its result
    # (month 0's candidate alone: its files and, a regressor, DLE's loss model)
    assert len(pipeline.keys(f"staging/{MODEL}/")) == len(candidate.FILES) + 1
    assert pipeline.retrain(copy.deepcopy(event)) == first[0]


def test_a_storage_failure_raises_and_the_retry_trains(pipeline: Pipeline) -> None:
    event = pipeline.upload("m0.csv", month(0))
    # Given the artifacts bucket unreachable (gone) while the retrainer runs
    pipeline.s3.delete_object(Bucket=BUCKET, Key=f"config/{MODEL}.toml")
    pipeline.s3.delete_bucket(Bucket=BUCKET)
    with pytest.raises(Exception, match=r"NoSuchBucket|does not exist|cannot"):
        pipeline.retrain(event)
    # When it is back and Lambda retries the same event, it trains (no stale lock)
    pipeline.s3.create_bucket(Bucket=BUCKET)
    pipeline.config(FAST_CONFIG)
    assert only(pipeline.retrain(event))["status"] == "staged"


def test_two_gates_racing_promote_one_winner_and_never_share_a_version(
    pipeline: Pipeline,
) -> None:
    """Gate A has judged against v1 and is about to promote when gate B promotes first.
    (Interleaved in turn, not in parallel threads: moto is not thread-safe, DynamoDB is.)"""
    pipeline.run("m0.csv", month(0))
    pipeline.config(DIRECT_CONFIG)
    pipeline.serve(6)
    a = only(pipeline.retrain(pipeline.upload("m6a.csv", month(6, seed=60))))["candidate"]
    b = only(pipeline.retrain(pipeline.upload("m6b.csv", month(6, seed=61))))["candidate"]
    a_ready, b_done = threading.Event(), threading.Event()

    class Paused(Registry):
        def promote(self, *args: Any, **kwargs: Any) -> Any:
            a_ready.set()
            assert b_done.wait(timeout=60)
            return super().promote(*args, **kwargs)

    results: dict[str, Any] = {}

    def judge_a() -> None:
        gate = CandidateGate(pipeline.store, Paused(TABLE, aws.client("dynamodb")))
        results["a"] = gate.judge(MODEL, a["candidate_id"])

    worker = threading.Thread(target=judge_a)
    worker.start()
    try:
        assert a_ready.wait(timeout=120)
        results["b"] = CandidateGate(pipeline.store, pipeline.registry).judge(
            MODEL, b["candidate_id"]
        )
    finally:
        b_done.set()
        worker.join()
    # B won; A lost the conditional write, stays a candidate and says why; no shared version
    assert (results["b"].status, results["a"].status) == ("production", "candidate")
    assert {results["a"].version, results["b"].version} == {"2", "3"}
    assert any("production moved from v1 to v" in r for r in results["a"].reasons)
    assert pipeline.registry.get_alias(MODEL, "production") == results["b"].version
    record = pipeline.registry.get_version(MODEL, results["a"].version)
    assert record is not None
    assert record.status == "candidate"
    assert [h.to_version for h in pipeline.registry.history(MODEL)] == [results["b"].version, "1"]


def _judged_while_production_moves(
    pipeline: Pipeline, config: str, *, before: str | None
) -> tuple[Any, str]:
    """v1 in production and v2 registered (manual promotion); a challenger staged from month
    6, judged against v1 under ``config`` by a gate whose registry lets an operator promote
    v2 just before the gate's first transaction writing item ``before`` (any, if None: the
    challenger's registration, after its scoring). The gate's result and the challenger's
    version."""
    pipeline.run("m0.csv", month(0))
    pipeline.serve(6)
    pipeline.config(FAST_CONFIG.replace('mode = "auto"', 'mode = "manual"'))
    _, judged = pipeline.run("m6b.csv", month(6, seed=61))
    assert (decision(judged)["version"], decision(judged)["status"]) == ("2", "candidate")
    pipeline.config(config)
    staged = only(pipeline.retrain(pipeline.upload("m6a.csv", month(6, seed=60))))["candidate"]

    def operator_promotes_v2() -> None:
        promotion.promote(pipeline.registry, MODEL, "2", actor="ops", reason="hotfix")

    client = BeforeTransaction(
        aws.client("dynamodb"),
        operator_promotes_v2,
        when=None if before is None else writes_item(before),
    )
    gate = CandidateGate(pipeline.store, Registry(TABLE, client))
    result = gate.judge(MODEL, staged["candidate_id"])
    assert result.champion_version == "1"  # it was judged against v1
    assert result.version == "3"
    return result, "3"


@pytest.mark.parametrize(
    "before",
    [None, "alias#production"],
    ids=["after its scoring", "inside its promotion"],
)
def test_a_gate_whose_champion_left_production_meanwhile_does_not_promote(
    pipeline: Pipeline, before: str | None
) -> None:
    # Pins: the gate promotes only over the champion it scored (``expected`` of its
    # promotion, and that write's alias condition when the move lands between its read and
    # its transaction). Promoting over v2 would replace a version it was never compared with.
    result, version = _judged_while_production_moves(pipeline, DIRECT_CONFIG, before=before)
    assert result.status == "candidate", result.reasons
    assert any("not promoted: production moved from v1 to v2" in r for r in result.reasons)
    assert pipeline.registry.get_alias(MODEL, "production") == "2"
    record = pipeline.registry.get_version(MODEL, version)
    assert record is not None
    assert (record.status, record.reasons) == ("candidate", result.reasons)
    assert [h.to_version for h in pipeline.registry.history(MODEL)] == ["2", "1"]


@pytest.mark.parametrize(
    "before",
    [None, "alias#candidate"],
    ids=["after its scoring", "inside its rollout start"],
)
def test_a_gate_whose_champion_left_production_meanwhile_starts_no_rollout(
    pipeline: Pipeline, before: str | None
) -> None:
    # Pins: the gate's rollout is started only against the champion it scored (a canary of
    # v3 against v2 would let the evaluator promote v3 over a version the gate never
    # compared it with), and start_rollout's production condition when the move lands
    # between the start's read and its transaction.
    result, version = _judged_while_production_moves(pipeline, FAST_CONFIG, before=before)
    assert result.status == "candidate", result.reasons
    assert any(
        r.startswith("not promoted: its rollout could not start") and "moved" in r
        for r in result.reasons
    ), result.reasons
    assert pipeline.registry.get_rollout(MODEL) is None
    assert pipeline.registry.get_alias(MODEL, "production") == "2"
    record = pipeline.registry.get_version(MODEL, version)
    assert record is not None
    assert (record.status, record.reasons) == ("candidate", result.reasons)


# ------------------------------------------------------------------------ the gate's checks


def test_an_export_failing_parity_is_never_registered(pipeline: Pipeline) -> None:
    pipeline.run("m0.csv", month(0))
    strict = FAST_CONFIG.replace("rtol = 1e-4", "rtol = 0.0").replace("atol = 1e-6", "atol = 0.0")
    pipeline.config(strict)
    _, judged = pipeline.run("m6.csv", month(6))
    verdict = decision(judged)
    assert (verdict["status"], verdict["version"]) == ("rejected", None)
    assert "parity" in verdict["reasons"][0]
    assert [v.version for v in pipeline.registry.list_versions(MODEL)] == ["1"]
    assert pipeline.report(verdict["report_uri"])["parity"]["passed"] is False


def test_a_staged_model_changed_after_staging_is_never_registered(pipeline: Pipeline) -> None:
    event = pipeline.upload("m0.csv", month(0))
    response = pipeline.retrain(event)
    staged = only(response)["candidate"]
    prefix = staging_prefix(MODEL, staged["candidate_id"])
    pipeline.s3.put_object(Bucket=BUCKET, Key=prefix + "model.onnx", Body=b"not the model")
    verdict = decision(pipeline.judge(event, response))
    assert (verdict["status"], verdict["version"]) == ("rejected", None)
    assert "sha256" in verdict["reasons"][0]
    assert pipeline.registry.get_alias(MODEL, "production") is None


def test_a_broken_champion_does_not_block_a_good_challenger(pipeline: Pipeline) -> None:
    pipeline.run("m0.csv", month(0))
    pipeline.s3.put_object(Bucket=BUCKET, Key=f"models/{MODEL}/1/model.onnx", Body=b"corrupt")
    _, judged = pipeline.run("m6.csv", month(6))
    verdict = decision(judged)
    assert verdict["status"] == "production"
    assert any("could not be scored" in r for r in verdict["reasons"])


# ------------------------------------------------------------------------- requests, policy


def test_a_retrain_request_without_data_trains_on_the_newest_upload(pipeline: Pipeline) -> None:
    pipeline.s3.put_object(Bucket=TRAINING_BUCKET, Key=PREFIX + "a-old.csv", Body=month(0))
    pipeline.s3.put_object(Bucket=TRAINING_BUCKET, Key=PREFIX + "b-new.csv", Body=month(6))
    event = load_event("retrain_request.json")
    response = pipeline.retrain(event)
    staged = only(response)
    assert staged["status"] == "staged"
    assert staged["trigger"]["kind"] == "retrain_request"
    verdict = decision(pipeline.judge(event, response))
    manifest = pipeline.store.get_json(f"models/{MODEL}/{verdict['version']}/manifest.json")
    assert manifest["lineage"]["data"][0]["uri"].endswith("b-new.csv")
    assert manifest["lineage"]["trigger"]["reason"] == event["detail"]["reason"]
    # And the same request delivered again is not trained again
    assert pipeline.retrain(copy.deepcopy(event)) == response


def test_a_request_for_data_already_trained_returns_that_run_instead_of_training_again(
    pipeline: Pipeline,
) -> None:
    # Given the newest upload trained (the upload's own trigger)
    upload = pipeline.upload("m6.csv", month(6))
    first = pipeline.retrain(upload)
    # When drift asks for a retrain without data (the newest upload is the training set)
    event = load_event("retrain_request.json")
    again = pipeline.retrain(event)
    # Then the same object version is not trained twice: the first run's result answers
    assert only(again)["candidate"] == only(first)["candidate"]
    assert only(again)["trigger"]["kind"] == "s3_upload"  # the stored first run's trigger
    staged = {key.split("/")[2] for key in pipeline.keys(f"staging/{MODEL}/")}
    assert len(staged) == 1
    # But with labeled traffic in the training set the request is its own run
    pipeline.config(FAST_CONFIG.replace("include_feedback = false", "include_feedback = true"))
    event["detail"]["request_id"] = "with-feedback"
    assert only(pipeline.retrain(event))["trigger"].get("data_only") is None


def test_a_retrain_request_for_data_outside_the_training_prefix_is_refused(
    pipeline: Pipeline,
) -> None:
    event = load_event("retrain_request.json")
    event["detail"] |= {"request_id": "other", "data_uri": f"s3://{BUCKET}/config/x.csv"}
    outcome = only(pipeline.retrain(event))
    assert outcome["status"] == "rejected"
    assert "not under the training prefix" in outcome["reasons"][0]


def test_the_window_policy_trains_on_recent_files_and_holds_out_the_new_one(
    pipeline: Pipeline,
) -> None:
    # Given a window of 4 objects and three earlier uploads, one of them invalid
    window = FAST_CONFIG.replace('training_set = "new_object"', 'training_set = "window"')
    pipeline.config(window.replace("window_objects = 3", "window_objects = 4"))
    for name, body in (
        ("m4.csv", month(4, rows=600)),
        ("bad.csv", b"a;b\n1;2\n"),
        ("m5.csv", month(5, rows=600)),
    ):
        pipeline.s3.put_object(Bucket=TRAINING_BUCKET, Key=PREFIX + name, Body=body)
    # When month 6 is uploaded
    _, judged = pipeline.run("m6.csv", month(6, rows=1000))
    verdict = decision(judged)
    manifest = pipeline.store.get_json(f"models/{MODEL}/{verdict['version']}/manifest.json")
    lineage = manifest["lineage"]
    roles = {d["uri"].rsplit("/", 1)[1]: d["role"] for d in lineage["data"]}
    # Then it trained on the new file and the valid earlier ones; the invalid one is skipped
    assert roles == {"m6.csv": "new", "m5.csv": "window", "m4.csv": "window"}
    assert lineage["data"][0]["uri"].endswith("m6.csv")
    assert any("bad.csv" in n for n in lineage["trigger"]["notes"])
    # And the holdout is 20 % of the new file alone, the rest of every file trains
    assert lineage["holdout_rows"] == 200
    assert lineage["train_rows"] == 800 + 600 + 600


def _gz_lines(rows: list[dict[str, Any]]) -> bytes:
    return gzip.compress("".join(json.dumps(r) + "\n" for r in rows).encode())


# ------------------------------------------------- data kept by `mlops train` (kept_data)


def test_the_kept_copy_of_trained_data_is_skipped_with_a_report(pipeline: Pipeline) -> None:
    # Given v1, and the file it was trained from kept under the training prefix with its marker
    body = month(0)
    pipeline.run("m0.csv", body)
    marker = kept_metadata("1", hashlib.sha256(body).hexdigest())
    # When the copy's upload notification reaches the retrainer
    response = pipeline.retrain(pipeline.upload("kept.csv", body, marker))
    # Then nothing is trained again, and a report says why
    skipped = only(response)
    assert skipped["status"] == "skipped"
    assert "is the data v1 was trained from" in skipped["reasons"][0]
    report = pipeline.report(skipped["report_uri"])
    assert (report["kind"], report["version"]) == ("retrain_skipped", "1")
    assert pipeline.versions() == ["1"]


def test_a_marker_on_other_data_does_not_skip_it(pipeline: Pipeline) -> None:
    # Given a marker copied onto a file it does not describe (aws s3 cp keeps metadata)
    pipeline.run("m0.csv", month(0))
    marker = kept_metadata("1", hashlib.sha256(month(0)).hexdigest())
    response = pipeline.retrain(pipeline.upload("m6.csv", month(6), marker))
    # Then the new data trains as any upload does
    assert only(response)["status"] == "staged"


def test_a_request_for_the_kept_copy_alone_is_skipped_under_its_own_request(
    pipeline: Pipeline,
) -> None:
    # Given v1, and the file it was trained from kept under the training prefix, whose own
    # upload notification was skipped
    body = month(0)
    pipeline.run("m0.csv", body)
    pipeline.s3.delete_object(Bucket=TRAINING_BUCKET, Key=PREFIX + "m0.csv")
    marker = kept_metadata("1", hashlib.sha256(body).hexdigest())
    assert only(pipeline.retrain(pipeline.upload("kept.csv", body, marker)))["status"] == "skipped"
    # When the drift evaluator requests retraining on the upload alone (the default policy)
    event = load_event("retrain_request.json")
    skipped = only(pipeline.retrain(event))
    # Then the request gets its own answer, reported under its request id (what `mlops
    # retrain` follows), not the upload's stored one: nothing new to train
    assert skipped["status"] == "skipped"
    report = pipeline.report(skipped["report_uri"])
    assert report["trigger"]["request_id"] == event["detail"]["request_id"]
    assert pipeline.versions() == ["1"]


def test_a_request_with_feedback_trains_on_the_kept_copy(pipeline: Pipeline) -> None:
    # Given only the kept copy of v1's data, and a policy that adds labeled traffic
    body = month(0)
    pipeline.run("m0.csv", body)
    pipeline.config(FAST_CONFIG.replace("include_feedback = false", "include_feedback = true"))
    pipeline.s3.delete_object(Bucket=TRAINING_BUCKET, Key=PREFIX + "m0.csv")
    marker = kept_metadata("1", hashlib.sha256(body).hexdigest())
    pipeline.retrain(pipeline.upload("kept.csv", body, marker))
    # When the drift evaluator requests retraining
    staged = only(pipeline.retrain(load_event("retrain_request.json")))
    # Then it has data: the kept copy (the only object under the prefix) trains
    assert staged["status"] == "staged", staged
