"""Stepped canary ramps (``[rollout] canary_steps``) through the real rollout service against
moto: each pass moves the share up one step with a conditional write, the last step's pass
promotes, a breach at any step rolls back; the inference handler picks up the new share at its
next re-check and a request the canary answered keeps meeting it as the share grows."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from mlops.adapters import aws
from mlops.adapters.label_store import LabelStore
from mlops.adapters.registry import Rollout
from mlops.adapters.sketch_store import SketchStore
from mlops.adapters.training_data import TrainingDataStore
from mlops.errors import ConflictError
from mlops.services.labels import LabelFolder
from mlops.services.rollout import RolloutService
from tests.conftest import BUCKET
from tests.integration.conftest import invoker
from tests.integration.retrain_pipeline import FAST_CONFIG, Pipeline, month
from tests.integration.retrain_pipeline import decision as gate_decision
from tests.integration.rollout_stack import MODEL, Stack, market_rows, predict, serve_and_label

# Shares large enough that a few dozen requests always reach the candidate
STEPS = "[50.0, 75.0, 90.0]"


@pytest.fixture
def stack(rollout_stack: Stack) -> Stack:
    return rollout_stack


def service(stack: Stack, now: datetime | None = None) -> RolloutService:
    """The evaluator's rollout service, with its clock at ``now`` (else the real one)."""
    s3 = aws.client("s3")
    return RolloutService(
        model=MODEL,
        store=stack.store,
        registry=stack.registry,
        actor="test-evaluator",
        traffic=TrainingDataStore(BUCKET, s3),
        sketches=SketchStore(BUCKET, s3),
        labels=LabelFolder(MODEL, TrainingDataStore(BUCKET, s3), LabelStore(BUCKET, s3)),
        clock=(lambda: now) if now is not None else (lambda: datetime.now(UTC)),
    )


def serve(stack: Stack, capsys: pytest.CaptureFixture[str], requests: int, seed: int = 0) -> None:
    """``requests`` one-row requests through the real handler, captured by the real logger."""
    invoke = invoker(stack.handler())
    capsys.readouterr()
    for i in range(requests):
        predict(invoke, {"instances": market_rows(4, 1, seed=seed + i)[0]})
    stack.store_output(capsys.readouterr().out)


def active(stack: Stack) -> Rollout:
    rollout = stack.registry.get_rollout(MODEL)
    assert rollout is not None
    return rollout


