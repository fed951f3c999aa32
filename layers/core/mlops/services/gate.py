"""Judge a staged challenger in the serving runtime: parity, champion/challenger, register.

Runs where onnxruntime lives (the candidate gate function, the CLI) and imports no
scikit-learn. The challenger and the production model are scored with onnxruntime, the engine
that will serve them, on the same holdout drawn from the new data.
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
from mlops.adapters.model_store import ModelStore, version_prefix
from mlops.adapters.registry import Registry, VersionRecord
from mlops.domain import candidate, manifest, parity
from mlops.domain.candidate import ParityInputs
from mlops.domain.config import ModelConfig, parse_config
from mlops.domain.gate import GateDecision, decide, feature_set_change
from mlops.domain.metrics import classification_metrics, naive_predictions, regression_metrics
from mlops.domain.schema import Signature
from mlops.domain.scoring import OnnxModel, Scores
from mlops.errors import (
    ConflictError,
    IntegrityError,
    ModelUnavailableError,
    NotFoundError,
    StorageError,
)
from mlops.observability import MetricUnit, logger, metrics
from mlops.services.inference import load_version
from mlops.services.rollout import RolloutService
from mlops.settings import gate_settings

PRODUCTION = "production"


@dataclass(frozen=True)
class _Evaluation:
    metrics: dict[str, float]  # the challenger's, ONNX on the holdout
    champion_version: str | None
    champion_metrics: dict[str, float] | None
    decision: GateDecision
    notes: tuple[str, ...]
    parity: parity.ParityReport | None = None


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
        return self.status == "production"

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
        self._actor = actor
        self._clock = clock

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
        prefix = candidate.staging_prefix(model, candidate_id)
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
            metrics.add_metric(name="ParityFailed", unit=MetricUnit.Count, value=1)
            return self._unregistered(
                doc, (f"ONNX export failed the parity gate: {report.summary()}",), report, started
            )
        evaluation = self._evaluate(config, signature, labels, inputs, holdout_scores)
        evaluation = replace(evaluation, parity=report)
        version = self._registry.next_version(model)
        manifest_doc = self._manifest(doc, version, evaluation)
        self._store.put_version(
            model,
            version,
            {
                "model.onnx": files["model.onnx"],
                "baseline.json": files["baseline.json"],
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
                status="candidate" if decision.passed else "rejected",
                reasons=reasons,
                lineage=_lineage_summary(doc, evaluation),
            ),
            candidate_id=candidate_id,
        )
        status, reasons = self._promote(
            config,
            version=version,
            candidate_id=candidate_id,
            evaluation=evaluation,
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
        the first attempt left (its promotion), then report, without judging it again (its
        champion may now be itself)."""
        record = self._registry.get_version(config.name, version)
        if record is None:
            raise StorageError(f"candidate {doc['candidate_id']} names v{version}, not registered")
        manifest_doc = self._store.get_json(record.manifest_key)
        lineage = dict(record.lineage)
        gate = lineage.get("gate") or {}
        champion = (lineage.get("champion") or {}).get("version")
        status, reasons = record.status, tuple(record.reasons)
        settled = any(
            r.startswith(("not promoted:", "registered as a candidate", "rollout started:"))
            for r in reasons
        )
        if status == "candidate" and gate.get("passed") and not settled:
            evaluation = _Evaluation(
                dict(record.metrics),
                champion,
                None,
                GateDecision(True, str(gate.get("metric")), True, 0.0, None, None, reasons[-1:]),
                (),
            )
            status, reasons = self._promote(
                config,
                version=version,
                candidate_id=str(doc["candidate_id"]),
                evaluation=evaluation,
                reasons=reasons,
                promote=promote,
            )
        logger.info("candidate already registered: resumed", version=version, status=status)
        report = manifest_doc.get("parity") or {}
        result = GateResult(
            model=config.name,
            candidate_id=str(doc["candidate_id"]),
            status=status,
            version=version,
            reasons=reasons,
            metrics=dict(record.metrics),
            champion_version=champion,
            parity=parity.ParityReport(
                passed=bool(report.get("passed")),
                tolerance=dict(report.get("tolerance") or {}),
                cases=tuple(parity.ParityCase(**c) for c in report.get("cases") or ()),
            ),
            manifest=dict(manifest_doc),
        )
        return self._report(result, doc, started)

    def _evaluate(
        self,
        config: ModelConfig,
        signature: Signature,
        labels: tuple[str | int, ...],
        inputs: ParityInputs,
        holdout_scores: Scores,
    ) -> _Evaluation:
        challenger_metrics = score(config, holdout_scores, inputs.holdout_target, labels)
        naive_metrics = naive_score(config, inputs.holdout_target, labels)
        champion_version = self._registry.get_alias(config.name, PRODUCTION)
        champion_metrics, notes, changed = self._champion(
            config, signature, champion_version, inputs
        )
        metric = config.promotion.metric_for(config.task)
        if changed:
            decision = GateDecision(
                False, metric, config.promotion.greater_is_better(config.task),
                challenger_metrics.get(metric, float("nan")), None, None, (changed,),
            )  # fmt: skip
        else:
            decision = decide(
                config.promotion, config.task, challenger_metrics, champion_metrics, naive_metrics
            )
        return _Evaluation(challenger_metrics, champion_version, champion_metrics, decision, notes)

    def _promote(
        self,
        config: ModelConfig,
        *,
        version: str,
        candidate_id: str,
        evaluation: _Evaluation,
        reasons: tuple[str, ...],
        promote: bool | None,
    ) -> tuple[str, tuple[str, ...]]:
        """The version's final status and reasons, after promoting it if it earned it."""
        decision = evaluation.decision
        if not decision.passed:
            metrics.add_metric(name="CandidateRejected", unit=MetricUnit.Count, value=1)
            return "rejected", reasons
        if not (config.promotion.mode == "auto" if promote is None else promote):
            reasons = (*reasons, "registered as a candidate: promotion is manual")
            self._registry.set_status(config.name, version, "candidate", reasons)
            return "candidate", reasons
        if config.rollout.mode != "direct" and evaluation.champion_version is not None:
            return self._roll_out(config, version, candidate_id, evaluation, reasons)
        try:
            self._registry.promote(
                config.name,
                version,
                expected=evaluation.champion_version,
                actor=f"{self._actor} (candidate {candidate_id})",
                reason=decision.reasons[-1] if decision.reasons else "passed the gate",
            )
        except ConflictError as exc:
            # Another promotion won the race: this candidate was judged against a champion
            # that is no longer in production, so it stays a candidate.
            now = self._registry.get_alias(config.name, PRODUCTION)
            reasons = (
                *reasons,
                f"not promoted: production moved from v{evaluation.champion_version} to v{now} "
                f"while this candidate was judged ({exc.message})",
            )
            self._registry.set_status(config.name, version, "candidate", reasons)
            metrics.add_metric(name="PromotionConflicts", unit=MetricUnit.Count, value=1)
            return "candidate", reasons
        metrics.add_metric(name="CandidatePromoted", unit=MetricUnit.Count, value=1)
        return "production", reasons

    def _roll_out(
        self,
        config: ModelConfig,
        version: str,
        candidate_id: str,
        evaluation: _Evaluation,
        reasons: tuple[str, ...],
    ) -> tuple[str, tuple[str, ...]]:
        """Start a shadow or canary instead of promoting: live traffic decides (DESIGN §6)."""
        rollouts = RolloutService(
            model=config.name,
            store=self._store,
            registry=self._registry,
            actor=f"{self._actor} (candidate {candidate_id})",
        )
        why = evaluation.decision.reasons[-1] if evaluation.decision.reasons else "passed the gate"
        try:
            rollout = rollouts.start(
                version,
                mode=config.rollout.mode,
                percent=config.rollout.canary_percent,
                reason=why,
            )
        except ConflictError as exc:
            reasons = (*reasons, f"not promoted: its rollout could not start ({exc.message})")
            self._registry.set_status(config.name, version, "candidate", reasons)
            metrics.add_metric(name="PromotionConflicts", unit=MetricUnit.Count, value=1)
            return "candidate", reasons
        reasons = (*reasons, f"rollout started: {rollout.describe}")
        self._registry.set_status(config.name, version, "candidate", reasons)
        return "candidate", reasons

    def _staged_files(self, prefix: str, doc: Mapping[str, Any]) -> dict[str, bytes]:
        files = {}
        for name in ("model.onnx", "baseline.json", "parity_inputs.json.gz"):
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

    def _champion(
        self,
        config: ModelConfig,
        signature: Signature,
        version: str | None,
        inputs: ParityInputs,
    ) -> tuple[dict[str, float] | None, tuple[str, ...], str | None]:
        """The production model's metrics on the challenger's holdout, notes for the report,
        and why the challenger is a different model (feature set changed), if it is."""
        if version is None:
            return None, (), None
        try:
            loaded = load_version(self._store, self._registry, config.name, version)
        except (IntegrityError, ModelUnavailableError, NotFoundError) as exc:
            # A broken production model cannot be the bar; StorageError (transient) propagates
            # so the invocation is retried rather than judged without its champion.
            logger.warning("production model cannot be scored", version=version, error=str(exc))
            note = f"production v{version} could not be scored ({exc}); judged as a first model"
            return None, (note,), None
        changed = feature_set_change(loaded.manifest.signature, signature)
        if changed or (loaded.manifest.task, loaded.manifest.target) != (
            config.task,
            config.target,
        ):
            why = changed or "task or target changed"
            return None, (), (
                f"not a new version of {config.name}: its feature set differs from production "
                f"v{version} ({why}); train it under another model name"
            )  # fmt: skip
        scores = loaded.model.score(inputs.holdout.columns)
        return score(config, scores, inputs.holdout_target, loaded.manifest.labels), (), None

    def _manifest(
        self, doc: Mapping[str, Any], version: str, evaluation: _Evaluation
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
            "artifacts": {name: doc["artifacts"][name] for name in ("model.onnx", "baseline.json")},
            "parity": evaluation.parity.as_dict(),
        }

    def _unregistered(
        self,
        doc: Mapping[str, Any],
        reasons: tuple[str, ...],
        report: parity.ParityReport | None,
        started: float,
    ) -> GateResult:
        metrics.add_metric(name="CandidateRejected", unit=MetricUnit.Count, value=1)
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
        key = f"reports/retrain/{now:%Y%m%dT%H%M%SZ}-{name}.json"
        body = {
            "kind": "retrain_decision",
            "at": now.isoformat(timespec="seconds"),
            **result.as_dict(),
            "parity": None if result.parity is None else result.parity.as_dict(),
            "lineage": doc.get("lineage", {}),
            "sklearn_metrics": doc.get("sklearn_metrics", {}),
            "gate_seconds": round(time.perf_counter() - started, 3),
        }
        self._store.put_bytes(key, json.dumps(body, indent=2, default=str).encode())
        logger.info(
            "candidate judged",
            candidate_id=result.candidate_id,
            status=result.status,
            version=result.version,
            reasons=list(result.reasons),
        )
        return GateResult(**{**vars(result), "report_uri": self._store.uri(key)})


