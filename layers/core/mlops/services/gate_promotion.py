"""What follows the gate's verdict for a registered version: promote it, start its shadow or
canary, or leave it registered for an operator; and whether a first attempt already did.
"""

from __future__ import annotations

from mlops.adapters.model_store import ModelStore
from mlops.adapters.registry import CANDIDATE, PRODUCTION, Registry
from mlops.domain.config import ModelConfig
from mlops.domain.gate import HELD, INCONCLUSIVE, PASSED, REJECTED
from mlops.errors import ConflictError
from mlops.metric_names import Metric
from mlops.observability import MetricUnit, metrics
from mlops.services.rollout import RolloutService

# Reasons added once a candidate's fate is settled (a retry must not act again).
_SETTLED = ("not promoted:", "registered as ", "rollout started:")


def settled(reasons: tuple[str, ...]) -> bool:
    """Did an earlier attempt already promote, roll out or register this version for good?"""
    return any(r.startswith(_SETTLED) for r in reasons)


class CandidatePromotion:
    """Acts on a registered version's outcome, as ``actor`` in the registry's history."""

    def __init__(self, store: ModelStore, registry: Registry, *, actor: str) -> None:
        self._store = store
        self._registry = registry
        self._actor = actor

    def settle(
        self,
        config: ModelConfig,
        *,
        version: str,
        candidate_id: str,
        outcome: str,
        champion_version: str | None,
        champion_scored: bool,
        reasons: tuple[str, ...],
        promote: bool | None,
    ) -> tuple[str, tuple[str, ...]]:
        """The version's final status and reasons, after promoting it or starting its
        rollout as its outcome allows. A production model that could not be scored (it does
        not load) is replaced directly: a rollout would compare with a model not serving."""
        why = reasons[-1] if reasons else "passed the gate"  # the decision's last word
        if outcome == REJECTED:
            metrics.add_metric(name=Metric.CANDIDATE_REJECTED, unit=MetricUnit.Count, value=1)
            return REJECTED, reasons
        status = HELD if outcome == HELD else CANDIDATE
        if outcome == HELD:
            metrics.add_metric(name=Metric.CANDIDATE_HELD, unit=MetricUnit.Count, value=1)
        manual = not (config.promotion.mode == "auto" if promote is None else promote)
        if outcome == INCONCLUSIVE and config.promotion.on_inconclusive == "manual":
            manual = True
        if manual or (champion_version is None and outcome != PASSED):
            reasons = (*reasons, f"registered as {status}: promotion is manual")
            self._registry.set_status(config.name, version, status, reasons)
            return status, reasons
        if outcome == HELD:
            return self._roll_out(
                config, version, candidate_id=candidate_id, mode="shadow", why=why,
                reasons=reasons, status=status, against=champion_version,
            )  # fmt: skip
        if outcome == INCONCLUSIVE:
            return self._roll_out(
                config, version, candidate_id=candidate_id,
                mode=config.promotion.on_inconclusive, why=why, reasons=reasons, status=status,
                against=champion_version,
            )  # fmt: skip
        if config.rollout.mode != "direct" and champion_scored:
            return self._roll_out(
                config, version, candidate_id=candidate_id, mode=config.rollout.mode, why=why,
                reasons=reasons, status=status, against=champion_version,
            )  # fmt: skip
        try:
            self._registry.promote(
                config.name,
                version,
                expected=champion_version,
                actor=f"{self._actor} (candidate {candidate_id})",
                reason=why,
            )
        except ConflictError as exc:
            # Another promotion won the race: this candidate was judged against a champion
            # that is no longer in production, so it stays a candidate.
            now = self._registry.get_alias(config.name, PRODUCTION)
            reasons = (
                *reasons,
                f"not promoted: production moved from v{champion_version} to v{now} "
                f"while this candidate was judged ({exc.message})",
            )
            self._registry.set_status(config.name, version, CANDIDATE, reasons)
            metrics.add_metric(name=Metric.PROMOTION_CONFLICTS, unit=MetricUnit.Count, value=1)
            return CANDIDATE, reasons
        metrics.add_metric(name=Metric.CANDIDATE_PROMOTED, unit=MetricUnit.Count, value=1)
        return PRODUCTION, reasons

    def _roll_out(
        self,
        config: ModelConfig,
        version: str,
        *,
        candidate_id: str,
        mode: str,
        why: str,
        reasons: tuple[str, ...],
        status: str,
        against: str | None,
    ) -> tuple[str, tuple[str, ...]]:
        """Start a shadow or canary instead of promoting: live traffic decides (DESIGN §6).
        Only against ``against``, the production version the candidate was judged against:
        if production moved since, this candidate was never compared with the new one."""
        rollouts = RolloutService(
            model=config.name,
            store=self._store,
            registry=self._registry,
            actor=f"{self._actor} (candidate {candidate_id})",
        )
        try:
            rollout = rollouts.start(
                version,
                mode=mode,
                percent=config.rollout.start_percent,
                reason=why,
                against=against,
            )
        except ConflictError as exc:
            reasons = (*reasons, f"not promoted: its rollout could not start ({exc.message})")
            self._registry.set_status(config.name, version, status, reasons)
            metrics.add_metric(name=Metric.PROMOTION_CONFLICTS, unit=MetricUnit.Count, value=1)
            return status, reasons
        reasons = (*reasons, f"rollout started: {rollout.describe}")
        self._registry.set_status(config.name, version, status, reasons)
        return status, reasons