def test_a_ramp_steps_up_on_each_pass_and_promotes_after_the_last(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a ramp whose evidence passes at once (no labels required, tiny minimums)
    stack.configure(canary_steps=STEPS, min_requests="1", require_labels="false")
    started = stack.rollouts.start("2", mode="canary", percent=50.0, reason="test")
    serve(stack, capsys, 40)
    # When the evaluator judges it three times
    first = service(stack).evaluate()
    assert first is not None
    # Then each pass moves it one step up, keeping its id (routing stays sticky)
    assert (first.decision, first.acted) == ("step_up", True), first.reasons
    assert "step 1 of 3 (50 % of requests) passed: the share moves to 75 %" in first.reasons[0]
    stepped = active(stack)
    assert (stepped.percent, stepped.rollout_id) == (75.0, started.rollout_id)
    assert stepped.started_at == started.started_at  # the evidence runs from the start
    assert stepped.step_started_at > started.started_at
    assert [(s["from_percent"], s["to_percent"]) for s in stepped.steps] == [(50.0, 75.0)]
    report = stack.store.get_json(first.report_uri.removeprefix(f"s3://{BUCKET}/"))
    assert report["verdict"]["ramp"]["step"] == 1
    assert report["verdict"]["ramp"]["next_percent"] == 75.0
    second = service(stack).evaluate()
    assert second is not None
    assert (second.decision, active(stack).percent) == ("step_up", 90.0)
    third = service(stack).evaluate()
    assert third is not None
    assert (third.decision, third.acted) == ("promote", True)
    assert stack.registry.get_alias(MODEL, "production") == "2"
    assert stack.registry.get_rollout(MODEL) is None


def test_each_step_bakes_for_its_own_minimum(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    stack.configure(
        canary_steps=STEPS, min_requests="1", require_labels="false", min_bake_minutes="30"
    )
    stack.rollouts.start("2", mode="canary", percent=50.0, reason="test")
    serve(stack, capsys, 40)
    later = datetime.now(UTC) + timedelta(minutes=31)
    assert service(stack, later).evaluate().decision == "step_up"  # type: ignore[union-attr]
    # The new step has baked 1 minute by the same clock: it waits for its own 30
    step_start = datetime.fromisoformat(active(stack).step_started_at)
    for minutes, decision in ((29.9, "wait"), (30.0, "step_up")):
        outcome = service(stack, step_start + timedelta(minutes=minutes)).evaluate()
        assert outcome is not None
        assert outcome.decision == decision, outcome.reasons
    assert active(stack).percent == 90.0


def test_a_breach_at_a_later_step_rolls_back_to_zero(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    stack.configure(
        canary_steps=STEPS, min_requests="1", require_labels="false", max_error_rate="0.0"
    )
    stack.rollouts.start("2", mode="canary", percent=50.0, reason="test")
    serve(stack, capsys, 40)
    assert service(stack).evaluate().decision == "step_up"  # type: ignore[union-attr]
    # The candidate starts failing at the second step: its error rate breaches
    module = stack.handler()
    invoke = invoker(module)
    from tests.integration.rollout_stack import break_candidate

    capsys.readouterr()
    predict(invoke, {"instances": market_rows(4, 1, seed=1)[0]})
    break_candidate(module)
    for i in range(40):
        predict(invoke, {"instances": market_rows(4, 1, seed=100 + i)[0]})
    stack.store_output(capsys.readouterr().out)
    outcome = service(stack).evaluate()
    assert outcome is not None
    assert (outcome.decision, outcome.acted) == ("rollback", True), outcome.reasons
    assert stack.registry.get_rollout(MODEL) is None  # share 0: production answers all
    record = stack.registry.get_version(MODEL, "2")
    assert record is not None
    assert record.status == "rejected"


@pytest.mark.parametrize("racer", ["another evaluator stepped it", "an operator ended it"])
def test_a_step_racing_another_write_is_not_applied(
    stack: Stack, capsys: pytest.CaptureFixture[str], racer: str
) -> None:
    stack.configure(canary_steps=STEPS, min_requests="1", require_labels="false")
    stack.rollouts.start("2", mode="canary", percent=50.0, reason="test")
    serve(stack, capsys, 40)
    evaluator = service(stack)
    real = stack.registry.step_rollout

    def racing(rollout: Rollout, **kwargs: Any) -> Rollout:
        # The racing write lands after the evaluator read the rollout, before its write
        if racer.startswith("another"):
            real(rollout, percent=75.0, actor="evaluator-2", reason="raced")
        else:
            stack.rollouts.abort(reason="operator")
        return real(rollout, **kwargs)

    stack.registry.step_rollout = racing  # type: ignore[method-assign]
    outcome = evaluator.evaluate()
    assert outcome is not None
    assert (outcome.decision, outcome.acted) == ("step_up", False)
    assert "not acted" in outcome.reasons[-1]
    rollout = stack.registry.get_rollout(MODEL)
    if racer.startswith("another"):
        assert rollout is not None
        assert rollout.percent == 75.0  # stepped once, not twice
        assert len(rollout.steps) == 1
    else:
        assert rollout is None  # an ended rollout is not brought back by a late step


def test_step_rollout_refuses_a_shadow_or_a_step_down(stack: Stack) -> None:
    rollout = stack.rollouts.start("2", mode="canary", percent=25.0, reason="test")
    with pytest.raises(ConflictError, match="only up"):
        stack.registry.step_rollout(rollout, percent=5.0, actor="t", reason="down")
    assert active(stack).percent == 25.0


def test_the_inference_function_picks_up_a_grown_share_and_keeps_its_canary_requests(
    stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    instances, _ = market_rows(0, 1, seed=3)
    rollout = stack.rollouts.start("2", mode="canary", percent=5.0, reason="test")
    module = stack.handler()
    invoke = invoker(module)
    ids = [f"user-{i}" for i in range(400)]
    at_5 = {
        rid: predict(invoke, {"instances": instances, "request_id": rid})["model_version"]
        for rid in ids
    }
    stack.registry.step_rollout(rollout, percent=25.0, actor="test", reason="step")
    module.service.expire_model()  # the next request re-reads the registry
    caplog.clear()
    at_25 = {
        rid: predict(invoke, {"instances": instances, "request_id": rid})["model_version"]
        for rid in ids
    }
    canary_at_5 = {rid for rid, v in at_5.items() if v == "2"}
    canary_at_25 = {rid for rid, v in at_25.items() if v == "2"}
    assert canary_at_5  # about 20 of 400
    assert canary_at_5 <= canary_at_25  # sticky as the share grows
    assert len(canary_at_25) > 3 * len(canary_at_5)  # the new share is served
    assert module.service._provider.rollout_state()["percent"] == 25.0
    assert [r.getMessage() for r in caplog.records].count("rollout share changed") == 1


def test_mlops_rollout_shows_the_step_and_the_sequential_statistic(
    stack: Stack, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The command's own module (mlops_cli.main would also reconfigure the process's logging
    # for a console, which outlives the test)
    from mlops_cli.commands import rollout as command
    from mlops_cli.emulator import target

    class Local:
        model_name = MODEL

        def registry(self) -> Any:
            return stack.registry

    monkeypatch.setattr(target, "resolve_target", lambda _stack: Local())
    # Labels for both variants, but fewer than min_labels asks for a verdict on them
    stack.configure(canary_steps=STEPS, min_requests="1", min_labels="1000", metric="mape")
    stack.rollouts.start("2", mode="canary", percent=50.0, reason="test")
    serve_and_label(stack, invoker(stack.handler()), capsys, month=4, rows=120)
    outcome = service(stack).evaluate()
    assert outcome is not None
    assert outcome.decision == "wait"
    sequential = outcome.verdict["sequential"]
    assert sequential["z"] is not None
    capsys.readouterr()
    assert command.run(argparse.Namespace(stack=None, json=False)) == 0
    out = capsys.readouterr().out
    assert "canary 50% of v2 against v1" in out
    assert "Ramp 50 % -> 75 % -> 90 %: step 1 of 3 at 50 %; next 75 % when shown not worse" in out
    assert (
        f"Live quality, sequential test: z = {sequential['z']:+.2f} against the boundary "
        f"±{sequential['boundary']:.2f} (always valid at 95%)"
    ) in out


def test_the_gate_starts_a_ramp_at_its_first_step(pipeline: Pipeline) -> None:
    # Given a config with a ramp (and canary_percent, which the ramp replaces)
    pipeline.config(
        FAST_CONFIG.replace(
            "canary_percent = 10.0", "canary_percent = 10.0\ncanary_steps = [5, 25]"
        )
    )
    pipeline.run("m0.csv", month(0))
    pipeline.serve(6)
    # When a better month is uploaded and passes the gate
    _, judged = pipeline.run("m6.csv", month(6))
    assert gate_decision(judged)["decision"]["outcome"] == "passed"
    # Then its canary answers the first step's share
    rollout = pipeline.registry.get_rollout(MODEL)
    assert rollout is not None
    assert (rollout.mode, rollout.percent) == ("canary", 5.0)
