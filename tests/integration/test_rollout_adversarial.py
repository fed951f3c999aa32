"""Adversarial review of safe rollouts (DESIGN §6, issue 11) against moto.

Tests whose comment starts with ``# Fixed:`` reproduce a defect found in review (each failed
before its fix). The others pin behaviours the review attacked and found safe.

Three models are trained once per module (v1 in production, v2 and v3 registered
candidates); each test starts from a fresh moto holding a copy of that state.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, tzinfo
from types import ModuleType
from typing import Any

import boto3
import pytest

from mlops.adapters import aws
from mlops.adapters.registry import items as registry_items
from mlops.domain.layout import version_prefix
from mlops.errors import ConflictError, StorageError
from mlops.services import promotion
from mlops_cli.emulator.stack import LambdaContext
from tests.conftest import BUCKET, ROOT, http_event, import_fresh
from tests.integration.conftest import invoker
from tests.integration.rollout_stack import (  # noqa: F401 (pytest fixtures)
    MODEL,
    Stack,
    break_candidate,
    call,
    direct,
    lines,
    market_rows,
    predict,
    serve_and_label,
    status,
)


@pytest.fixture
def stack(rollout_stack: Stack) -> Stack:
    return rollout_stack


def starter_clock(monkeypatch: pytest.MonkeyPatch, offset: timedelta) -> None:
    """Whoever starts a rollout stamps ``started_at`` with their own clock (a laptop's, for
    `mlops promote --rollout`): the registry's clock, ``offset`` from the true time."""
    real = datetime

    class Skewed(datetime):
        @classmethod
        def now(cls, tz: tzinfo | None = None) -> datetime:  # type: ignore[override]
            return real.now(tz) + offset

    monkeypatch.setattr(registry_items, "datetime", Skewed)


