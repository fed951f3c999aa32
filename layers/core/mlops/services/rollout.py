"""Safe rollouts (DESIGN §6): start a shadow or canary, judge it on live traffic, end it.
(About 600 lines: one rollout's life, start to end, against one registry item.)

The gate (or ``mlops promote --rollout``) starts a rollout; the inference function reads it with
the aliases and routes traffic; the drift evaluator's schedule calls ``evaluate``, which reads
both versions' serving digests since the rollout began (one sketch roll-up an hour,
``domain.serving``) and their labeled predictions (one labeled document an hour, folded as
labels arrive: ``services.labels``), asks ``domain.rollout.judge`` and promotes or rolls back
in one registry transaction conditioned on the rollout still being the active one. Cost per
evaluation: O(hours since the rollout began + labels that arrived), never O(requests). While
the window still holds sketches written before serving digests, or labels for ids from before
time-ordered ids, it reads the captures instead, as before (said in the report's sources).
Every evaluation writes a JSON report under ``reports/rollout/`` and keeps its verdict on the
rollout item (``mlops status``).

Starting the version already rolling out in another mode or share switches the rollout (its
verdict starts again). A ``held`` candidate (its labels disagreed with the world) may start
only as a shadow unless forced, and is promoted only when live labels clear it.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from mlops.adapters.aws import client
from mlops.adapters.model_store import ModelStore
from mlops.adapters.registry import (
    ARCHIVED,
    CANARY,
    HELD,
    PRODUCTION,
    REJECTED,
    Registry,
    Rollout,
    VersionRecord,
    check_rollout,
    phase,
)
from mlops.adapters.sketch_store import SketchStore
from mlops.adapters.training_data import TrainingDataStore
from mlops.domain import strict_json
from mlops.domain.layout import ROLLOUT_REPORTS
from mlops.errors import ConflictError, IntegrityError, InvalidInputError, NotFoundError, Problem
from mlops.metric_names import Metric
from mlops.observability import MetricUnit, logger, metrics
from mlops.services.labels import LabelFolder, label_folder
from mlops.services.promotion import verify_artifacts
from mlops.services.rollout_judging import RolloutJudge
from mlops.services.stack_config import stack_config
from mlops.settings import drift_settings, rollout_id_seed


@dataclass(frozen=True)
class RolloutOutcome:
    """One evaluation of the active rollout: the verdict, what was done, where it is reported."""

    rollout: Rollout
    decision: str  # wait | promote | rollback
    acted: bool
    reasons: list[str]
    report_uri: str
    verdict: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return {
            "version": self.rollout.version,
            "production_version": self.rollout.production_version,
            "mode": self.rollout.mode,
            "percent": self.rollout.percent,
            "decision": self.decision,
            "acted": self.acted,
            "reasons": self.reasons,
            "report": self.report_uri,
        }


@dataclass(frozen=True)
class RolloutStart:
    """What a start did: ``started`` (``previous``: the rollout of another version it
    superseded, if any), ``switched`` (``previous``: the same rollout before the switch) or
    ``unchanged`` (it was already running so)."""

    action: str  # started | switched | unchanged
    rollout: Rollout
    previous: Rollout | None


class RolloutService:
    def __init__(
        self,
        *,
        model: str,
        store: ModelStore,
        registry: Registry,
        actor: str,
        traffic: TrainingDataStore | None = None,
        sketches: SketchStore | None = None,
        labels: LabelFolder | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._model = model
        self._store = store
        self._registry = registry
        self._traffic = traffic
        self._sketches = sketches
        self._labels = labels
        self._actor = actor
        self._clock = clock
        self._judge = RolloutJudge(
            model=model, store=store, traffic=traffic, sketches=sketches, labels=labels
        ).judge

    def start(
        self,
        version: str,
        *,
        mode: str,
        percent: float,
        reason: str,
        actor: str | None = None,
        force: bool = False,
        against: str | None = None,
    ) -> Rollout:
        """Put registered ``version`` in front of live traffic as a shadow or canary; the
        rollout that runs afterwards (``start_or_switch`` says what was done)."""
        return self.start_or_switch(
            version,
            mode=mode,
            percent=percent,
            reason=reason,
            actor=actor,
            force=force,
            against=against,
        ).rollout

    def start_or_switch(
        self,
        version: str,
        *,
        mode: str,
        percent: float,
        reason: str,
        actor: str | None = None,
        force: bool = False,
        against: str | None = None,
    ) -> RolloutStart:
        """Put registered ``version`` in front of live traffic as a shadow or canary (with
        ``against``, the production version it was judged against: only while production is
        still that version).

        Everything that could refuse it is checked first (its artifacts against the registry,
        its status, production), so a refused start leaves a running rollout alone. A rejected
        version, or a held one's canary, needs ``force`` and a reason. A rollout of another
        version still running is then superseded (that candidate is archived: it was trained
        on older data). One of the same version in the same mode and share is returned as is
        (a retried start is harmless); in another mode or share it is switched, and its
        verdict starts again from the switch."""
        actor = actor or self._actor
        check_rollout(mode, percent)
        if force and not reason.strip():
            raise InvalidInputError(
                "a forced rollout needs a reason",
                [Problem("reason", "say why a rejected or held version should be rolled out")],
            )
        active = self._registry.get_rollout(self._model)
        if active is not None and active.version == version:
            if active.runs_as(mode, percent):
                return RolloutStart("unchanged", active, active)
            return self._switch(active, mode, percent, reason=reason, actor=actor, force=force)
        verify_artifacts(self._store, self._registry, self._model, version)
        record = self._registry.get_version(self._model, version)
        production = self._registry.get_alias(self._model, PRODUCTION)
        refused = None
        if record is None:
            refused = "it is not registered"
        elif production is None:
            refused = "there is no production version to prove it against"
        elif version == production or record.status == PRODUCTION:
            refused = "it is already in production"
        elif against is not None and production != against:
            refused = (
                f"production moved from v{against}, which it was judged against, to v{production}"
            )
        else:
            refused = _refusal(record, mode, force)
        if refused:
            raise ConflictError(f"v{version} of {self._model} cannot be rolled out: {refused}")
        if active is not None:
            self._registry.finish_rollout(
                active,
                promote=False,
                actor=actor,
                reason=f"superseded by v{version} before its rollout ended",
                status=ARCHIVED,
            )
            logger.info("rollout superseded", version=active.version, by_version=version)
        rollout = self._registry.start_rollout(
            self._model,
            version,
            mode=mode,
            percent=percent,
            rollout_id=_rollout_id(version, f"{mode}:{percent:g}:{against}"),
            actor=actor,
            reason=reason,
            force=force,
            against=against,
        )
        metrics.add_metric(name=Metric.ROLLOUT_STARTED, unit=MetricUnit.Count, value=1)
        logger.info("rollout started", **rollout.as_dict())
        return RolloutStart("started", rollout, active)

    def _switch(
        self, active: Rollout, mode: str, percent: float, *, reason: str, actor: str, force: bool
    ) -> RolloutStart:
        verify_artifacts(self._store, self._registry, self._model, active.version)
        record = self._registry.get_version(self._model, active.version)
        refused = "it is not registered" if record is None else _refusal(record, mode, force)
        if refused:
            raise ConflictError(
                f"the {active.describe} cannot be switched to {phase(mode, percent)}: {refused}"
            )
        switched = self._registry.switch_rollout(
            active,
            mode=mode,
            percent=percent,
            rollout_id=_rollout_id(active.version, f"{active.rollout_id}:{mode}:{percent:g}"),
            actor=actor,
            reason=reason,
            force=force,
        )
        metrics.add_metric(name=Metric.ROLLOUT_SWITCHED, unit=MetricUnit.Count, value=1)
        logger.info("rollout switched", from_phase=active.phase, **switched.as_dict())
        return RolloutStart("switched", switched, active)

    def abort(self, *, reason: str, actor: str | None = None) -> Rollout:
        """Take the active rollout's candidate off traffic now (``mlops rollback``): it is
        rejected with the reason; production is untouched. ``ConflictError`` if none."""
        rollout = self._registry.get_rollout(self._model)
        if rollout is None:
            raise ConflictError(f"no rollout of {self._model} is in progress")
        self._registry.finish_rollout(
            rollout, promote=False, actor=actor or self._actor, reason=reason, status=REJECTED
        )
        # Not RolloutRolledBack: that one (alarmed) says live traffic found the candidate worse.
        metrics.add_metric(name=Metric.ROLLOUT_ABORTED, unit=MetricUnit.Count, value=1)
        logger.warning("rollout ended by hand", version=rollout.version, reason=reason)
        return rollout

    def evaluate(self, *, act: bool = True) -> RolloutOutcome | None:
        """Judge the active rollout on the traffic since it began (None when there is none);
        with ``act``, promote or roll back as the verdict says. The report is written before
        anything is done, so the registry never cites a report that does not exist."""
        rollout = self._registry.get_rollout(self._model)
        if rollout is None:
            return None
        if self._traffic is None and (self._sketches is None or self._labels is None):
            raise ValueError("evaluating a rollout needs the capture bucket (traffic=)")
        config = stack_config(self._store, self._model)
        record = self._registry.get_version(self._model, rollout.version)
        held = record is not None and record.status == HELD
        if held:
            # Its uploaded labels disagreed with the world: only live labels clear it, whatever
            # the config allows (require_labels = false, on_inconclusive = promote).
            config = replace(
                config,
                rollout=replace(config.rollout, require_labels=True, on_inconclusive="rollback"),
            )
        now = self._clock()
        # Whoever started the rollout wrote started_at with their clock (a laptop's, for
        # `mlops promote --rollout`): never read traffic from the future.
        started = min(datetime.fromisoformat(rollout.started_at), now)
        try:
            verify_artifacts(self._store, self._registry, self._model, rollout.version)
            verdict = self._judge(rollout, config, started, now)
        except (NotFoundError, IntegrityError) as exc:
            # A candidate whose artifacts vanished or changed can never be promoted.
            verdict = {"decision": "rollback", "reasons": [f"candidate unusable: {exc.message}"]}
        decision = str(verdict["decision"])
        reasons = [str(r) for r in verdict.get("reasons", [])]
        stamp = f"{now:%Y%m%dT%H%M%S}-{now.microsecond // 1000:03d}Z-v{rollout.version}"
        key = f"{ROLLOUT_REPORTS}{stamp}.json"
        uri = self._store.uri(key)
        report = {
            "schema": 1,
            "kind": "rollout",
            "model": self._model,
            "evaluated_at": now.isoformat(timespec="seconds"),
            "rollout": rollout.as_dict() | {"last_check": None},
            "decision": decision,
            "acted": False,
            "reasons": reasons,
            "verdict": verdict,
            "held": held,
        }
        self._store.put_bytes(key, strict_json.dumps(report).encode())
        acted = False
        if act and decision == "step_up":
            decision, reasons, acted = self._step(rollout, verdict, reasons, uri)
            report |= {"decision": decision, "acted": acted, "reasons": reasons}
            self._store.put_bytes(key, strict_json.dumps(report).encode())
        elif act and decision in ("promote", "rollback"):
            decision, reasons, acted = self._act(rollout, decision, reasons, uri)
            report |= {"decision": decision, "acted": acted, "reasons": reasons}
            self._store.put_bytes(key, strict_json.dumps(report).encode())
        if not acted:
            sequential = verdict.get("sequential") or {}
            summary = {
                "at": report["evaluated_at"],
                "decision": decision,
                "reasons": reasons[:5],
                "report": uri,
                # what `mlops rollout` shows: the test's statistic against its boundary
                "sequential": {
                    k: sequential.get(k) for k in ("verdict", "z", "boundary", "confidence")
                },
                "ramp": verdict.get("ramp"),
            }
            # The rollout may have ended meanwhile (an operator): the report still stands.
            with contextlib.suppress(ConflictError):
                self._registry.record_check(self._model, rollout.rollout_id, summary)
        self._publish(rollout, decision, acted, verdict)
        logger.info(
            "rollout evaluated",
            version=rollout.version,
            mode=rollout.mode,
            decision=decision,
            acted=acted,
            report=uri,
        )
        return RolloutOutcome(rollout, decision, acted, reasons, uri, verdict)

    def _step(
        self, rollout: Rollout, verdict: Mapping[str, Any], reasons: list[str], report_uri: str
    ) -> tuple[str, list[str], bool]:
        """Move a ramp's canary up one step (a conditional write: ``Registry.step_rollout``);
        a rollout that ended, switched or stepped meanwhile is left as it is."""
        target = float((verdict.get("ramp") or {})["next_percent"])
        try:
            stepped = self._registry.step_rollout(
                rollout,
                percent=target,
                actor=f"{self._actor} (rollout {rollout.rollout_id})",
                reason=f"{'; '.join(reasons)[:900]} ({report_uri})",
            )
        except ConflictError as exc:
            return "step_up", [*reasons, f"not acted: {exc.message}"], False
        metrics.add_metric(name=Metric.ROLLOUT_STEPPED, unit=MetricUnit.Count, value=1)
        logger.info(
            "rollout stepped up",
            version=rollout.version,
            from_percent=rollout.percent,
            to_percent=stepped.percent,
            report=report_uri,
        )
        return "step_up", reasons, True

    def _act(
        self, rollout: Rollout, decision: str, reasons: list[str], report_uri: str
    ) -> tuple[str, list[str], bool]:
        """Promote or roll back; what was done and why. A production that moved during the
        rollout (an operator) ends it as archived, not promoted; any other failed write leaves
        it for the next evaluation."""
        actor = f"{self._actor} (rollout {rollout.rollout_id})"
        summary = "; ".join(reasons)[:900] or decision
        if decision == "promote":
            try:
                self._registry.finish_rollout(
                    rollout,
                    promote=True,
                    actor=actor,
                    reason=f"{rollout.mode} passed: {summary} ({report_uri})",
                )
            except ConflictError as exc:
                now = self._registry.get_alias(self._model, PRODUCTION)
                if now == rollout.production_version:  # a transient conflict, or it ended
                    return decision, [*reasons, f"not acted: {exc.message}"], False
                try:
                    self._registry.finish_rollout(
                        rollout,
                        promote=False,
                        actor=actor,
                        reason=f"production moved to v{now} during the rollout",
                        status=ARCHIVED,
                    )
                except ConflictError as again:  # it ended meanwhile (superseded, an operator)
                    return decision, [*reasons, f"not acted: {again.message}"], False
                moved = f"not promoted: production moved to v{now} during the rollout"
                return "rollback", [*reasons, moved], True
            metrics.add_metric(name=Metric.ROLLOUT_PROMOTED, unit=MetricUnit.Count, value=1)
            logger.info("rollout promoted", version=rollout.version, report=report_uri)
            return decision, reasons, True
        try:
            self._registry.finish_rollout(
                rollout,
                promote=False,
                actor=actor,
                reason=f"{rollout.mode} failed: {summary} ({report_uri})",
                status=REJECTED,
            )
        except ConflictError as exc:
            return decision, [*reasons, f"not acted: {exc.message}"], False
        metrics.add_metric(name=Metric.ROLLOUT_ROLLED_BACK, unit=MetricUnit.Count, value=1)
        logger.warning("rollout rolled back", version=rollout.version, report=report_uri)
        return "rollback", reasons, True

    def _publish(
        self, rollout: Rollout, decision: str, acted: bool, verdict: dict[str, Any]
    ) -> None:
        metrics.add_metric(name=Metric.ROLLOUT_EVALUATED, unit=MetricUnit.Count, value=1)
        candidate = (verdict.get("variants") or {}).get("candidate") or {}
        rate = candidate.get("error_rate")
        # A NaN or infinity would make the EMF line invalid JSON: every metric on it lost.
        if isinstance(rate, int | float) and not isinstance(rate, bool) and math.isfinite(rate):
            metrics.add_metric(name=Metric.CANDIDATE_ERROR_RATE, unit=MetricUnit.Count, value=rate)
        if not acted and decision == "wait":
            metrics.add_metric(name=Metric.ROLLOUT_WAITING, unit=MetricUnit.Count, value=1)


def _refusal(record: VersionRecord, mode: str, force: bool) -> str | None:
    """Why ``record``'s version may not run as ``mode`` (None: it may)."""
    why = f" ({'; '.join(record.reasons)})" if record.reasons else ""
    if record.status == PRODUCTION:
        return "it is already in production"
    if record.status == REJECTED and not force:
        return f"it was rejected{why}; only force with a reason rolls it out anyway"
    if record.status == HELD and mode == CANARY and not force:
        return (
            f"it is held{why}: it may run only as a shadow until live labels clear it; "
            "a canary needs force with a reason"
        )
    return None


def _rollout_id(version: str, basis: str) -> str:
    """A new rollout's id: random, or with ``ROLLOUT_ID_SEED`` derived from the seed, the
    version and ``basis`` (what the rollout starts from), so a replay splits alike."""
    seed = rollout_id_seed()
    if seed is None:
        return f"r{version}-{uuid.uuid4().hex[:8]}"
    digest = hashlib.blake2b(f"{seed}:{version}:{basis}".encode(), digest_size=4).hexdigest()
    return f"r{version}-{digest}"


def rollout_service(
    sketches: SketchStore | None = None, labels: LabelFolder | None = None
) -> RolloutService:
    """Composition root for the drift evaluator, which judges rollouts on its schedule
    (``sketches`` and ``labels`` shared with its drift service)."""
    settings = drift_settings()
    s3 = client("s3")
    return RolloutService(
        model=settings.model_name,
        store=ModelStore(settings.model_bucket, s3),
        registry=Registry(settings.registry_table, client("dynamodb")),
        traffic=TrainingDataStore(settings.capture_bucket, s3),
        sketches=sketches or SketchStore(settings.model_bucket, s3),
        labels=labels or label_folder(),
        actor=settings.service_name,
    )
