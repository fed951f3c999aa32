"""Safe rollouts through the real handlers against moto: the inference function routing a
shadow or canary, the real prediction logger storing what it printed, the drift evaluator's
handler judging the rollout on live labels and promoting or rolling back in the registry."""

from __future__ import annotations

import json
import math
import tomllib
from dataclasses import replace
from datetime import UTC, datetime
from importlib import resources
from typing import Any

import boto3
import pytest

from mlops import settings
from mlops.adapters import aws
from mlops.adapters.registry import Rollout
from mlops.domain.config import ModelConfig
from mlops.domain.layout import version_prefix
from mlops.errors import ConflictError, IntegrityError, InvalidInputError
from mlops.services import promotion
from mlops.services.training import TrainingService
from mlops_cli.emulator.stack import LambdaContext
from tests.conftest import BUCKET, ROOT, http_event, import_fresh
from tests.integration.conftest import invoker
from tests.integration.rollout_stack import (
    MODEL,
    Stack,
    direct,
    lines,
    market_csv,
    market_rows,
    predict,
    serve_and_label,
)


@pytest.fixture
def stack(rollout_stack: Stack) -> Stack:
    """v1 (month 0) in production, v2 (month 4) and v3 (month 5) registered candidates; the
    stack's config rolls out canaries judged within seconds."""
    return rollout_stack


def start(stack: Stack, mode: str, percent: float = 50.0) -> Rollout:
    return stack.rollouts.start("2", mode=mode, percent=percent, reason="test")


# --- routing --------------------------------------------------------------------------------


