"""What the registry hands out: a version's record, one move of an alias, an active rollout,
and the rules a rollout's mode and share must follow."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from mlops.domain.names import CANARY, ROLLOUT_MODES, SHADOW
from mlops.errors import InvalidInputError, Problem

PROMOTE = "promote"
ROLLBACK = "rollback"
MIN_CANARY_PERCENT = 0.01  # one request in 10,000: below it a canary never answers


@dataclass(frozen=True)
class VersionRecord:
    model: str
    version: str
    created_at: str
    manifest_key: str
    model_sha256: str
    metrics: Mapping[str, float]
    status: str
    reasons: tuple[str, ...] = ()
    lineage: Mapping[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: plain dicts and lists, whatever mappings the record was built with."""
        return {f.name: getattr(self, f.name) for f in fields(self)} | {
            "metrics": dict(self.metrics),
            "reasons": list(self.reasons),
            "lineage": dict(self.lineage),
        }


@dataclass(frozen=True)
class AliasChange:
    """One move of an alias, as the history records it."""

    alias: str
    from_version: str | None
    to_version: str
    actor: str
    reason: str
    at: str
    kind: str  # promote | rollback

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Rollout:
    """A candidate being proven on live traffic before it takes production."""

    model: str
    version: str
    production_version: str
    mode: str  # shadow | canary
    percent: float  # the canary's share of requests (0 for a shadow)
    rollout_id: str
    started_at: str
    actor: str
    reason: str
    last_check: Mapping[str, Any] = field(default_factory=dict)
    forced: bool = False  # started or switched with force (a rejected or held version)
    # Each earlier mode and share, newest last: {"at", "actor", "reason", "from_mode",
    # "from_percent", "from_rollout_id", "from_started_at", "to_mode", "to_percent"}.
    switches: tuple[Mapping[str, Any], ...] = ()
    # A ramp (``canary_steps``): when the current share began ("": at ``started_at``) and each
    # step up, newest last: {"at", "actor", "reason", "from_percent", "to_percent"}.
    step_started_at: str = ""
    steps: tuple[Mapping[str, Any], ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)} | {
            "last_check": dict(self.last_check),
            "switches": [dict(s) for s in self.switches],
            "steps": [dict(s) for s in self.steps],
        }

    @property
    def step_since(self) -> str:
        """When the current share began: the last step up, else the start (or switch)."""
        return self.step_started_at or self.started_at

    @property
    def phase(self) -> str:
        """``shadow`` or ``canary 30 %``: what users see of the candidate."""
        return phase(self.mode, self.percent)

    @property
    def describe(self) -> str:
        share = f" {self.percent:g}%" if self.mode == CANARY else ""
        return f"{self.mode}{share} of v{self.version} against v{self.production_version}"

    def runs_as(self, mode: str, percent: float) -> bool:
        """Whether starting ``mode`` at ``percent`` asks for what this rollout already does."""
        return self.mode == mode and (mode == SHADOW or self.percent == float(percent))


def check_rollout(mode: str, percent: float) -> None:
    """``InvalidInputError`` unless ``mode`` is a rollout mode and a canary's share is usable."""
    if mode not in ROLLOUT_MODES:
        raise InvalidInputError(
            f"{mode!r} is not a rollout mode",
            [Problem("mode", f"expected one of {', '.join(ROLLOUT_MODES)}")],
        )
    if mode == CANARY and not MIN_CANARY_PERCENT <= percent <= 100:
        raise InvalidInputError(
            f"a canary's share must be from {MIN_CANARY_PERCENT} to 100 percent, got {percent}",
            [Problem("percent", f"expected a number from {MIN_CANARY_PERCENT} to 100")],
        )


def phase(mode: str, percent: float) -> str:
    """``shadow``, or ``canary 30 %``: how a rollout puts its candidate before users."""
    return f"{mode} {percent:g} %" if mode == CANARY else mode


def canary_share(mode: str, percent: float) -> float:
    """The share of requests a rollout in ``mode`` takes: ``percent`` for a canary, else 0."""
    return float(percent) if mode == CANARY else 0.0
