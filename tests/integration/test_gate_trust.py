"""One bad upload cannot put a wrong model in production (issue 17): the corrupted uploads an
adversarial review sent, through the real retrainer and gate handlers on moto. Each leaves
every user served by the champion: rejected, or held as a shadow that answers no one."""

from __future__ import annotations

import hashlib

import pytest

from mlops.domain import candidate
from mlops.domain.synthetic import conditions_for_month, csv_bytes, generate
from tests.integration.retrain_pipeline import MODEL, Pipeline, decision, month

GOOD = 1_500


def altered(change: str, rows: int = GOOD, seed: int = 21) -> bytes:
    """Month-0 houses with their labels altered as the review did."""
    columns = generate(rows, conditions_for_month(0), seed=seed)
    price = columns["price"]
    if change == "times 3":
        columns["price"] = price * 3
    elif change == "negated":
        columns["price"] = -price
    elif change == "times 1.3":
        columns["price"] = price * 1.3
    return csv_bytes(columns)


@pytest.mark.parametrize("change", ["times 3", "negated"])
def test_labels_that_disagree_with_production_are_held_as_a_shadow(
    pipeline: Pipeline, change: str
) -> None:
    # Given v1 in production, trained on month 0
    pipeline.run("m0.csv", month(0))
    # When an upload of the same houses with its prices altered arrives
    _, judged = pipeline.run("altered.csv", altered(change))
    verdict = decision(judged)
    # Then v2 is registered but held: it runs only as a shadow; every user still gets v1
    assert verdict["status"] == "held", verdict["reasons"]
    assert verdict["decision"]["outcome"] == "held"
    label_check = verdict["decision"]["label_check"]
    assert label_check["flagged"] is True
    assert label_check["ratio"] > 5
    assert any(r.startswith("rollout started: shadow") for r in verdict["reasons"])
    assert pipeline.registry.get_alias(MODEL, "production") == "1"
    rollout = pipeline.registry.get_rollout(MODEL)
    assert rollout is not None
    assert (rollout.version, rollout.mode) == ("2", "shadow")
    record = pipeline.registry.get_version(MODEL, "2")
    assert record is not None
    assert record.status == "held"
    # And the decision report shows the evidence
    report = pipeline.report(verdict["report_uri"])
    assert report["decision"]["label_check"]["evidence"]["label scale vs predictions"] > 0


def test_wrong_labels_are_rejected_when_recent_traffic_shows_the_world(pipeline: Pipeline) -> None:
    # Given v1 in production and the labels of what it served in the last hour
    pipeline.run("m0.csv", month(0))
    pipeline.serve(0)
    # When prices x 1.3 are uploaded (a shift the label check alone would let through)
    _, judged = pipeline.run("inflated.csv", altered("times 1.3"))
    verdict = decision(judged)
    # Then the challenger is worse on recent labeled traffic: rejected, whatever its holdout says
    assert verdict["status"] == "rejected", verdict["reasons"]
    sets = {s["set"]: s for s in verdict["decision"]["sets"]}
    assert sets["traffic"]["verdict"] == "worse"
    assert sets["holdout"]["verdict"] in ("better", "equivalent", "inconclusive")
    assert pipeline.registry.get_alias(MODEL, "production") == "1"
    assert pipeline.registry.get_rollout(MODEL) is None


def test_a_genuinely_better_upload_starts_a_canary_by_default(pipeline: Pipeline) -> None:
    # Given v1 (month 0) and the market's month 6 served and labeled
    pipeline.run("m0.csv", month(0))
    pipeline.serve(6)
    # When month 6's sales are uploaded
    _, judged = pipeline.run("m6.csv", month(6))
    verdict = decision(judged)
    # Then it passed the gate on evidence the uploader does not control, and live traffic
    # decides: a canary, not production
    assert verdict["decision"]["outcome"] == "passed", verdict["reasons"]
    assert verdict["status"] == "candidate"
    rollout = pipeline.registry.get_rollout(MODEL)
    assert rollout is not None
    assert (rollout.version, rollout.mode) == ("2", "canary")
    assert pipeline.registry.get_alias(MODEL, "production") == "1"
    sets = {s["set"]: s for s in verdict["decision"]["sets"]}
    assert sets["traffic"]["verdict"] == "better"
    assert sets["traffic"]["rows"] >= 100
    assert sets["golden"]["rows"] > 0


def test_the_report_says_when_no_reference_set_could_be_used(pipeline: Pipeline) -> None:
    pipeline.run("m0.csv", month(0))
    # Production's golden set is gone and no traffic was labeled
    pipeline.s3.delete_object(Bucket=pipeline.store.bucket, Key=f"models/{MODEL}/1/golden.json.gz")
    _, judged = pipeline.run("more.csv", month(0, rows=2_000, seed=5))
    reasons = " ".join(decision(judged)["reasons"])
    assert "golden set is missing" in reasons
    assert "no reference set could be used" in reasons


def test_every_version_keeps_a_golden_set_its_manifest_vouches_for(pipeline: Pipeline) -> None:
    _, judged = pipeline.run("m0.csv", month(0))
    manifest = pipeline.store.get_json(f"models/{MODEL}/1/manifest.json")
    body = pipeline.store.get_bytes(f"models/{MODEL}/1/{candidate.GOLDEN}")
    assert manifest["artifacts"][candidate.GOLDEN]["sha256"] == hashlib.sha256(body).hexdigest()
    assert decision(judged)["status"] == "production"


def test_labeled_traffic_repeating_the_upload_never_reaches_the_holdout(pipeline: Pipeline) -> None:
    # Given include_feedback and production's traffic labeled, and an upload of those very rows
    pipeline.run("m0.csv", month(0))
    config = pipeline.s3.get_object(Bucket=pipeline.store.bucket, Key=f"config/{MODEL}.toml")
    text = config["Body"].read().decode()
    pipeline.config(
        text.replace("include_feedback = false", "include_feedback = true").replace(
            "reference_rows = 5000", "reference_rows = 100"
        )
    )
    pipeline.serve(3, rows=800, seed=31)
    columns = generate(800, conditions_for_month(3), seed=31)
    _, judged = pipeline.run("same.csv", csv_bytes(columns))
    manifest = pipeline.store.get_json(
        f"models/{MODEL}/{decision(judged)['version']}/manifest.json"
    )
    lineage = manifest["lineage"]
    # Then the traffic rows equal to uploaded rows were dropped before the split
    assert lineage["overlap_rows_dropped"] == 700  # 800 labeled, the newest 100 kept back
    assert lineage["train_rows"] + lineage["holdout_rows"] == 800
