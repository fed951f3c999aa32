"""Judge a staged challenger in the serving runtime: check it, register it, report why.

Runs where onnxruntime lives (the candidate gate function, the CLI) and imports no
scikit-learn. The staged files are checked against the digests the retrainer wrote and the ONNX
export against scikit-learn's outputs; the challenger is scored against production on the same
holdout, drawn from the new data (``services.gate_evidence``); the version is registered with
its manifest and golden set, its outcome acted on (``services.gate_promotion``) and the
decision written as a report. A retried judgement resumes the version, never registers it twice.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import numpy as np

from mlops.adapters.aws import client
from mlops.adapters.model_store import ModelStore
from mlops.adapters.registry import CANDIDATE, PRODUCTION, Registry, VersionRecord
from mlops.domain import candidate, manifest, parity, strict_json
from mlops.domain.candidate import ParityInputs
from mlops.domain.config import ModelConfig
from mlops.domain.config_document import parse_config
from mlops.domain.estimate import LOSS_MODEL
from mlops.domain.gate import HELD, INCONCLUSIVE, PASSED, REJECTED, GateDecision
from mlops.domain.layout import RETRAIN_REPORTS, staging_prefix, version_prefix
from mlops.domain.schema import Signature
from mlops.domain.scoring import OnnxModel
from mlops.errors import IntegrityError, StorageError
from mlops.metric_names import Metric
from mlops.observability import MetricUnit, logger, metrics
from mlops.services.gate_estimates import check_estimates
from mlops.services.gate_evidence import Evaluation, GateEvidence, check_parity, staged_reference
from mlops.services.gate_promotion import CandidatePromotion, settled
from mlops.settings import gate_settings

# What each outcome is registered as (a held version may only run as a shadow).
_REGISTERED_AS = {PASSED: CANDIDATE, INCONCLUSIVE: CANDIDATE, HELD: HELD, REJECTED: REJECTED}


@dataclass(frozen=True)
class GateResult:
    model: str
    candidate_id: str
    status: str  # "production" (promoted), "candidate" (passed, not promoted), "rejected"
    version: str | None  # None: not registered (the export failed parity or integrity)
    reasons: tuple[str, ...]
    metrics: dict[str, float] = field(default_factory=dict)
    champion_version: str | None = None
    decision: GateDecision | None = None
    parity: parity.ParityReport | None = None
    report_uri: str | None = None
    manifest: dict[str, Any] = field(default_factory=dict)

    @property
    def promoted(self) -> bool:
        return self.status == PRODUCTION

    def as_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "candidate_id": self.candidate_id,
            "status": self.status,
            "version": self.version,
            "promoted": self.promoted,
            "reasons": list(self.reasons),
            "metrics": self.metrics,
            "champion_version": self.champion_version,
            "decision": self.decision.as_dict() if self.decision else None,
            "parity_passed": None if self.parity is None else self.parity.passed,
            "report_uri": self.report_uri,
        }


class CandidateGate:
    def __init__(
        self,
        store: ModelStore,
        registry: Registry,
        *,
        actor: str = "candidate-gate",
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._store = store
        self._registry = registry
        self._clock = clock
        self._evidence = GateEvidence(store, registry)
        self._promotion = CandidatePromotion(store, registry, actor=actor)

    def judge(
        self,
        model: str,
        candidate_id: str,
        *,
        promote: bool | None = None,
        candidate_sha256: str | None = None,
    ) -> GateResult:
        """Check, compare, register and (per the config's promotion mode, or ``promote``)
        promote the staged candidate. Raises ``StorageError`` for what a retry can fix.

        ``candidate_sha256`` (from the retrainer's result, delivered by Lambda) anchors the
        staged files: ``candidate.json`` must match it, and names every other file's sha256.
        A candidate judged before (a retried invocation) is resumed, never registered twice.
        """
        started = time.perf_counter()
        prefix = staging_prefix(model, candidate_id)
        raw = self._store.get_bytes(prefix + "candidate.json")
        stub = {"model_name": model, "candidate_id": candidate_id}
        if candidate_sha256 is not None and hashlib.sha256(raw).hexdigest() != candidate_sha256:
            reason = (
                "staged candidate.json changed after the retrainer wrote it (its sha256 is not "
                "the one the retrainer returned); nothing was registered"
            )
            return self._unregistered(stub, (reason,), None, started)
        try:
            doc = json.loads(raw)
        except ValueError as exc:
            return self._unregistered(stub, (f"candidate.json is not JSON: {exc}",), None, started)
        if doc.get("model_name") != model or doc.get("candidate_id") != candidate_id:
            raise IntegrityError(f"{self._store.uri(prefix)}candidate.json describes another model")
        config = parse_config(doc["config"])
        existing = self._registry.version_for_candidate(model, candidate_id)
        if existing is not None:
            return self._resume(config, doc, existing, promote, started)
        try:
            files = self._staged_files(prefix, doc)
        except IntegrityError as exc:
            return self._unregistered(doc, (str(exc),), None, started)
        signature = Signature.from_dict(doc["signature"])
        labels = tuple(manifest.typed_labels(tuple(doc.get("classes") or ())))
        try:
            inputs = candidate.decode_parity_inputs(
                files["parity_inputs.json.gz"], signature.features, config.task
            )
        except (ValueError, KeyError, TypeError, OSError) as exc:  # gzip, JSON, shape
            reason = f"staged parity inputs are unreadable: {exc!r}"
            return self._unregistered(doc, (reason,), None, started)
        try:
            challenger = OnnxModel(files["model.onnx"], signature, config.task, labels)
        except Exception as exc:  # onnxruntime's own exception types
            return self._unregistered(
                doc, (f"the ONNX export does not load: {exc}",), None, started
            )
        report, holdout_scores = check_parity(config, challenger, inputs)
        if not report.passed:
            metrics.add_metric(name=Metric.PARITY_FAILED, unit=MetricUnit.Count, value=1)
            return self._unregistered(
                doc, (f"ONNX export failed the parity gate: {report.summary()}",), report, started
            )
        if (problem := check_estimates(config, doc, files, inputs)) is not None:
            metrics.add_metric(name=Metric.ESTIMATE_REJECTED, unit=MetricUnit.Count, value=1)
            return self._unregistered(doc, (problem,), report, started)
        notes: list[str] = []
        reference = staged_reference(files, signature, config, notes)
        evaluation = self._evidence.evaluate(
            config,
            signature,
            labels,
            inputs,
            holdout_scores=holdout_scores,
            challenger=challenger,
            reference=reference,
        )
        evaluation = replace(evaluation, parity=report, notes=(*notes, *evaluation.notes))
        version = self._registry.next_version(model)
        golden = golden_set(config, inputs)
        manifest_doc = self._manifest(doc, version, evaluation, golden)
        self._store.put_version(
            model,
            version,
            {
                "model.onnx": files["model.onnx"],
                # The loss model before the baseline that names it: a logger that finds the
                # baseline finds the loss model too.
                **{n: files[n] for n in (LOSS_MODEL,) if n in files},
                "baseline.json": files["baseline.json"],
                candidate.GOLDEN: golden,
                "manifest.json": json.dumps(manifest_doc, indent=2).encode(),
            },
        )
        decision = evaluation.decision
        reasons = (*evaluation.notes, *decision.reasons)
        self._registry.put_version(
            VersionRecord(
                model=model,
                version=version,
                created_at=manifest_doc["created_at"],
                manifest_key=version_prefix(model, version) + "manifest.json",
                model_sha256=manifest_doc["artifacts"]["model.onnx"]["sha256"],
                metrics=evaluation.metrics,
                status=_REGISTERED_AS[decision.verdict],
                reasons=reasons,
                lineage=_lineage_summary(doc, evaluation),
            ),
            candidate_id=candidate_id,
        )
        status, reasons = self._promotion.settle(
            config,
            version=version,
            candidate_id=candidate_id,
            outcome=decision.verdict,
            champion_version=evaluation.champion_version,
            champion_scored=evaluation.champion_metrics is not None,
            reasons=reasons,
            promote=promote,
        )
        result = GateResult(
            model=model,
            candidate_id=candidate_id,
            status=status,
            version=version,
            reasons=reasons,
            metrics=evaluation.metrics,
            champion_version=evaluation.champion_version,
            decision=decision,
            parity=report,
            manifest=manifest_doc,
        )
        return self._report(result, doc, started)

    def _resume(
        self,
        config: ModelConfig,
        doc: Mapping[str, Any],
        version: str,
        promote: bool | None,
        started: float,
    ) -> GateResult:
        """A retried judgement of a candidate already registered as ``version``: finish what
        the first attempt left (its promotion or rollout), then report, without judging it
        again (its champion may now be itself)."""
        record = self._registry.get_version(config.name, version)
        if record is None:
            raise StorageError(f"candidate {doc['candidate_id']} names v{version}, not registered")
        manifest_doc = self._store.get_json(record.manifest_key)
        champion = record.lineage.get("champion") or {}
        status, reasons = record.status, tuple(record.reasons)
        outcome = _recorded_outcome(record)
        if status in (CANDIDATE, HELD) and outcome != REJECTED and not settled(reasons):
            status, reasons = self._promotion.settle(
                config,
                version=version,
                candidate_id=str(doc["candidate_id"]),
                outcome=outcome,
                champion_version=champion.get("version"),
                champion_scored=bool(champion.get("metrics")),
                reasons=reasons,
                promote=promote,
            )
        logger.info("candidate already registered: resumed", version=version, status=status)
        result = GateResult(
            model=config.name,
            candidate_id=str(doc["candidate_id"]),
            status=status,
            version=version,
            reasons=reasons,
            metrics=dict(record.metrics),
            champion_version=champion.get("version"),
            parity=_recorded_parity(manifest_doc),
            manifest=dict(manifest_doc),
        )
        return self._report(result, doc, started)

    def _staged_files(self, prefix: str, doc: Mapping[str, Any]) -> dict[str, bytes]:
        files = {}
        names = ["model.onnx", "baseline.json", "parity_inputs.json.gz"]
        if candidate.REFERENCE in doc["artifacts"]:  # staged before reference sets: none
            names.append(candidate.REFERENCE)
        if LOSS_MODEL in doc["artifacts"]:  # DLE's loss model (regression)
            names.append(LOSS_MODEL)
        for name in names:
            body = self._store.get_bytes(prefix + name)
            expected = doc["artifacts"][name]["sha256"]
            digest = hashlib.sha256(body).hexdigest()
            if digest != expected:
                raise IntegrityError(
                    f"staged {name} has sha256 {digest[:12]}…, the candidate says "
                    f"{expected[:12]}…: it changed after the retrainer wrote it"
                )
            files[name] = body
        return files

    def _manifest(
        self, doc: Mapping[str, Any], version: str, evaluation: Evaluation, golden: bytes
    ) -> dict[str, Any]:
        champion_metrics = evaluation.champion_metrics
        assert evaluation.parity is not None
        return {
            "schema_version": manifest.SCHEMA_VERSION,
            "model_name": doc["model_name"],
            "version": version,
            "task": doc["task"],
            "target": doc["target"],
            "created_at": self._clock().isoformat(timespec="seconds"),
            "signature": doc["signature"],
            "classes": manifest.typed_labels(tuple(doc.get("classes") or ())),
            "outputs": ["label", "probabilities"]
            if doc["task"] == "classification"
            else ["variable"],
            # What serves is the ONNX model: its holdout metrics are the version's metrics.
            "metrics": dict(evaluation.metrics),
            "sklearn_metrics": doc.get("sklearn_metrics", {}),
            "estimator": doc.get("estimator", {}),
            "lineage": dict(doc.get("lineage", {}))
            | {"candidate_id": doc["candidate_id"], "parent_version": evaluation.champion_version},
            "champion": {
                "version": evaluation.champion_version,
                "metrics": None if champion_metrics is None else dict(champion_metrics),
            },
            "gate": evaluation.decision.as_dict(),
            "config": doc.get("config"),
            "libraries": doc.get("libraries", {}),
            "artifacts": {
                name: doc["artifacts"][name]
                for name in ("model.onnx", "baseline.json", LOSS_MODEL)
                if name in doc["artifacts"]
            }
            | {
                candidate.GOLDEN: {
                    "sha256": hashlib.sha256(golden).hexdigest(),
                    "bytes": len(golden),
                }
            },
            "parity": evaluation.parity.as_dict(),
        }

    def _unregistered(
        self,
        doc: Mapping[str, Any],
        reasons: tuple[str, ...],
        report: parity.ParityReport | None,
        started: float,
    ) -> GateResult:
        metrics.add_metric(name=Metric.CANDIDATE_REJECTED, unit=MetricUnit.Count, value=1)
        result = GateResult(
            model=doc["model_name"],
            candidate_id=doc["candidate_id"],
            status="rejected",
            version=None,
            reasons=reasons,
            parity=report,
        )
        return self._report(result, doc, started)

    def _report(self, result: GateResult, doc: Mapping[str, Any], started: float) -> GateResult:
        """``reports/retrain/<time>-<version or candidate>.json``: the decision and why."""
        now = self._clock()
        name = f"v{result.version}" if result.version else result.candidate_id
        key = f"{RETRAIN_REPORTS}{now:%Y%m%dT%H%M%SZ}-{name}.json"
        body = {
            "kind": "retrain_decision",
            "at": now.isoformat(timespec="seconds"),
            **result.as_dict(),
            "parity": None if result.parity is None else result.parity.as_dict(),
            "lineage": doc.get("lineage", {}),
            "sklearn_metrics": doc.get("sklearn_metrics", {}),
            "gate_seconds": round(time.perf_counter() - started, 3),
        }
        self._store.put_bytes(key, strict_json.dumps(body).encode())
        logger.info(
            "candidate judged",
            candidate_id=result.candidate_id,
            status=result.status,
            version=result.version,
            reasons=list(result.reasons),
        )
        return GateResult(**{**vars(result), "report_uri": self._store.uri(key)})


def golden_set(config: ModelConfig, inputs: ParityInputs) -> bytes:
    """The version's golden set: its holdout, a seeded sample of at most
    ``promotion.reference_rows`` rows, the bar every later challenger is also scored on."""
    holdout = inputs.holdout
    rows = len(inputs.holdout_target)
    keep = np.arange(rows)
    if rows > config.promotion.reference_rows:
        rng = np.random.default_rng(config.training.seed)
        keep = np.sort(rng.choice(rows, config.promotion.reference_rows, replace=False))
    return candidate.encode_rows(
        candidate.LabeledRows(
            {k: v[keep] for k, v in holdout.columns.items()},
            np.asarray(inputs.holdout_target)[keep],
        )
    )


def _lineage_summary(doc: Mapping[str, Any], evaluation: Evaluation) -> dict[str, Any]:
    """The registry's compact copy of the lineage (the manifest has all of it)."""
    lineage = doc.get("lineage", {})
    decision = evaluation.decision.as_dict()
    return {
        "candidate_id": doc["candidate_id"],
        "trigger": lineage.get("trigger", {}),
        "data": [
            {k: d.get(k) for k in ("uri", "rows", "role", "sha256")}
            for d in lineage.get("data", [])
        ],
        "train_rows": lineage.get("train_rows"),
        "holdout_rows": lineage.get("holdout_rows"),
        "champion": {
            "version": evaluation.champion_version,
            "metrics": evaluation.champion_metrics,
        },
        "gate": {k: decision[k] for k in ("metric", "challenger", "champion", "passed", "outcome")},
        "timings": lineage.get("timings", {}),
    } | ({"training_job": lineage["training_job"]} if "training_job" in lineage else {})


def _recorded_outcome(record: VersionRecord) -> str:
    """The outcome ``_lineage_summary`` recorded (``GateDecision.verdict``); a version
    registered before outcomes were recorded has only ``passed``."""
    gate = record.lineage.get("gate") or {}
    return str(gate.get("outcome") or (PASSED if gate.get("passed") else REJECTED))


def _recorded_parity(manifest_doc: Mapping[str, Any]) -> parity.ParityReport:
    """The parity report the version's manifest recorded (``ParityReport.as_dict``)."""
    report = manifest_doc.get("parity") or {}
    return parity.ParityReport(
        passed=bool(report.get("passed")),
        tolerance=dict(report.get("tolerance") or {}),
        cases=tuple(parity.ParityCase(**c) for c in report.get("cases") or ()),
    )


def gate_service() -> CandidateGate:
    """Composition root of the candidate gate, built once per container."""
    settings = gate_settings()
    return CandidateGate(
        ModelStore(settings.model_bucket, client("s3")),
        Registry(settings.registry_table, client("dynamodb")),
    )
