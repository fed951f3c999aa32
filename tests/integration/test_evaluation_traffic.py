"""Evaluation traffic (``"evaluation": true`` in a /predict body) through the real handlers on
moto during a rollout: production answers it, its capture says so, and the prediction logger,
the label fold and the rollout judge leave it out, counting what they left out. (The field
itself: test_inference_handler.py and test_capture.py.)"""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest

from mlops.domain.layout import CAPTURES, SKETCHES
from tests.conftest import BUCKET, http_event
from tests.integration.conftest import invoker
from tests.integration.rollout_stack import (
    MODEL,
    Stack,
    direct,
    lines,
    market_rows,
    predict,
)

# --- routing ----------------------------------------------------------------------------------


def test_during_a_canary_production_answers_evaluation_traffic_unsplit(
    rollout_stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a canary that answers every live request
    rollout_stack.rollouts.start("2", mode="canary", percent=100.0, reason="test")
    invoke = invoker(rollout_stack.handler())
    instances, _ = market_rows(4, 150, seed=5)
    capsys.readouterr()
    live = predict(invoke, {"instances": instances[:5], "request_id": "r-1"})
    # When a holdout of 150 rows is sent as evaluation traffic with the same request id
    evaluation = predict(invoke, {"instances": instances, "request_id": "r-1", "evaluation": True})
    # Then production answered it, every row, as it would have without a rollout
    assert live["model_version"] == "2"
    assert evaluation["model_version"] == "1"
    assert evaluation["predictions"] == direct(rollout_stack, "1", instances)
    canary, production = lines(capsys.readouterr().out, "capture")
    assert (canary["variant"], "source" in canary) == ("canary", False)
    assert (production["variant"], production["source"]) == ("production", "evaluation")
    assert "candidate_error" not in production


def test_a_shadow_never_scores_evaluation_traffic(
    rollout_stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    rollout_stack.rollouts.start("2", mode="shadow", percent=0.0, reason="test")
    invoke = invoker(rollout_stack.handler())
    instances, _ = market_rows(4, 3, seed=6)
    capsys.readouterr()
    predict(invoke, {"instances": instances, "evaluation": True})
    (capture,) = lines(capsys.readouterr().out, "capture")  # no shadow line beside it
    assert (capture["variant"], capture["source"]) == ("production", "evaluation")


# --- stored, but in no sketch, digest, labeled document or verdict ----------------------------


def serve_live_and_evaluation(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Labeled live traffic in requests of 10 under a 50 % canary, then a labeled 150-row
    evaluation request; everything printed is stored by the real logger. The capture lines of
    each, live and evaluation."""
    stack.configure(metric="mape")
    stack.rollouts.start("2", mode="canary", percent=50.0, reason="test")
    invoke = invoker(stack.handler())
    instances, prices = market_rows(4, 450, seed=41)
    capsys.readouterr()
    bodies = [
        {"instances": instances[s : s + 10], "request_id": f"q-{s}"} for s in range(0, 300, 10)
    ]
    bodies.append({"instances": instances[300:], "request_id": "holdout", "evaluation": True})
    start = 0
    for body in bodies:
        result = predict(invoke, body)
        items = [
            {"prediction_id": pid, "actual": float(prices[start + i])}
            for i, pid in enumerate(result["prediction_ids"])
        ]
        start += len(items)
        response = invoke(http_event("http_feedback.json", {"feedback": items}))
        assert response["statusCode"] == 202, response["body"]
    out = capsys.readouterr().out
    stack.store_output(out)
    captures = lines(out, "capture")
    return (
        [c for c in captures if "source" not in c],
        [c for c in captures if c.get("source") == "evaluation"],
    )


def stored(prefix: str) -> dict[str, bytes]:
    s3 = boto3.client("s3")
    keys = [
        o["Key"]
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
        for o in page.get("Contents", [])
    ]
    return {k: s3.get_object(Bucket=BUCKET, Key=k)["Body"].read() for k in keys}


def test_evaluation_rows_are_stored_but_in_no_sketch_or_serving_digest(
    rollout_stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    live, evaluation = serve_live_and_evaluation(rollout_stack, capsys)
    assert [len(c["prediction_ids"]) for c in evaluation] == [150]
    # The captures hold every row, the evaluation ones flagged (auditable)
    rows = [
        json.loads(line)
        for body in stored(f"{CAPTURES}model={MODEL}/").values()
        for line in gzip.decompress(body).decode().splitlines()
    ]
    flagged = {r["prediction_id"] for r in rows if r.get("source") == "evaluation"}
    assert flagged == set(evaluation[0]["prediction_ids"])
    assert len(rows) == 300 + 150
    # The sketches and their serving digests count the live rows only, per version
    sketches = [json.loads(b) for b in stored(f"{SKETCHES}model={MODEL}/").values()]
    for version in ("1", "2"):
        expected = sum(len(c["prediction_ids"]) for c in live if c["version"] == version)
        counted = [s for s in sketches if s["version"] == version]
        assert sum(s["rows"] for s in counted) == expected > 0
        assert sum(d["rows"] for s in counted for d in s["serving"].values()) == expected


def test_labels_of_evaluation_predictions_are_counted_and_left_out_of_every_verdict(
    rollout_stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    # The rollout judge from digests and labeled documents, and the fallback that reads every
    # capture, see the same live traffic: the 150 evaluation rows are in neither
    from mlops.services.rollout import RolloutService

    live, _ = serve_live_and_evaluation(rollout_stack, capsys)
    now = datetime.now(UTC)
    common: dict[str, Any] = {
        "model": MODEL,
        "store": rollout_stack.store,
        "registry": rollout_stack.registry,
        "actor": "test",
        "clock": lambda: now,
    }
    digests = RolloutService(
        **common, sketches=rollout_stack.rollouts._sketches, labels=rollout_stack.rollouts._labels
    ).evaluate(act=False)
    captures = RolloutService(**common, traffic=rollout_stack.rollouts._traffic).evaluate(act=False)
    assert digests is not None
    assert captures is not None
    assert (digests.verdict["sources"]["mode"], captures.verdict["sources"]["mode"]) == (
        "digests",
        "captures",
    )
    per_variant = {
        variant: sum(len(c["prediction_ids"]) for c in live if c["variant"] == variant)
        for variant in ("production", "canary")
    }
    for verdict in (digests.verdict, captures.verdict):
        variants = verdict["variants"]
        assert variants["production"]["rows"] == per_variant["production"]
        assert variants["candidate"]["rows"] == per_variant["canary"]
        assert variants["production"]["labels"] == per_variant["production"]
    # And the fold the judge ran says how many labels it left out, beside the ones it joined
    folded = digests.verdict["sources"]["labels"]["folded"]
    assert (folded["labels"], folded["joined"], folded["evaluation"], folded["pending"]) == (
        450,
        300,
        150,
        0,
    )
