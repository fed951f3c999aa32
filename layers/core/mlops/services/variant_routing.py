"""Which variant answers a request while a rollout runs, and scoring the candidate so that its
failure never fails the request: a canary answers a stable share of requests (hashed on the
rollout and the request), a shadow scores captured requests after production answered.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import Any

from mlops.adapters.registry import Rollout
from mlops.metric_names import Metric
from mlops.observability import MetricUnit, logger, metrics
from mlops.services.model_loading import LoadedModel


@dataclass(frozen=True)
class LiveRollout:
    """A rollout whose candidate is loaded: what a request may be routed to."""

    rollout: Rollout
    candidate: LoadedModel

    def routes_to_candidate(self, key: str) -> bool:
        """Whether a canary answers the request keyed ``key``: a stable hash of the rollout
        and the key, so one ``request_id`` always meets the same variant in a rollout."""
        if self.rollout.mode != "canary":
            return False
        digest = hashlib.blake2b(
            f"{self.rollout.rollout_id}:{key}".encode(), digest_size=8
        ).digest()
        return int.from_bytes(digest) * 100.0 < self.rollout.percent * 2**64


def shared_columns(
    loaded: LoadedModel, live: LiveRollout, columns: dict[str, Any]
) -> dict[str, Any] | None:
    """Production's validated columns when the candidate would build the same ones."""
    return columns if live.candidate.input_contract == loaded.input_contract else None


def score_candidate(
    live: LiveRollout,
    instances: list[dict[str, Any]],
    max_instances: int,
    columns: dict[str, Any] | None = None,
) -> tuple[Any, str | None]:
    """The candidate's scores, or None and why it failed: a failing candidate is counted and
    logged, and production answers (the rollout's evaluator sees the error rate). ``columns``:
    production's, when the candidate's input contract is the same (validated once)."""
    candidate = live.candidate
    try:
        if columns is None:
            columns = candidate.manifest.signature.columns(instances, max_instances)
        scores = candidate.model.score(columns)
        if any(isinstance(v, float) and not math.isfinite(v) for v in scores.values):
            # An answer no client can use (and the capture would store as null): a failure.
            raise ValueError("the candidate predicted a non-finite value")
        return scores, None
    except Exception as exc:  # onnxruntime raises its own types; any failure is the candidate's
        error = f"{type(exc).__name__}: {exc}"[:500]
        logger.warning(
            "candidate failed; production answered",
            candidate_version=candidate.version,
            mode=live.rollout.mode,
            error=error,
        )
        metrics.add_metric(name=Metric.CANDIDATE_ERRORS, unit=MetricUnit.Count, value=1)
        return None, error