def check_parity(
    config: ModelConfig, model: OnnxModel, inputs: ParityInputs
) -> tuple[parity.ParityReport, Scores]:
    """onnxruntime against scikit-learn's stored outputs, case by case; also returns the
    ONNX scores on the holdout for the challenger's metrics."""
    results = []
    holdout_scores: Scores | None = None
    for name, case in inputs.cases.items():
        scores = model.score(case.columns)
        if name == "holdout":
            holdout_scores = scores
        if config.task == "regression":
            results.append(
                parity.compare_case(name, case.expected, np.asarray(scores.values), config.parity)
            )
        else:
            assert scores.probabilities is not None
            results.append(
                parity.compare_case(
                    name,
                    case.expected,
                    scores.probabilities,
                    config.parity,
                    expected_labels=case.expected_labels,
                    actual_labels=np.asarray([str(v) for v in scores.values], dtype=object),
                )
            )
    assert holdout_scores is not None
    return parity.judge(results, config.parity), holdout_scores


def score(
    config: ModelConfig, scores: Scores, target: Any, labels: tuple[str | int, ...]
) -> dict[str, float]:
    if config.task == "regression":
        return regression_metrics(target, scores.values)
    assert scores.probabilities is not None
    return classification_metrics(target, scores.values, scores.probabilities, labels)


def naive_score(
    config: ModelConfig, target: Any, labels: tuple[str | int, ...]
) -> dict[str, float]:
    predicted, probabilities = naive_predictions(config.task, target, labels)
    if config.task == "regression":
        return regression_metrics(target, predicted)
    assert probabilities is not None
    return classification_metrics(target, predicted, probabilities, labels)


def _lineage_summary(doc: Mapping[str, Any], evaluation: _Evaluation) -> dict[str, Any]:
    """The registry's compact copy of the lineage (the manifest has all of it)."""
    lineage = doc.get("lineage", {})
    decision = evaluation.decision
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
        "gate": {
            "metric": decision.metric,
            "challenger": decision.challenger,
            "champion": decision.champion,
            "passed": decision.passed,
        },
        "timings": lineage.get("timings", {}),
    }


def gate_service() -> CandidateGate:
    """Composition root of the candidate gate, built once per container."""
    settings = gate_settings()
    return CandidateGate(
        ModelStore(settings.model_bucket, client("s3")),
        Registry(settings.registry_table, client("dynamodb")),
    )
