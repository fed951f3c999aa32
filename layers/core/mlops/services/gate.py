"""Judge a staged challenger in the serving runtime: parity, champion/challenger, register.

Runs where onnxruntime lives (the candidate gate function, the CLI) and imports no
scikit-learn. The challenger and the production model are scored with onnxruntime, the engine
that will serve them, on the same holdout drawn from the new data.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import numpy as np

from mlops.adapters.aws import client
from mlops.adapters.model_store import ModelStore, version_prefix
from mlops.adapters.registry import CANDIDATE, PRODUCTION, Registry, VersionRecord
from mlops.domain import candidate, manifest, parity, strict_json
from mlops.domain.candidate import ParityInputs
from mlops.domain.comparison import Sample
from mlops.domain.config import ModelConfig, parse_config
from mlops.domain.gate import (
    HELD,
    INCONCLUSIVE,
    PASSED,
    REJECTED,
    GateDecision,
    RowSet,
    check_labels,
    feature_set_change,
    judge,
)
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
from mlops.services.model_loading import LoadedModel, load_version
from mlops.services.rollout import RolloutService
from mlops.settings import gate_settings

# What each outcome is registered as (a held version may only run as a shadow).
_REGISTERED_AS = {PASSED: CANDIDATE, INCONCLUSIVE: CANDIDATE, HELD: HELD, REJECTED: REJECTED}
# Reasons the gate adds once a candidate's fate is settled (a retry must not act again).
_SETTLED = ("not promoted:", "registered as ", "rollout started:")


@dataclass(frozen=True)
class _Evaluation:
    metrics: dict[str, float]  # the challenger's, ONNX on the holdout
    champion_version: str | None
    champion_metrics: dict[str, float] | None
    decision: GateDecision
    notes: tuple[str, ...]
    parity: parity.ParityReport | None = None


@dataclass(frozen=True)
class _Champion:
    """Production, loaded in the serving runtime, and its answers on the holdout."""

    loaded: LoadedModel
    scores: Scores
    metrics: dict[str, float]


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
        notes: list[str] = []
        reference = self._reference(files, signature, config, notes)
        evaluation = self._evaluate(
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
        status, reasons = self._promote(
            config,
            version=version,
            candidate_id=candidate_id,
            outcome=decision.verdict,
            champion_version=evaluation.champion_version,
            champion_scored=evaluation.champion_metrics is not None,
            why=decision.reasons[-1] if decision.reasons else "passed the gate",
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
        lineage = dict(record.lineage)
        gate = lineage.get("gate") or {}
        champion = (lineage.get("champion") or {}).get("version")
        status, reasons = record.status, tuple(record.reasons)
        settled = any(r.startswith(_SETTLED) for r in reasons)
        outcome = gate.get("outcome") or (PASSED if gate.get("passed") else REJECTED)
        if status in (CANDIDATE, HELD) and outcome != REJECTED and not settled:
            status, reasons = self._promote(
                config,
                version=version,
                candidate_id=str(doc["candidate_id"]),
                outcome=outcome,
                champion_version=champion,
                champion_scored=bool((lineage.get("champion") or {}).get("metrics")),
                why=reasons[-1] if reasons else "passed the gate",
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
        *,
        holdout_scores: Scores,
        challenger: OnnxModel,
        reference: candidate.LabeledRows | None,
    ) -> _Evaluation:
        task, policy = config.task, config.promotion
        metric = policy.metric_for(task)
        target = inputs.holdout_target
        challenger_metrics = score(config, holdout_scores, target, labels)
        naive_metrics = naive_score(config, target, labels)
        champion_version = self._registry.get_alias(config.name, PRODUCTION)
        champion, notes, changed = self._champion(config, signature, champion_version, inputs)
        if changed:
            decision = GateDecision(
                False, metric, policy.greater_is_better(task),
                challenger_metrics.get(metric, float("nan")), None, None, (changed,),
                outcome=REJECTED,
            )  # fmt: skip
            return _Evaluation(challenger_metrics, champion_version, None, decision, notes)
        mine = _sample(config, holdout_scores, target, labels)
        if champion is None:
            predicted, probabilities = naive_predictions(task, target, labels)
            naive = Sample.of_outputs(metric, list(predicted), list(target), probabilities, labels)
            holdout = RowSet("no_skill", naive, mine)
            decision = judge(
                policy, task, challenger=challenger_metrics, champion=None,
                naive=naive_metrics, holdout=holdout, classes=labels,
            )  # fmt: skip
            return _Evaluation(challenger_metrics, champion_version, None, decision, notes)
        theirs = _sample(config, champion.scores, target, champion.loaded.manifest.labels)
        holdout = RowSet("holdout", theirs, mine, "a random share of the upload")
        references = []
        if reference is not None:
            references.append(
                self._row_set(
                    "traffic",
                    reference,
                    config=config,
                    challenger=challenger,
                    labels=labels,
                    champion=champion,
                )
            )
        golden, note = self._golden(config, signature, champion)
        if note:
            notes = (*notes, note)
        if golden is not None:
            references.append(
                self._row_set(
                    "golden",
                    golden,
                    config=config,
                    challenger=challenger,
                    labels=labels,
                    champion=champion,
                )
            )
        label_check = check_labels(
            task,
            champion.scores.values,
            target,
            champion.loaded.manifest.metrics,
            policy.max_label_error_ratio,
        )
        decision = judge(
            policy, task, challenger=challenger_metrics, champion=champion.metrics,
            naive=naive_metrics, holdout=holdout, references=references,
            label_check=label_check, classes=labels,
        )  # fmt: skip
        return _Evaluation(challenger_metrics, champion_version, champion.metrics, decision, notes)

    def _row_set(
        self,
        name: str,
        rows: candidate.LabeledRows,
        *,
        config: ModelConfig,
        challenger: OnnxModel,
        labels: tuple[str | int, ...],
        champion: _Champion,
    ) -> RowSet:
        """Both models' answers on ``rows`` (the champion with its own classes)."""
        mine = _sample(config, challenger.score(rows.columns), rows.target, labels)
        theirs_scores = champion.loaded.model.score(rows.columns) if rows.rows else Scores([])
        theirs = _sample(config, theirs_scores, rows.target, champion.loaded.manifest.labels)
        return RowSet(name, theirs, mine, rows.source)

    def _reference(
        self,
        files: Mapping[str, bytes],
        signature: Signature,
        config: ModelConfig,
        notes: list[str],
    ) -> candidate.LabeledRows | None:
        """The staged recent-traffic set (None: staged before reference sets, or unreadable,
        which the report says)."""
        body = files.get(candidate.REFERENCE)
        if body is None:
            notes.append("no recent-traffic set was staged with this candidate")
            return None
        try:
            return candidate.decode_rows(body, signature.features, config.task)
        except (ValueError, KeyError, TypeError, OSError) as exc:
            notes.append(f"the staged recent-traffic set is unreadable ({exc!r}): not used")
            return None

    def _golden(
        self, config: ModelConfig, signature: Signature, champion: _Champion
    ) -> tuple[candidate.LabeledRows | None, str | None]:
        """Production's golden set, if it has one whose bytes its manifest names."""
        version = champion.loaded.version
        prefix = version_prefix(config.name, version)
        try:  # the manifest load_version read and checked against the registry
            expected = champion.loaded.manifest.raw["artifacts"][candidate.GOLDEN]["sha256"]
        except (KeyError, TypeError):
            return None, f"production v{version} has no golden set (registered before them)"
        try:
            body = self._store.get_bytes(prefix + candidate.GOLDEN)
        except NotFoundError:
            return None, f"production v{version}'s golden set is missing: not used"
        if hashlib.sha256(body).hexdigest() != expected:
            return (
                None,
                f"production v{version}'s golden set changed after it was written: not used",
            )
        try:
            rows = candidate.decode_rows(body, signature.features, config.task)
        except (ValueError, KeyError, TypeError, OSError) as exc:
            return None, f"production v{version}'s golden set is unreadable ({exc!r}): not used"
        source = f"pinned with production v{version} (its holdout)"
        return replace(rows, source=source), None

    def _promote(
        self,
        config: ModelConfig,
        *,
        version: str,
        candidate_id: str,
        outcome: str,
        champion_version: str | None,
        champion_scored: bool,
        why: str,
        reasons: tuple[str, ...],
        promote: bool | None,
    ) -> tuple[str, tuple[str, ...]]:
        """The version's final status and reasons, after promoting it or starting its
        rollout as its outcome allows. A production model that could not be scored (it does
        not load) is replaced directly: a rollout would compare with a model not serving."""
        if outcome == REJECTED:
            metrics.add_metric(name="CandidateRejected", unit=MetricUnit.Count, value=1)
            return REJECTED, reasons
        status = HELD if outcome == HELD else CANDIDATE
        if outcome == HELD:
            metrics.add_metric(name="CandidateHeld", unit=MetricUnit.Count, value=1)
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
            metrics.add_metric(name="PromotionConflicts", unit=MetricUnit.Count, value=1)
            return CANDIDATE, reasons
        metrics.add_metric(name="CandidatePromoted", unit=MetricUnit.Count, value=1)
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
                percent=config.rollout.canary_percent,
                reason=why,
                against=against,
            )
        except ConflictError as exc:
            reasons = (*reasons, f"not promoted: its rollout could not start ({exc.message})")
            self._registry.set_status(config.name, version, status, reasons)
            metrics.add_metric(name="PromotionConflicts", unit=MetricUnit.Count, value=1)
            return status, reasons
        reasons = (*reasons, f"rollout started: {rollout.describe}")
        self._registry.set_status(config.name, version, status, reasons)
        return status, reasons

    def _staged_files(self, prefix: str, doc: Mapping[str, Any]) -> dict[str, bytes]:
        files = {}
        names = ["model.onnx", "baseline.json", "parity_inputs.json.gz"]
        if candidate.REFERENCE in doc["artifacts"]:  # staged before reference sets: none
            names.append(candidate.REFERENCE)
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

    def _champion(
        self,
        config: ModelConfig,
        signature: Signature,
        version: str | None,
        inputs: ParityInputs,
    ) -> tuple[_Champion | None, tuple[str, ...], str | None]:
        """Production, scored on the challenger's holdout; notes for the report; and why the
        challenger is a different model (feature set changed), if it is."""
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
        measured = score(config, scores, inputs.holdout_target, loaded.manifest.labels)
        metric = config.promotion.metric_for(config.task)
        if math.isnan(measured.get(metric, math.nan)):
            note = f"production v{version} has no {metric} on the holdout: judged as a first model"
            return None, (note,), None
        return _Champion(loaded, scores, measured), (), None

    def _manifest(
        self, doc: Mapping[str, Any], version: str, evaluation: _Evaluation, golden: bytes
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
            "artifacts": {name: doc["artifacts"][name] for name in ("model.onnx", "baseline.json")}
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
        self._store.put_bytes(key, strict_json.dumps(body).encode())
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


def _sample(
    config: ModelConfig, scores: Scores, target: Any, labels: tuple[str | int, ...]
) -> Sample:
    metric = config.promotion.metric_for(config.task)
    return Sample.of_outputs(
        metric, list(scores.values), list(target), scores.probabilities, labels
    )


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
            "outcome": decision.verdict,
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