def test_errors_of_a_superseded_candidate_are_not_charged_to_its_successor(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    # Fixed: a capture row's ``candidate_error`` does not say WHICH candidate failed, and the
    # evaluator charges every production row carrying one to the active rollout. A container
    # that has not re-read the registry yet (up to ALIAS_REFRESH_SECONDS, 30 s by default)
    # still routes to the previous, broken candidate; its failures after the new rollout
    # started reject the new candidate, which never ran (2 errors suffice at min_requests 100).
    # Fix: capture the failed candidate's version (and rollout_id) with candidate_error, and
    # count only errors naming this rollout's candidate.
    stack.configure(canary_percent="100.0")
    stack.rollouts.start("2", mode="canary", percent=100.0, reason="test")
    module = stack.handler()
    invoke = invoker(module)
    predict(invoke, {"instances": market_rows(0, 1, seed=1)[0]})  # loads v2
    break_candidate(module)
    # Given v2 superseded by v3 (the gate, after a retrain)
    stack.rollouts.start("3", mode="canary", percent=100.0, reason="newer data")
    # When a container that has not re-read the registry yet serves a few requests
    capsys.readouterr()
    for i in range(5):
        answer = predict(invoke, {"instances": market_rows(0, 1, seed=i)[0]})
        assert answer["model_version"] == "1"  # v2 failed, production answered
    stack.store_output(capsys.readouterr().out)
    # Then v3, which never answered or failed anything, is not rolled back for v2's errors
    outcome = stack.rollouts.evaluate()
    assert outcome is not None
    assert outcome.rollout.version == "3"
    assert outcome.decision != "rollback", outcome.reasons


def test_a_rollout_started_by_a_clock_ahead_does_not_break_the_evaluator(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Fixed: ``started_at`` is the starter's clock (``mlops promote --rollout`` runs on an
    # operator's laptop). Five minutes ahead, the evaluator's ``traffic(since=started_at,
    # until=now)`` raises ValueError("since ... is after until"), so every scheduled drift
    # evaluation (which judges rollouts after drift) fails until the clock catches up; a
    # laptop a day off wedges it for a day. Fix: clamp started_at to now in the evaluator
    # (and stamp it server side: the first evaluation that sees the rollout, or DynamoDB's
    # own write time is not available, so record the evaluator's first sighting).
    starter_clock(monkeypatch, timedelta(minutes=5))
    rollout = stack.rollouts.start("2", mode="shadow", percent=0.0, reason="laptop clock ahead")
    monkeypatch.undo()
    assert datetime.fromisoformat(rollout.started_at) > datetime.now(UTC) + timedelta(minutes=4)
    outcome = stack.rollouts.evaluate()
    assert outcome is not None
    assert outcome.decision == "wait"


def test_a_rollout_started_by_a_clock_behind_still_bakes_for_the_bake_period(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Fixed: the bake period is measured from the starter's clock. A laptop two hours behind
    # starts a rollout that has "baked" two hours at once: min_bake_minutes = 60 is skipped
    # and the candidate is promoted on its first few minutes of traffic. Fix: measure the
    # bake from a server-side time (the evaluator's first sighting of the rollout, or the
    # first candidate capture's ts), never from started_at alone.
    #
    # Latency is not what this checks: its bound is set out of reach, or the candidate's p95
    # measured on a loaded machine (12.1 ms vs production's 4.6 ms) rolls it back.
    stack.configure(min_bake_minutes="60", latency_slack_ms="60000")
    starter_clock(monkeypatch, -timedelta(hours=2))
    rollout = stack.rollouts.start("2", mode="canary", percent=50.0, reason="laptop clock behind")
    monkeypatch.undo()
    assert datetime.fromisoformat(rollout.started_at) < datetime.now(UTC) - timedelta(hours=1)
    invoke = invoker(stack.handler())
    serve_and_label(stack, invoke, capsys, month=4, rows=400)  # v2 is better on month 4
    outcome = stack.rollouts.evaluate()
    assert outcome is not None
    # Seconds after the rollout really started: it cannot have baked 60 minutes
    assert outcome.decision == "wait", outcome.reasons
    [bake] = [c for c in outcome.verdict["checks"] if c["name"] == "bake"]
    assert bake["status"] == "pending", outcome.reasons


def test_an_alias_named_candidate_cannot_rewrite_an_active_rollout(stack: Stack) -> None:
    # Fixed: the rollout lives on the ``alias#candidate`` item, and ``candidate`` is also an
    # ordinary alias name (KNOWN_ALIASES; `mlops promote 3 --alias candidate`). Moving that
    # alias during a rollout rewrites the rollout item's ``version`` in place and keeps its
    # rollout_id, started_at (bake already done) and mode: v3 is then canaried and judged
    # without start()'s checks (artifacts verified, superseding). With v1 (production) as the
    # target the rollout compares v1 with v1, and its promotion fails on every evaluation:
    # ``finish_rollout`` archives "the production version" and the ConflictError escapes.
    # Fix: reserve the rollout's sort key (e.g. ``rollout#active``), or refuse moves of the
    # ``candidate`` alias (promote/move_alias/rollback) while an item has ``mode``.
    stack.rollouts.start("2", mode="canary", percent=10.0, reason="test")
    with pytest.raises(ConflictError):
        promotion.promote(stack.registry, MODEL, "3", actor="ops", reason="t", alias="candidate")
    rollout = stack.registry.get_rollout(MODEL)
    assert rollout is not None
    assert rollout.version == "2"


def test_a_mistyped_rollout_start_does_not_end_the_running_rollout(stack: Stack) -> None:
    # Fixed: RolloutService.start supersedes (archives) the active rollout BEFORE it checks
    # that the new one can start. `mlops promote 1 --rollout canary` (1 is production: a
    # typo), or a rejected version, or any StorageError from start_rollout, ends the running
    # canary of v2 (archived, its bake lost) and starts nothing. Fix: check first, and
    # supersede in the start transaction (Delete old rollout_id + Put new, one
    # TransactWriteItems) so both happen or neither.
    stack.rollouts.start("2", mode="canary", percent=10.0, reason="test")
    with pytest.raises(ConflictError, match="already in production"):
        stack.rollouts.start("1", mode="canary", percent=10.0, reason="typo")
    rollout = stack.registry.get_rollout(MODEL)
    assert rollout is not None
    assert rollout.version == "2"
    assert status(stack, "2") == "candidate"


def _promotable(stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    """A canary of v2 that the next evaluation promotes (no labels required)."""
    stack.configure(min_requests="5", require_labels="false")
    stack.rollouts.start("2", mode="canary", percent=100.0, reason="test")
    invoke = invoker(stack.handler())
    capsys.readouterr()
    for i in range(6):
        predict(invoke, {"instances": market_rows(4, 1, seed=i)[0], "request_id": f"p{i}"})
    stack.store_output(capsys.readouterr().out)


def test_a_supersede_racing_the_evaluators_promotion_does_not_crash_it(
    stack: Stack, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Fixed: when the promotion transaction fails, _act assumes "production moved" unless no
    # rollout is active, and archives the rollout it judged. If the gate superseded it
    # meanwhile (a retrain finished), that second finish_rollout fails its rollout_id
    # condition and the ConflictError escapes: the evaluator invocation fails (DLQ, alarm,
    # no report). Fix: on a failed promotion re-read the rollout; if its rollout_id changed
    # (or none), report "not acted"; catch ConflictError around the archive too.
    _promotable(stack, capsys)
    real = promotion.verify_artifacts  # what services.rollout imported
    raced: list[bool] = []

    def racing(store: Any, registry: Any, model: str, version: str) -> None:
        real(store, registry, model, version)
        if version == "2" and not raced:  # the evaluator about to promote v2
            raced.append(True)
            stack.rollouts.start("3", mode="shadow", percent=0.0, reason="a retrain finished")

    monkeypatch.setattr("mlops.services.rollout.verify_artifacts", racing)
    outcome = stack.rollouts.evaluate()
    assert raced
    assert outcome is not None
    assert outcome.acted is False
    active = stack.registry.get_rollout(MODEL)
    assert active is not None
    assert active.version == "3"


def test_a_transient_transaction_conflict_does_not_archive_a_passing_candidate(
    stack: Stack, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Fixed: any ConflictError from the promotion is read as "production moved during the
    # rollout": a TransactionConflict (Registry._transact's "another write to the same
    # registry items was in progress: read the registry again and retry") archives a
    # candidate that passed, although production did not move and retrying would promote.
    # Fix: after a failed promotion, compare the production alias with
    # rollout.production_version; archive only if it moved, else leave the rollout for the
    # next evaluation (acted=False).
    _promotable(stack, capsys)
    real = stack.registry.finish_rollout
    state = {"failed": False}

    def conflicted(rollout: Any, **kwargs: Any) -> Any:
        if kwargs.get("promote") and not state["failed"]:
            state["failed"] = True
            raise ConflictError(
                "another write to the same registry items was in progress: read the "
                "registry again and retry"
            )
        return real(rollout, **kwargs)

    monkeypatch.setattr(stack.registry, "finish_rollout", conflicted)
    outcome = stack.rollouts.evaluate()
    assert outcome is not None
    assert state["failed"]
    assert stack.registry.get_alias(MODEL, "production") == "1"  # production never moved
    assert status(stack, "2") == "candidate", outcome.reasons
    assert stack.registry.get_rollout(MODEL) is not None  # the next evaluation promotes it


def _evaluate_with_handler(stack: Stack) -> ModuleType:
    from mlops import settings

    settings.drift_settings.cache_clear()
    aws.client.cache_clear()
    return import_fresh("drift_app_under_test", ROOT / "functions/drift_evaluator/app.py")


def test_a_drift_failure_does_not_keep_a_failing_canary_in_front_of_users(
    stack: Stack, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Fixed: the evaluator's handler judges the rollout only after the drift evaluation
    # succeeded. Anything that makes drift raise (S3 throttling on roll-ups, a corrupt
    # baseline.json of production, a sketch-store bug) also keeps a candidate that fails
    # every request on its canary share: it is never rolled back until drift is repaired.
    # Fix: run the two evaluations independently (each in its own try) and raise at the end
    # if either failed.
    stack.configure(canary_percent="100.0")
    stack.rollouts.start("2", mode="canary", percent=100.0, reason="test")
    module = stack.handler()
    invoke = invoker(module)
    predict(invoke, {"instances": market_rows(0, 1, seed=1)[0]})
    break_candidate(module)
    capsys.readouterr()
    for i in range(10):
        predict(invoke, {"instances": market_rows(0, 1, seed=i)[0]})
    stack.store_output(capsys.readouterr().out)
    handler = _evaluate_with_handler(stack)

    def drift_fails(*args: Any, **kwargs: Any) -> Any:
        raise StorageError("injected: sketches unavailable")

    monkeypatch.setattr(handler.service, "evaluate", drift_fails)
    with pytest.raises(StorageError):
        handler.lambda_handler({"window_hours": 24}, LambdaContext("DriftEvaluatorFunction"))
    # The failing canary was still judged and taken off traffic
    assert stack.registry.get_rollout(MODEL) is None
    assert status(stack, "2") == "rejected"


def test_a_promotion_is_never_recorded_with_a_report_that_was_not_written(
    stack: Stack, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Was a defect: evaluate() acted on the registry first and wrote the report after; a
    # failed write left the alias history citing a report that never existed, and the retry
    # found no rollout. Now the report is written first: if it cannot be, nothing is done,
    # and the retried invocation judges again.
    _promotable(stack, capsys)
    real = stack.store.put_bytes

    def reports_fail(key: str, body: bytes, **kwargs: Any) -> None:
        if key.startswith("reports/rollout/"):
            raise StorageError("injected: S3 unavailable")
        real(key, body, **kwargs)

    monkeypatch.setattr(stack.store, "put_bytes", reports_fail)
    with pytest.raises(StorageError):
        stack.rollouts.evaluate()
    assert stack.registry.get_alias(MODEL, "production") == "1"
    assert stack.registry.get_rollout(MODEL) is not None
    monkeypatch.setattr(stack.store, "put_bytes", real)
    outcome = stack.rollouts.evaluate()
    assert outcome is not None
    assert outcome.decision == "promote"
    [change] = [c for c in stack.registry.history(MODEL, "production") if c.to_version == "2"]
    key = change.reason.rsplit("(", 1)[-1].rstrip(")").removeprefix(f"s3://{BUCKET}/")
    listed = boto3.client("s3").list_objects_v2(Bucket=BUCKET, Prefix=key).get("KeyCount", 0)
    assert listed == 1, f"the history cites {key}, which was never written"


def test_a_candidate_whose_artifacts_disappeared_does_not_wedge_the_evaluator(
    stack: Stack,
) -> None:
    # Fixed: _judge reads the candidate's manifest.json (only for its classes) before any
    # decision; if the candidate's artifacts are gone (a lifecycle rule, a cleanup script)
    # NotFoundError escapes on every schedule: the rollout is never rolled back or ended by
    # max_bake_hours, and the drift half of each invocation is reported as failed too.
    # (Inference already refuses to load it, so the rollout is dead weight.) Fix: treat an
    # unreadable candidate manifest as a breach ("candidate artifacts missing") and roll back.
    stack.rollouts.start("2", mode="shadow", percent=0.0, reason="test")
    boto3.client("s3").delete_object(
        Bucket=BUCKET, Key=version_prefix(MODEL, "2") + "manifest.json"
    )
    outcome = stack.rollouts.evaluate()
    assert outcome is not None
    assert outcome.decision == "rollback"
    assert stack.registry.get_rollout(MODEL) is None


def test_a_shadow_whose_capture_line_cannot_be_written_never_fails_the_request(
    stack: Stack,
) -> None:
    # Fixed: InferenceService.predict guards the production capture's emit ("capture must
    # never fail a prediction") but emits the shadow's lines outside any try: an emit that
    # raises on the shadow line (stdout closed/broken pipe, an encoding error) turns the
    # answer production already computed into a 500. The shadow changed the answer.
    # Fix: emit the shadow lines inside the same try/except (count CaptureFailures).
    stack.rollouts.start("2", mode="shadow", percent=0.0, reason="test")
    module = stack.handler()
    invoke = invoker(module)
    predict(invoke, {"instances": market_rows(0, 1, seed=1)[0]})  # loads the shadow
    assert module.service._provider.live_rollout() is not None
    real = module.service._emit

    def emit(line: str) -> None:
        if '"variant":"shadow"' in line:
            raise OSError("injected: write to stdout failed")
        real(line)

    module.service._emit = emit
    response = call(invoke, {"instances": market_rows(0, 2, seed=2)[0]})
    assert response["statusCode"] == 200, response["body"]


def test_the_evaluators_cost_does_not_follow_unlabeled_traffic(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Was a defect: _judge read every capture of both versions since the rollout began (then a
    # bounded sample of them): time and GETs followed traffic. Now it reads one sketch roll-up
    # an hour per version (serving digests: exact counts, bottom-K samples) and the labeled
    # documents: the captures are never read, and memory does not follow the rows.
    import tracemalloc

    from mlops.domain.capture import capture_lines
    from mlops.domain.ids import uuid7s
    from mlops.services.prediction_logger import LogEvent

    stack.rollouts.start("2", mode="canary", percent=10.0, reason="test")
    ts = int(datetime.now(UTC).timestamp() * 1000) + 1000
    instance = market_rows(0, 1, seed=1)[0][0]
    gets: list[str] = []

    def count_get(params: dict[str, Any], **_: Any) -> None:
        gets.append(str(params.get("Key", "")))

    aws.client("s3").meta.events.register("provide-client-params.s3.GetObject", count_get)

    def write(part: int) -> None:
        events = []
        for i in range(20):  # 20 requests of 100 rows
            ids = uuid7s(ts, 100)
            for line in capture_lines(
                model=MODEL, version="1", alias="production", variant=None,
                request_id=f"r{part}-{i}", timestamp_ms=ts, latency_ms=3.0,
                instances=[instance] * 100, prediction_ids=ids,
                predictions=[250_000.0 + j for j in range(100)], probabilities=None,
            ):  # fmt: skip
                events.append(LogEvent(f"{part:08d}{i:08d}{len(events):016d}", ts, line))
        stack.logger.store_batch(events)

    def peak() -> tuple[int, Any]:
        gets.clear()
        tracemalloc.start()
        try:
            outcome = stack.rollouts.evaluate(act=False)
            return tracemalloc.get_traced_memory()[1], outcome
        finally:
            tracemalloc.stop()

    for part in range(2):
        write(part)
    small, outcome = peak()
    assert outcome.verdict["sources"]["mode"] == "digests"
    assert outcome.verdict["variants"]["production"]["rows"] == 4_000  # exact counts
    assert not [k for k in gets if k.startswith("captures/")]
    for part in range(2, 10):
        write(part)
    large, outcome = peak()
    assert outcome.verdict["variants"]["production"]["rows"] == 20_000
    assert not [k for k in gets if k.startswith("captures/")]
    # Five times the traffic, not five times the memory: the open hour's new batch sketches
    # (at most K samples each, merged every few dozen) and the roll-ups, never the rows
    assert large - small < 4 * 2**20, f"{small / 2**20:.1f} -> {large / 2**20:.1f} MiB"


# =========================================================================== pinned (safe)


HOSTILE = [
    pytest.param(None, "[]", id="a-list"),
    pytest.param(None, '{"instances": [{"sqft": NaN}]}', id="nan-literal"),
    pytest.param(None, '{"instances": [], "request_id": "x"}', id="no-instances"),
    pytest.param({"instances": [{}]}, None, id="empty-instance"),
    pytest.param({"instances": "x"}, None, id="instances-a-string"),
    pytest.param({"instances": [None]}, None, id="instance-null"),
    pytest.param(None, '{"instances": [{}], "request_id": "\\ud800"}', id="lone-surrogate"),
    pytest.param({"instances": [{}], "request_id": 7}, None, id="request-id-number"),
    pytest.param({"instances": [{}], "request_id": ""}, None, id="request-id-empty"),
    pytest.param({"instances": [{}], "request_id": "é" * 129}, None, id="request-id-long"),
    pytest.param({"instances": [{}] * 201}, None, id="too-many"),
]


@pytest.mark.parametrize("mode", ["canary", "shadow"])
def test_hostile_bodies_during_a_rollout_are_4xx_never_500(
    stack: Stack, mode: str, capsys: pytest.CaptureFixture[str]
) -> None:
    stack.rollouts.start("2", mode=mode, percent=100.0, reason="test")
    invoke = invoker(stack.handler())
    good, _ = market_rows(0, 3, seed=5)
    assert predict(invoke, {"instances": good})["model_version"] == (
        "2" if mode == "canary" else "1"
    )
    for param in HOSTILE:
        body, raw = param.values
        response = call(invoke, body, raw=raw if isinstance(raw, str) else None)
        assert 400 <= response["statusCode"] < 500, (param.id, response)
    # A body production accepts but with odd (valid) values: the shadow never changes it
    odd = [dict(good[0], location="a-never-seen-location", property_type="🏠")]
    answer = predict(invoke, {"instances": odd, "request_id": "odd"})
    if mode == "shadow":
        assert answer["model_version"] == "1"
        assert answer["predictions"] == direct(stack, "1", odd)


def test_the_registry_failing_mid_rollout_keeps_both_variants_serving(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    stack.rollouts.start("2", mode="canary", percent=100.0, reason="test")
    module = stack.handler()
    invoke = invoker(module)
    instances, _ = market_rows(0, 2, seed=3)
    assert predict(invoke, {"instances": instances})["model_version"] == "2"
    provider = module.service._provider

    def down(*args: Any, **kwargs: Any) -> Any:
        raise StorageError("injected: DynamoDB unreachable")

    monkeypatch.setattr(provider._registry, "serving", down)
    monkeypatch.setattr(provider._store, "get_bytes", down)
    module.service.expire_model()
    versions = {predict(invoke, {"instances": instances})["model_version"] for _ in range(20)}
    assert versions == {"2"}  # the loaded candidate keeps its share; nothing fails
    health = json.loads(invoke(http_event("http_health.json"))["body"])
    assert health["rollout"]["loaded"] is True


def test_an_s3_failure_loading_the_candidate_leaves_production_answering(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = stack.handler()
    invoke = invoker(module)
    instances, _ = market_rows(0, 2, seed=3)
    assert predict(invoke, {"instances": instances})["model_version"] == "1"
    stack.rollouts.start("2", mode="canary", percent=100.0, reason="test")
    store = module.service._provider._store
    real = store.get_bytes

    def flaky(key: str) -> bytes:
        if key.startswith(version_prefix(MODEL, "2")):
            raise StorageError("injected: S3 throttled")
        return bytes(real(key))

    monkeypatch.setattr(store, "get_bytes", flaky)
    module.service.expire_model()
    versions = {predict(invoke, {"instances": instances})["model_version"] for _ in range(10)}
    assert versions == {"1"}
    health = json.loads(invoke(http_event("http_health.json"))["body"])
    assert health["rollout"]["loaded"] is False
    assert "throttled" in health["rollout"]["reason"]


def test_answers_across_a_promotion_are_each_wholly_the_model_they_name(stack: Stack) -> None:
    stack.rollouts.start("2", mode="canary", percent=50.0, reason="test")
    module = stack.handler()
    invoke = invoker(module)
    instances, _ = market_rows(4, 4, seed=12)
    expected = {v: direct(stack, v, instances) for v in ("1", "2")}
    answers = [predict(invoke, {"instances": instances, "request_id": f"a-{i}"}) for i in range(30)]
    promotion.promote(stack.registry, MODEL, "2", actor="ops", reason="early")
    module.service.expire_model()
    answers += [
        predict(invoke, {"instances": instances, "request_id": f"b-{i}"}) for i in range(10)
    ]
    assert {a["model_version"] for a in answers[:30]} == {"1", "2"}
    assert {a["model_version"] for a in answers[30:]} == {"2"}
    for answer in answers:
        assert answer["predictions"] == pytest.approx(expected[answer["model_version"]])
