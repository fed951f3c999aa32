"""Train, export, gate and register in one process: ``mlops train`` and the local stack's v1.

The same two services the retrainer pipeline runs in two functions (``CandidateBuilder`` where
scikit-learn lives, ``CandidateGate`` where onnxruntime lives), called back to back, through
the same staging area in S3: the synchronous path and the event-driven one cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlops.adapters.model_store import ModelStore
from mlops.adapters.registry import PRODUCTION, Registry
from mlops.domain import parity
from mlops.domain.config import ModelConfig
from mlops.domain.dataset import parse_csv
from mlops.domain.scoring import OnnxModel
from mlops.domain.training import TrainedModel
from mlops.errors import ParityError, Problem
from mlops.observability import metrics
from mlops.services import gate_evidence, promotion
from mlops.services.candidates import (
    CandidateBuilder,
    DataSource,
    parity_inputs,
    signature_from_training,
)
from mlops.services.gate import CandidateGate, GateResult

__all__ = ["TrainingResult", "TrainingService", "check_parity", "signature_from_training"]


@dataclass(frozen=True)
class TrainingResult:
    version: str
    promoted: bool
    metrics: dict[str, float]
    parity: parity.ParityReport
    manifest: dict[str, Any]
    status: str = PRODUCTION
    reasons: tuple[str, ...] = ()
    report_uri: str | None = None
    gate: dict[str, Any] = field(default_factory=dict)


class TrainingService:
    def __init__(
        self,
        store: ModelStore,
        registry: Registry,
        code_version: str,
        actor: str = "mlops train",
        model_code: Path | None = None,
    ) -> None:
        """``model_code``: the folder of the config's ``[estimator] factory``, if it has one."""
        self._registry = registry
        self._store = store
        self._builder = CandidateBuilder(store, code_version, model_code=model_code)
        self._gate = CandidateGate(store, registry, actor=actor)

    def train_and_register(
        self,
        config: ModelConfig,
        data: bytes,
        data_uri: str,
        *,
        promote: bool = True,
        trigger: dict[str, Any] | None = None,
    ) -> TrainingResult:
        """Validate ``data``, train, export, gate and register.

        Raises ``DataValidationError`` (nothing trained) or ``ParityError`` (nothing
        registered). A challenger that does not beat production is registered as
        ``rejected``; one that does is promoted (per the config's promotion mode, and never
        with ``promote=False``, which registers it as a candidate).
        """
        dataset = parse_csv(data, config)
        staged = self._builder.build(
            config,
            dataset,
            [DataSource(uri=data_uri, sha256=dataset.sha256, rows=dataset.rows, role="new")],
            trigger=trigger or {"kind": "cli", "uri": data_uri},
        )
        result = self._gate.judge(
            config.name, staged.candidate_id, promote=None if promote else False
        )
        # The gate's metrics are for the gate function's flush; in this process nothing
        # publishes them, and they must not ride along with the next handler's metrics.
        metrics.clear_metrics()
        if result.version is None:
            report = result.parity
            raise ParityError(
                result.reasons[0] if result.reasons else "the export was rejected",
                [
                    Problem(c.name, f"{c.mismatches} of {c.rows} rows outside tolerance")
                    for c in (report.cases if report else ())
                    if c.mismatches
                ],
            )
        return _result(result)

    def promote(
        self,
        model: str,
        version: str,
        alias: str = PRODUCTION,
        *,
        force: bool = False,
        reason: str = "promoted by hand",
    ) -> str | None:
        """Point ``alias`` at an existing ``version``; returns the version it pointed at.
        ``force`` (with a reason) promotes a version the gate rejected or held."""
        change = promotion.promote(
            self._registry,
            model,
            version,
            alias,
            actor="mlops train",
            reason=reason,
            force=force,
            store=self._store,
        )
        return change.from_version


def check_parity(
    config: ModelConfig, trained: TrainedModel, onnx_model: OnnxModel
) -> parity.ParityReport:
    """onnxruntime vs scikit-learn on the holdout and edge cases, in one process: the rows
    and comparison the gate uses, without the staging round trip."""
    return gate_evidence.check_parity(config, onnx_model, parity_inputs(config, trained))[0]


def _result(result: GateResult) -> TrainingResult:
    assert result.version is not None
    assert result.parity is not None
    return TrainingResult(
        version=result.version,
        promoted=result.promoted,
        metrics=result.metrics,
        parity=result.parity,
        manifest=result.manifest,
        status=result.status,
        reasons=result.reasons,
        report_uri=result.report_uri,
        gate=result.decision.as_dict() if result.decision else {},
    )
