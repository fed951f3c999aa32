"""Held and forced rollouts, and switching a running rollout, against moto (issue 17).

A ``held`` version (its uploaded labels disagree with the world) may run only as a shadow
until live labels clear it; a canary or a direct promotion of it needs force and a reason, as
does any rollout of a rejected version. Starting the version already rolling out in another
mode or share switches the rollout, and its verdict starts again. Each rule is checked when
read and again as a condition of the write: the race tests slip a competing write between
the two.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import pytest

from mlops.adapters import aws
from mlops.adapters.registry import ARCHIVED, HELD, REJECTED, Registry
from mlops.errors import ConflictError, InvalidInputError
from mlops.services import promotion
from mlops.services.rollout import RolloutService
from tests.conftest import TABLE
from tests.integration.conftest import BeforeTransaction, invoker
from tests.integration.rollout_stack import (
    MODEL,
    Stack,
    market_rows,
    predict,
    serve_and_label,
    status,
)

LABELS_DISAGREE = "uploaded labels disagree with the champion on 31% of rows"


@pytest.fixture
def stack(rollout_stack: Stack) -> Stack:
    """v1 in production, v2 (month 4) and v3 (month 5) registered candidates."""
    return rollout_stack


def hold(stack: Stack, version: str = "2") -> None:
    stack.registry.set_status(MODEL, version, HELD, (LABELS_DISAGREE,))


def racing(stack: Stack, competitor: Callable[[], object]) -> RolloutService:
    """A rollout service whose first registry transaction is preceded by ``competitor``."""
    registry = Registry(TABLE, BeforeTransaction(aws.client("dynamodb"), competitor))
    return RolloutService(model=MODEL, store=stack.store, registry=registry, actor="racer")


# --- held -------------------------------------------------------------------------------------


def test_a_held_version_may_start_as_a_shadow(stack: Stack) -> None:
    hold(stack)
    rollout = stack.rollouts.start("2", mode="shadow", percent=0.0, reason="held by the gate")
    active = stack.registry.get_rollout(MODEL)
    assert active == rollout
    assert (active.mode, active.forced) == ("shadow", False)
    assert status(stack, "2") == HELD


def test_a_held_version_is_not_canaried_without_force(stack: Stack) -> None:
    hold(stack)
    with pytest.raises(ConflictError, match=r"it is held \(uploaded labels disagree.*canary"):
        stack.rollouts.start("2", mode="canary", percent=10.0, reason="try it")
    assert stack.registry.get_rollout(MODEL) is None
    # Straight to the registry, without force, it is refused too
    with pytest.raises(ConflictError, match="is held"):
        stack.registry.start_rollout(
            MODEL, "2", mode="canary", percent=10.0, rollout_id="r", actor="t", reason="t"
        )
    assert stack.registry.get_rollout(MODEL) is None


def test_a_held_version_is_canaried_with_force_and_a_reason(stack: Stack) -> None:
    hold(stack)
    with pytest.raises(InvalidInputError, match="needs a reason"):
        stack.rollouts.start("2", mode="canary", percent=10.0, reason=" ", force=True)
    assert stack.registry.get_rollout(MODEL) is None
    stack.rollouts.start(
        "2", mode="canary", percent=10.0, reason="labels checked by hand", force=True, actor="ops"
    )
    active = stack.registry.get_rollout(MODEL)
    assert active is not None
    assert (active.mode, active.percent, active.forced) == ("canary", 10.0, True)
    assert (active.actor, active.reason) == ("ops", "labels checked by hand")
    assert status(stack, "2") == HELD


def test_a_held_version_is_not_promoted_directly_without_force(stack: Stack) -> None:
    hold(stack)
    with pytest.raises(ConflictError, match=r"is held \(uploaded labels.*only as a shadow"):
        promotion.promote(stack.registry, MODEL, "2", actor="ops", reason="ship")
    with pytest.raises(ConflictError, match="is held"):
        stack.registry.promote(MODEL, "2", expected="1", actor="ops", reason="ship")
    assert stack.registry.get_alias(MODEL, "production") == "1"
    # Nor by promoting its running shadow by hand
    stack.rollouts.start("2", mode="shadow", percent=0.0, reason="held")
    with pytest.raises(ConflictError, match="is held"):
        promotion.promote(stack.registry, MODEL, "2", actor="ops", reason="ship")
    assert stack.registry.get_alias(MODEL, "production") == "1"
    assert stack.registry.get_rollout(MODEL) is not None


def test_a_held_version_is_promoted_directly_with_force_and_a_reason(stack: Stack) -> None:
    hold(stack)
    with pytest.raises(InvalidInputError, match="needs a reason"):
        promotion.promote(stack.registry, MODEL, "2", actor="ops", reason="", force=True)
    change = promotion.promote(
        stack.registry, MODEL, "2", actor="ops", reason="labels fixed upstream", force=True
    )
    assert (change.from_version, change.to_version) == ("1", "2")
    assert stack.registry.history(MODEL, "production", limit=1)[0].reason == (
        "labels fixed upstream"
    )
    assert (status(stack, "1"), status(stack, "2")) == (ARCHIVED, "production")


def test_a_version_held_while_being_promoted_is_not_promoted(stack: Stack) -> None:
    racer = Registry(TABLE, BeforeTransaction(aws.client("dynamodb"), lambda: hold(stack)))
    with pytest.raises(ConflictError, match=r"version 2 of \S+ is not registered .*is held"):
        racer.promote(MODEL, "2", expected="1", actor="ops", reason="ship")
    assert stack.registry.get_alias(MODEL, "production") == "1"
    assert status(stack, "2") == HELD


def test_a_version_held_between_the_check_and_the_canary_start_is_refused_by_the_condition(
    stack: Stack,
) -> None:
    # Given a starter that checked v2 (a candidate) and the gate holding v2 just then
    with pytest.raises(ConflictError, match=r"version 2 of \S+ was held or rejected or promoted"):
        racing(stack, lambda: hold(stack)).start("2", mode="canary", percent=10.0, reason="passed")
    # Then no rollout was written
    assert stack.registry.get_rollout(MODEL) is None
    assert status(stack, "2") == HELD


def test_a_held_shadow_is_promoted_when_live_labels_clear_it(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given v2 (trained on month 4) held, shadowing v1 while the market is in month 4
    stack.configure(metric="mape")
    hold(stack)
    stack.rollouts.start("2", mode="shadow", percent=0.0, reason="held by the gate")
    serve_and_label(stack, invoker(stack.handler()), capsys, month=4, rows=600)
    # When the evaluator judges it on the labels that came back
    outcome = stack.rollouts.evaluate()
    # Then live labels cleared it: it is promoted, as any shadow that passes
    assert outcome is not None
    assert (outcome.decision, outcome.acted) == ("promote", True), outcome.reasons
    [quality] = [c for c in outcome.verdict["checks"] if c["name"] == "quality"]
    assert quality["status"] == "pass", quality
    assert stack.registry.get_alias(MODEL, "production") == "2"
    assert status(stack, "2") == "production"
    assert stack.registry.get_rollout(MODEL) is None


def test_a_held_shadow_is_not_promoted_without_live_labels_whatever_the_config(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a config that promotes on traffic alone (no labels required)
    stack.configure(min_requests="5", require_labels="false")
    hold(stack)
    stack.rollouts.start("2", mode="shadow", percent=0.0, reason="held by the gate")
    invoke = invoker(stack.handler())
    capsys.readouterr()
    for i in range(8):
        predict(invoke, {"instances": market_rows(4, 1, seed=i)[0], "request_id": f"p{i}"})
    stack.store_output(capsys.readouterr().out)
    # When the evaluator judges it with no label back yet
    outcome = stack.rollouts.evaluate()
    # Then it waits for live labels: a held candidate is cleared by them only
    assert outcome is not None
    assert outcome.decision == "wait", outcome.reasons
    assert any("live quality" in r or "label" in r for r in outcome.reasons), outcome.reasons
    assert stack.registry.get_alias(MODEL, "production") == "1"
    assert status(stack, "2") == HELD


# --- rejected, forced ---------------------------------------------------------------------------


@pytest.mark.parametrize(("mode", "percent"), [("shadow", 0.0), ("canary", 20.0)])
def test_a_rejected_version_rolls_out_only_with_force_and_a_reason(
    stack: Stack, mode: str, percent: float
) -> None:
    stack.registry.set_status(MODEL, "3", REJECTED, ("rmse 15% worse than v1",))
    with pytest.raises(ConflictError, match=r"it was rejected \(rmse 15% worse than v1\)"):
        stack.rollouts.start("3", mode=mode, percent=percent, reason="try")
    assert stack.registry.get_rollout(MODEL) is None
    rollout = stack.rollouts.start(
        "3", mode=mode, percent=percent, reason="v1 misprices lofts", force=True
    )
    assert stack.registry.get_rollout(MODEL) == rollout
    assert (rollout.mode, rollout.percent, rollout.forced) == (mode, percent, True)
    assert rollout.reason == "v1 misprices lofts"
    assert status(stack, "3") == REJECTED


def test_a_forced_rollout_of_a_rejected_version_can_be_promoted_by_its_verdict(
    stack: Stack,
) -> None:
    # (Without the rollout's force its promotion would fail the "not rejected" condition on
    # every evaluation: the candidate could never leave its canary.)
    stack.registry.set_status(MODEL, "3", REJECTED, ("rmse 15% worse than v1",))
    rollout = stack.rollouts.start("3", mode="canary", percent=20.0, reason="ops", force=True)
    change = stack.registry.finish_rollout(
        rollout, promote=True, actor="evaluator", reason="canary passed"
    )
    assert change is not None
    assert stack.registry.get_alias(MODEL, "production") == "3"


# --- switching ----------------------------------------------------------------------------------


def test_starting_the_running_version_in_another_mode_switches_it_and_restarts_its_verdict(
    stack: Stack,
) -> None:
    shadow = stack.rollouts.start("2", mode="shadow", percent=0.0, reason="gate", actor="gate")
    stack.registry.record_check(MODEL, shadow.rollout_id, {"decision": "wait"})
    # When the operator asks for a 30 % canary of the same version
    done = stack.rollouts.start_or_switch(
        "2", mode="canary", percent=30.0, reason="shadow looks fine", actor="ops"
    )
    # Then the running rollout is switched, in the registry
    assert done.action == "switched"
    assert done.previous is not None
    assert done.previous.rollout_id == shadow.rollout_id
    active = stack.registry.get_rollout(MODEL)
    assert active == done.rollout
    assert (active.version, active.mode, active.percent) == ("2", "canary", 30.0)
    assert (active.actor, active.reason) == ("ops", "shadow looks fine")
    # Its verdict starts again: a new id, the clock from the switch, no verdict yet
    assert active.rollout_id != shadow.rollout_id
    assert datetime.fromisoformat(active.started_at) > datetime.fromisoformat(shadow.started_at)
    assert active.last_check == {}
    [switch] = active.switches
    assert switch | {"at": None} == {
        "at": None, "actor": "ops", "reason": "shadow looks fine",
        "from_mode": "shadow", "from_percent": 0.0, "from_rollout_id": shadow.rollout_id,
        "from_started_at": shadow.started_at, "to_mode": "canary", "to_percent": 30.0,
    }  # fmt: skip
    # An evaluation of the shadow still running can no longer act on it
    with pytest.raises(ConflictError, match="no longer active"):
        stack.registry.finish_rollout(shadow, promote=True, actor="evaluator", reason="late")
    assert stack.registry.get_rollout(MODEL) == active


def test_a_switched_rollout_is_judged_on_the_traffic_since_the_switch(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a shadow that has seen 300 labeled requests, then switched to a canary
    stack.configure(metric="mape")
    stack.rollouts.start("2", mode="shadow", percent=0.0, reason="gate")
    serve_and_label(stack, invoker(stack.handler()), capsys, month=4, rows=300)
    stack.rollouts.start("2", mode="canary", percent=50.0, reason="ops")
    # When the evaluator judges it before the canary has answered anyone
    outcome = stack.rollouts.evaluate()
    # Then none of the shadow's traffic counts: it waits for the canary's own
    assert outcome is not None
    assert outcome.decision == "wait", outcome.reasons
    assert outcome.verdict["variants"]["candidate"]["rows"] == 0


def test_starting_the_running_version_in_the_same_mode_and_share_changes_nothing(
    stack: Stack,
) -> None:
    canary = stack.rollouts.start("2", mode="canary", percent=30.0, reason="gate")
    done = stack.rollouts.start_or_switch("2", mode="canary", percent=30.0, reason="retry")
    assert (done.action, done.rollout) == ("unchanged", canary)
    assert stack.registry.get_rollout(MODEL) == canary


def test_a_held_shadow_is_switched_to_a_canary_only_with_force(stack: Stack) -> None:
    hold(stack)
    shadow = stack.rollouts.start("2", mode="shadow", percent=0.0, reason="held by the gate")
    with pytest.raises(ConflictError, match=r"cannot be switched to canary 30 %: it is held"):
        stack.rollouts.start("2", mode="canary", percent=30.0, reason="ops")
    assert stack.registry.get_rollout(MODEL) == shadow
    switched = stack.rollouts.start(
        "2", mode="canary", percent=30.0, reason="labels checked", force=True
    )
    assert (switched.mode, switched.forced) == ("canary", True)
    assert stack.registry.get_rollout(MODEL) == switched


def test_a_switch_racing_the_end_of_its_rollout_conflicts_and_writes_nothing(
    stack: Stack,
) -> None:
    # Given a shadow of v2, and an operator ending it between a switch's read and its write
    shadow = stack.rollouts.start("2", mode="shadow", percent=0.0, reason="gate")

    def end() -> None:
        stack.registry.finish_rollout(shadow, promote=False, actor="ops", reason="enough")

    with pytest.raises(ConflictError, match=r"ended or was superseded since it was read"):
        racing(stack, end).start("2", mode="canary", percent=30.0, reason="ops")
    # Then the end stands and nothing of the switch was written
    assert stack.registry.get_rollout(MODEL) is None
    assert status(stack, "2") == REJECTED


def test_a_switch_racing_a_supersede_leaves_the_new_rollout_alone(stack: Stack) -> None:
    stack.rollouts.start("2", mode="shadow", percent=0.0, reason="gate")

    def supersede() -> None:
        stack.rollouts.start("3", mode="shadow", percent=0.0, reason="a retrain finished")

    with pytest.raises(ConflictError, match="ended or was superseded"):
        racing(stack, supersede).start("2", mode="canary", percent=30.0, reason="ops")
    active = stack.registry.get_rollout(MODEL)
    assert active is not None
    assert (active.version, active.mode, active.switches) == ("3", "shadow", ())


def test_a_version_held_between_the_check_and_the_switch_to_a_canary_is_refused(
    stack: Stack,
) -> None:
    shadow = stack.rollouts.start("2", mode="shadow", percent=0.0, reason="gate")
    with pytest.raises(ConflictError, match="was held or rejected or promoted meanwhile"):
        racing(stack, lambda: hold(stack)).start("2", mode="canary", percent=30.0, reason="ops")
    assert stack.registry.get_rollout(MODEL) == shadow
