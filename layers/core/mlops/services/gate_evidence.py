"""The gate's evidence: the challenger and production scored in the serving runtime.

Parity of the ONNX export with scikit-learn's outputs, both models' metrics and per-row samples
on the new data's holdout, the staged recent-traffic set and production's golden set, and the
label check; ``domain.gate.judge`` turns them into the decision. Imports no scikit-learn.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from mlops.adapters.model_store import ModelStore
from mlops.adapters.registry import PRODUCTION, Registry
from mlops.domain import candidate, parity
from mlops.domain.candidate import ParityInputs
from mlops.domain.comparison import Sample
from mlops.domain.config import ModelConfig
from mlops.domain.gate import GateDecision, RowSet, feature_set_change, judge, not_comparable
from mlops.domain.label_check import check_labels
from mlops.domain.layout import version_prefix
from mlops.domain.metrics import classification_metrics, naive_predictions, regression_metrics
from mlops.domain.schema import Signature
from mlops.domain.scoring import OnnxModel, Scores
from mlops.errors import IntegrityError, ModelUnavailableError, NotFoundError
from mlops.observability import logger
from mlops.services.model_loading import LoadedModel, load_version


@dataclass(frozen=True)
class Evaluation:
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


class GateEvidence:
    """Scores a parity-checked challenger against production (read from ``store`` and
    ``registry``) and judges it."""

    def __init__(self, store: ModelStore, registry: Registry) -> None:
        self._store = store
        self._registry = registry

    def evaluate(
        self,
        config: ModelConfig,
        signature: Signature,
        labels: tuple[str | int, ...],
        inputs: ParityInputs,
        *,
        holdout_scores: Scores,
        challenger: OnnxModel,
        reference: candidate.LabeledRows | None,
    ) -> Evaluation:
        task, policy = config.task, config.promotion
        metric = policy.metric_for(task)
        target = inputs.holdout_target
        challenger_metrics = score(config, holdout_scores, target, labels)
        naive_metrics = naive_score(config, target, labels)
        champion_version = self._registry.get_alias(config.name, PRODUCTION)
        champion, notes, changed = self._champion(config, signature, champion_version, inputs)
        if changed:
            decision = not_comparable(policy, task, challenger_metrics, changed)
            return Evaluation(challenger_metrics, champion_version, None, decision, notes)
        mine = outputs_sample(config, holdout_scores, target, labels)
        if champion is None:
            predicted, probabilities = naive_predictions(task, target, labels)
            naive = Sample.of_outputs(metric, list(predicted), list(target), probabilities, labels)
            holdout = RowSet("no_skill", naive, mine)
            decision = judge(
                policy, task, challenger=challenger_metrics, champion=None,
                naive=naive_metrics, holdout=holdout, classes=labels,
            )  # fmt: skip
            return Evaluation(challenger_metrics, champion_version, None, decision, notes)
        theirs = outputs_sample(config, champion.scores, target, champion.loaded.manifest.labels)
        holdout = RowSet("holdout", theirs, mine, "a random share of the upload")
        references = []
        if reference is not None:
            references.append(
                _row_set(
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
                _row_set(
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
        return Evaluation(challenger_metrics, champion_version, champion.metrics, decision, notes)

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


def _row_set(
    name: str,
    rows: candidate.LabeledRows,
    *,
    config: ModelConfig,
    challenger: OnnxModel,
    labels: tuple[str | int, ...],
    champion: _Champion,
) -> RowSet:
    """Both models' answers on ``rows`` (the champion with its own classes)."""
    mine = outputs_sample(config, challenger.score(rows.columns), rows.target, labels)
    theirs_scores = champion.loaded.model.score(rows.columns) if rows.rows else Scores([])
    theirs = outputs_sample(config, theirs_scores, rows.target, champion.loaded.manifest.labels)
    return RowSet(name, theirs, mine, rows.source)


def staged_reference(
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


def outputs_sample(
    config: ModelConfig, scores: Scores, target: Any, labels: tuple[str | int, ...]
) -> Sample:
    """A model's answers on labeled rows as the paired comparison reads them."""
    metric = config.promotion.metric_for(config.task)
    return Sample.of_outputs(
        metric, list(scores.values), list(target), scores.probabilities, labels
    )