def test_a_shadow_never_changes_an_answer_and_is_captured_beside_it(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    instances, _ = market_rows(4, 60, seed=31)
    start(stack, "shadow")
    invoke = invoker(stack.handler())
    capsys.readouterr()
    answers = [predict(invoke, {"instances": instances[i : i + 3]}) for i in range(0, 60, 3)]
    out = capsys.readouterr().out
    # Every answer is production's, value for value
    assert {a["model_version"] for a in answers} == {"1"}
    assert [p for a in answers for p in a["predictions"]] == direct(stack, "1", instances)
    # The shadow scored the same rows under the same prediction ids, captured, never returned
    captures = lines(out, "capture")
    production = [c for c in captures if c["variant"] == "production"]
    shadow = [c for c in captures if c["variant"] == "shadow"]
    assert len(production) == len(shadow) == 20
    assert {c["version"] for c in shadow} == {"2"}
    assert [c["prediction_ids"] for c in shadow] == [a["prediction_ids"] for a in answers]
    assert [p for c in shadow for p in c["predictions"]] == pytest.approx(
        direct(stack, "2", instances)
    )
    assert not any("candidate_error" in c for c in production)
    health = json.loads(invoke(http_event("http_health.json"))["body"])
    assert health["rollout"] | {"started_at": None} == {
        "version": "2", "mode": "shadow", "percent": 0.0, "started_at": None, "loaded": True,
    }  # fmt: skip


def test_a_canary_answers_its_share_of_requests_sticky_per_request_id(stack: Stack) -> None:
    instances, _ = market_rows(0, 1, seed=3)
    start(stack, "canary", percent=30.0)
    invoke = invoker(stack.handler())
    n = 1200
    served = [
        predict(invoke, {"instances": instances, "request_id": f"user-{i}"})["model_version"]
        for i in range(n)
    ]
    share = served.count("2") / n
    # Binomial: 30 % of 1,200 has a standard deviation of 1.3 points; 4 of them is 5.3.
    assert abs(share - 0.30) < 4 * math.sqrt(0.3 * 0.7 / n), share
    # The same request id meets the same model every time
    again = [
        predict(invoke, {"instances": instances, "request_id": f"user-{i}"})["model_version"]
        for i in range(100)
    ]
    assert again == served[:100]
    # Without a request id each request is routed by API Gateway's own id: the share holds
    anonymous = [predict(invoke, {"instances": instances})["model_version"] for _ in range(600)]
    assert abs(anonymous.count("2") / 600 - 0.30) < 4 * math.sqrt(0.3 * 0.7 / 600)


def test_a_canary_answer_names_the_candidate_and_its_capture_says_canary(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    instances, _ = market_rows(4, 5, seed=5)
    start(stack, "canary", percent=100.0)
    invoke = invoker(stack.handler())
    capsys.readouterr()
    answer = predict(invoke, {"instances": instances, "request_id": "r-1"})
    assert answer["model_version"] == "2"
    assert answer["predictions"] == pytest.approx(direct(stack, "2", instances))
    [line] = lines(capsys.readouterr().out, "capture")
    assert (line["version"], line["variant"]) == ("2", "canary")
    assert line["prediction_ids"] == answer["prediction_ids"]


def test_a_candidate_whose_artifact_was_replaced_is_never_loaded(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given v2's model.onnx replaced in the bucket after registration
    v1 = stack.store.get_bytes(version_prefix(MODEL, "1") + "model.onnx")
    boto3.client("s3").put_object(
        Bucket=BUCKET, Key=version_prefix(MODEL, "2") + "model.onnx", Body=v1
    )
    # Then a rollout of it does not start
    with pytest.raises(IntegrityError, match="sha256"):
        start(stack, "canary", percent=100.0)
    assert stack.registry.get_rollout(MODEL) is None
    # And one started behind the check's back (straight in the registry) serves nothing
    stack.registry.start_rollout(
        MODEL, "2", mode="canary", percent=100.0, rollout_id="r-forced", actor="t", reason="t"
    )
    invoke = invoker(stack.handler())
    instances, _ = market_rows(0, 2, seed=9)
    capsys.readouterr()
    versions = {predict(invoke, {"instances": instances})["model_version"] for _ in range(50)}
    assert versions == {"1"}
    out = capsys.readouterr().out
    health = json.loads(invoke(http_event("http_health.json"))["body"])
    assert health["status"] == "ok"  # production serves as it should
    assert health["rollout"]["loaded"] is False
    assert "sha256" in health["rollout"]["reason"]
    assert '"CandidateLoadFailures"' in out or "candidate not loaded" in out


def test_a_candidate_that_fails_on_a_request_leaves_production_to_answer_it(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    start(stack, "canary", percent=100.0)
    module = stack.handler()
    invoke = invoker(module)
    predict(invoke, {"instances": market_rows(0, 1, seed=1)[0]})  # loads the candidate
    live = module.service._provider.live_rollout()
    assert live is not None

    class Broken:
        def score(self, columns: Any) -> Any:
            raise RuntimeError("onnxruntime: out of memory")

    # A model that fails at run time (what no real ONNX file does on demand)
    module.service._provider._live = replace(
        live, candidate=replace(live.candidate, model=Broken())
    )
    capsys.readouterr()
    answer = predict(invoke, {"instances": market_rows(0, 2, seed=2)[0]})
    assert answer["model_version"] == "1"
    [line] = lines(capsys.readouterr().out, "capture")
    assert line["version"] == "1"
    assert line["candidate_error"] == "RuntimeError: onnxruntime: out of memory"


# --- registry ---------------------------------------------------------------------------------


def test_one_rollout_at_a_time_and_only_against_the_production_it_read(stack: Stack) -> None:
    first = stack.registry.start_rollout(
        MODEL, "2", mode="shadow", percent=0, rollout_id="a", actor="t", reason="t"
    )
    with pytest.raises(ConflictError, match="already in progress"):
        stack.registry.start_rollout(
            MODEL, "2", mode="canary", percent=5, rollout_id="b", actor="t", reason="t"
        )
    # A started rollout is returned as is when started again (a retried gate)
    assert start(stack, "shadow").rollout_id == "a"
    # A verdict on an ended rollout is refused
    stack.registry.finish_rollout(first, promote=False, actor="t", reason="test")
    with pytest.raises(ConflictError, match="no longer active"):
        stack.registry.record_check(MODEL, "a", {"decision": "wait"})
    # v2 was rejected by that rollback: it cannot be rolled out again
    assert stack.registry.get_version(MODEL, "2").status == "rejected"
    assert stack.registry.get_version(MODEL, "2").reasons[-1] == "rolled back: test"
    with pytest.raises(ConflictError, match="rejected"):
        start(stack, "canary")


def test_a_manual_promotion_of_another_version_waits_for_the_rollout(stack: Stack) -> None:
    rollout = start(stack, "canary", percent=10)
    with pytest.raises(ConflictError, match="in progress"):
        promotion.promote(stack.registry, MODEL, "1", actor="t", reason="t")
    # Promoting the candidate itself ends the rollout early, in one transaction
    change = promotion.promote(stack.registry, MODEL, "2", actor="ops", reason="looks good")
    assert (change.from_version, change.to_version) == ("1", "2")
    assert stack.registry.get_rollout(MODEL) is None
    assert stack.registry.get_version(MODEL, "1").status == "archived"
    with pytest.raises(ConflictError, match="no longer active"):
        stack.registry.finish_rollout(rollout, promote=False, actor="t", reason="late")


def test_a_new_candidate_supersedes_a_rollout_still_running(stack: Stack) -> None:
    start(stack, "canary", percent=10)
    # v3 (trained on month 5) arrives while v2's canary runs
    rollout = stack.rollouts.start("3", mode="shadow", percent=0, reason="newer data")
    assert rollout.version == "3"
    v2 = stack.registry.get_version(MODEL, "2")
    assert v2.status == "archived"
    assert "superseded by v3" in v2.reasons[-1]


# --- evaluation ---------------------------------------------------------------------------------


def _evaluate(stack: Stack, drift: dict[str, Any] | None = None) -> dict[str, Any]:
    """The drift evaluator's handler, as its schedule invokes it: the rollout's outcome (and,
    into ``drift``, the drift evaluation it made first)."""
    settings.drift_settings.cache_clear()
    aws.client.cache_clear()
    handler = import_fresh("drift_app_under_test", ROOT / "functions/drift_evaluator/app.py")
    result = dict(
        handler.lambda_handler({"window_hours": 24}, LambdaContext("DriftEvaluatorFunction"))
    )
    if drift is not None:
        drift.update(result)
    return dict(result["rollout"])


def test_a_canary_better_on_live_labels_is_promoted_by_the_evaluator(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    # The market moved to month 4: v2 was trained on it, v1 was not
    stack.configure(metric="mape")
    start(stack, "canary", percent=50.0)
    module = stack.handler()
    invoke = invoker(module)
    serve_and_label(stack, invoke, capsys, month=4, rows=600)
    drift: dict[str, Any] = {}
    outcome = _evaluate(stack, drift)
    assert outcome["decision"] == "promote", outcome["reasons"]
    assert outcome["acted"] is True
    # v1's traffic drifted, but a candidate was already being proven on it: no second retrain
    assert drift["dataset_drift"] or drift["quality_breach"]
    assert not drift["retrain_requested"]
    verdict = stack.store.get_json(drift["report"].removeprefix(f"s3://{BUCKET}/"))["verdict"]
    assert any("a rollout is in progress" in r for r in verdict["reasons"])
    assert stack.registry.get_alias(MODEL, "production") == "2"
    assert stack.registry.get_rollout(MODEL) is None
    [change] = [c for c in stack.registry.history(MODEL, "production") if c.to_version == "2"]
    assert change.reason.startswith("canary passed")
    report = stack.store.get_json(outcome["report"].removeprefix(f"s3://{BUCKET}/"))
    assert report["decision"] == "promote"
    assert report["verdict"]["quality"]["candidate"] < report["verdict"]["quality"]["production"]
    # The inference function follows: every answer is v2's after its next re-check
    module.service.expire_model()
    assert predict(invoke, {"instances": market_rows(4, 1, seed=1)[0]})["model_version"] == "2"
    health = json.loads(invoke(http_event("http_health.json"))["body"])
    assert "rollout" not in health


def test_a_canary_worse_on_live_labels_is_rolled_back_by_the_evaluator(
    stack: Stack, capsys: pytest.CaptureFixture[str], config: ModelConfig
) -> None:
    # A candidate far worse live than production (a booster of two trees), which an operator
    # let through after the gate rejected it: live traffic must catch what people miss
    weak = replace(
        config,
        estimator=replace(config.estimator, params={**config.estimator.params, "max_iter": 2}),
    )
    trainer = TrainingService(stack.store, stack.registry, code_version="test")
    data = market_csv(0, 1000, seed=3)
    v4 = trainer.train_and_register(weak, data, "s3://d/w.csv", promote=False)
    assert v4.version is not None
    stack.registry.set_status(MODEL, v4.version, "candidate", ("let through by hand",))
    stack.configure(metric="mape")
    stack.rollouts.start(v4.version, mode="canary", percent=50.0, reason="test")
    module = stack.handler()
    invoke = invoker(module)
    serve_and_label(stack, invoke, capsys, month=0, rows=600)
    outcome = _evaluate(stack)
    assert outcome["decision"] == "rollback", outcome["reasons"]
    assert stack.registry.get_alias(MODEL, "production") == "1"
    assert stack.registry.get_rollout(MODEL) is None
    record = stack.registry.get_version(MODEL, v4.version)
    assert record is not None
    assert record.status == "rejected"
    assert record.reasons[-1].startswith("rolled back: canary failed")
    module.service.expire_model()
    versions = {
        predict(invoke, {"instances": market_rows(0, 1, seed=i)[0]})["model_version"]
        for i in range(30)
    }
    assert versions == {"1"}


def test_a_rollout_without_enough_evidence_waits_and_says_why(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    start(stack, "shadow")
    invoke = invoker(stack.handler())
    serve_and_label(stack, invoke, capsys, month=4, rows=20)
    outcome = _evaluate(stack)
    assert outcome["decision"] == "wait"
    assert outcome["acted"] is False
    rollout = stack.registry.get_rollout(MODEL)
    assert rollout is not None
    assert rollout.last_check["decision"] == "wait"
    assert stack.registry.get_alias(MODEL, "production") == "1"


def test_the_shipped_config_parses_with_its_rollout_section() -> None:
    shipped = resources.files("mlops.defaults").joinpath("house_prices.toml").read_text()
    assert tomllib.loads(shipped)["rollout"]["mode"] == "canary"


@pytest.mark.parametrize(("mode", "percent"), [("canary", 0.001), ("canary", 101.0), ("blue", 5.0)])
def test_a_start_with_a_bad_mode_or_share_leaves_the_running_rollout_alone(
    stack: Stack, mode: str, percent: float
) -> None:
    start(stack, "canary", percent=10)
    with pytest.raises(InvalidInputError):
        stack.rollouts.start("3", mode=mode, percent=percent, reason="typo")
    rollout = stack.registry.get_rollout(MODEL)
    assert rollout is not None
    assert (rollout.version, rollout.percent) == ("2", 10.0)


def test_ending_a_rollout_by_hand_is_not_counted_as_a_failed_one(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    from mlops.observability import metrics

    start(stack, "canary", percent=10)
    capsys.readouterr()
    stack.rollouts.abort(reason="ops")
    metrics.flush_metrics()
    out = capsys.readouterr().out
    # RolloutRolledBack is alarmed as "live traffic found the candidate worse"
    assert '"RolloutAborted"' in out
    assert '"RolloutRolledBack"' not in out


@pytest.mark.parametrize("mode", ["shadow", "canary"])
def test_the_verdict_from_digests_and_labeled_documents_equals_the_one_from_every_capture(
    stack: Stack, capsys: pytest.CaptureFixture[str], mode: str
) -> None:
    # The cost model's proof: the judge that reads one roll-up and one labeled document an
    # hour decides as the one that read every capture since the start, on the same traffic
    # (below K requests a variant, where the samples are the whole population)
    from mlops.services.rollout import RolloutService

    stack.configure(metric="mape")
    start(stack, mode)
    invoke = invoker(stack.handler())
    serve_and_label(stack, invoke, capsys, month=4, rows=400)
    now = datetime.now(UTC)  # one clock for both: the bake is judged at the same instant
    common = {"model": MODEL, "store": stack.store, "registry": stack.registry, "actor": "test"}
    digests = RolloutService(
        **common,
        sketches=stack.rollouts._sketches,
        labels=stack.rollouts._labels,
        clock=lambda: now,
    ).evaluate(act=False)
    captures = RolloutService(
        **common, traffic=stack.rollouts._traffic, clock=lambda: now
    ).evaluate(act=False)
    assert digests is not None
    assert captures is not None
    assert digests.verdict["sources"]["mode"] == "digests"
    assert captures.verdict["sources"]["mode"] == "captures"
    assert digests.decision == captures.decision

    assert digests.verdict["checks"] == captures.verdict["checks"]
    for key in ("variants", "quality", "disagreement", "prediction_psi"):
        assert digests.verdict[key] == captures.verdict[key], key
    assert digests.verdict["variants"]["candidate"]["labels"] > 30
