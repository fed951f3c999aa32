"""Build a challenger and stage it for the gate: validate, train, export, baseline.

Runs where scikit-learn lives (the retrainer, the CLI) and imports no onnxruntime: the
retrainer's layers leave no room for it. Everything the gate needs to check the export in the
serving runtime goes to ``staging/`` (see ``mlops.domain.candidate``).
"""

from __future__ import annotations

import hashlib
import json
import platform
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from mlops.domain import baseline, candidate, parity
from mlops.domain.config import ModelConfig
from mlops.domain.config_document import estimator_document, to_document
from mlops.domain.dataset import Dataset
from mlops.domain.estimate import LOSS_MODEL
from mlops.domain.export import to_onnx_bytes
from mlops.domain.layout import staging_prefix
from mlops.domain.loss_model import estimate_section
from mlops.domain.model_code import code_digest
from mlops.domain.schema import Signature
from mlops.domain.training import TrainedModel, train, without_rows_of

LIBRARIES = ("scikit-learn", "skl2onnx", "onnx", "onnxruntime", "numpy", "protobuf")


@dataclass(frozen=True)
class DataSource:
    """One object the candidate learned from, for lineage."""

    uri: str
    sha256: str
    rows: int
    role: str  # "new" (holdout drawn from it), "window", "labeled_traffic"
    version_id: str | None = None
    etag: str | None = None
    report_uri: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self).items() if v is not None}


@dataclass(frozen=True)
class StagedCandidate:
    model: str
    candidate_id: str
    prefix: str
    metrics: dict[str, float]  # scikit-learn's on the holdout (the gate measures ONNX's)
    train_rows: int
    holdout_rows: int
    candidate_sha256: str = ""  # of candidate.json, which names every other file's sha256
    timings: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "candidate_id": self.candidate_id,
            "candidate_sha256": self.candidate_sha256,
            "prefix": self.prefix,
            "metrics": self.metrics,
            "train_rows": self.train_rows,
            "holdout_rows": self.holdout_rows,
            "timings": self.timings,
        }


class StagingWriter(Protocol):
    """Where a candidate is staged: S3 (``ModelStore``) or a training job's model folder."""

    def put_bytes(self, key: str, body: bytes, *, immutable: bool = False) -> None: ...


def new_candidate_id(now: datetime) -> str:
    """Sortable by time, unique without coordination."""
    return f"{now:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"


class CandidateBuilder:
    def __init__(
        self,
        store: StagingWriter,
        code_version: str,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        model_code: Path | None = None,
    ) -> None:
        """``model_code``: the folder of the config's ``[estimator] factory`` in this process
        (the retrainer: the ``ModelCodeLayer``; the CLI: ``code`` next to the config)."""
        self._store = store
        self._code_version = code_version
        self._clock = clock
        self._model_code = model_code

    def build(
        self,
        config: ModelConfig,
        new_data: Dataset,
        sources: Sequence[DataSource],
        *,
        extra: Dataset | None = None,
        reference: candidate.LabeledRows | None = None,
        trigger: Mapping[str, Any] | None = None,
        timings: Mapping[str, float] | None = None,
    ) -> StagedCandidate:
        """Train on ``new_data`` (+ ``extra``), export, and stage everything the gate needs.
        The holdout is drawn from ``new_data``. ``sources[0]`` describes ``new_data``.
        ``reference``: recent labeled traffic for the gate; its rows the challenger was
        trained on are left out (they would make it look better than it is)."""
        spent = dict(timings or {})
        started = time.perf_counter()
        trained = train(config, new_data, extra, self._model_code)
        spent["fit_s"] = time.perf_counter() - started

        started = time.perf_counter()
        model_bytes = to_onnx_bytes(trained.pipeline, config)
        spent["export_s"] = time.perf_counter() - started

        started = time.perf_counter()
        signature = signature_from_training(config, trained.train)
        inputs = parity_inputs(config, trained)
        baseline_doc = baseline.build_baseline(
            config.features,
            trained.train.columns,
            # scikit-learn's predictions stand for ONNX's here: the gate refuses the export
            # unless they agree within the parity tolerance.
            _values(inputs.holdout),
            task=config.task,
            metrics=trained.metrics,
            bins=config.training.baseline_bins,
        )
        spent["stage_s"] = time.perf_counter() - started
        started = time.perf_counter()
        # Quality estimates before labels: CBPE's calibration or DLE's loss model (the gate
        # checks both; the logger reads them through the baseline).
        estimate_doc, loss_model = estimate_section(trained, config)
        if estimate_doc is not None:
            baseline_doc["estimate"] = estimate_doc
        extra_files = [] if loss_model is None else [(LOSS_MODEL, loss_model.onnx)]
        spent["estimate_s"] = time.perf_counter() - started
        started = time.perf_counter()
        baseline_bytes = _json_bytes(baseline_doc)
        inputs_bytes = candidate.encode_parity_inputs(inputs)
        unseen = unseen_reference(config, reference, trained.train)
        reference_bytes = candidate.encode_rows(unseen)
        spent["stage_s"] += time.perf_counter() - started

        now = self._clock()
        candidate_id = new_candidate_id(now)
        prefix = staging_prefix(config.name, candidate_id)
        doc = {
            "schema_version": candidate.SCHEMA_VERSION,
            "candidate_id": candidate_id,
            "model_name": config.name,
            "task": config.task,
            "target": config.target,
            "created_at": now.isoformat(timespec="seconds"),
            "config": to_document(config),
            "signature": signature.as_dict(),
            "classes": list(trained.classes),
            "sklearn_metrics": trained.metrics,
            "estimator": estimator_document(config),
            "lineage": {
                "data": [s.as_dict() for s in sources],
                "train_rows": trained.train.rows,
                "holdout_rows": trained.holdout.rows,
                "overlap_rows_dropped": trained.overlap_rows,
                "reference_rows": unseen.rows,
                "reference_rows_trained_on": 0
                if reference is None
                else reference.rows - unseen.rows,
                "trigger": dict(trigger or {}),
                "code_version": self._code_version,
                **self._model_code_lineage(config),
                "config_sha256": _sha256(json.dumps(to_document(config), sort_keys=True).encode()),
                "timings": {k: round(v, 3) for k, v in spent.items()},
            },
            "libraries": {"python": platform.python_version()}
            | {name: _version(name) for name in LIBRARIES},
            "artifacts": {
                name: {"sha256": _sha256(body), "bytes": len(body)}
                for name, body in (
                    ("model.onnx", model_bytes),
                    ("baseline.json", baseline_bytes),
                    ("parity_inputs.json.gz", inputs_bytes),
                    (candidate.REFERENCE, reference_bytes),
                    *extra_files,
                )
            },
        }
        if loss_model is not None:  # scikit-learn's answers, for the gate's parity check
            doc["loss_model"] = {"holdout_estimates": loss_model.holdout_estimates.tolist()}
        started = time.perf_counter()
        candidate_bytes = _json_bytes(doc)
        for name, body in (
            ("model.onnx", model_bytes),
            ("baseline.json", baseline_bytes),
            ("parity_inputs.json.gz", inputs_bytes),
            (candidate.REFERENCE, reference_bytes),
            *extra_files,
            ("candidate.json", candidate_bytes),  # last: its presence means complete
        ):
            self._store.put_bytes(prefix + name, body, immutable=True)
        spent["upload_s"] = time.perf_counter() - started
        return StagedCandidate(
            model=config.name,
            candidate_id=candidate_id,
            prefix=prefix,
            metrics=trained.metrics,
            train_rows=trained.train.rows,
            holdout_rows=trained.holdout.rows,
            candidate_sha256=_sha256(candidate_bytes),
            timings={k: round(v, 3) for k, v in spent.items()},
        )

    def _model_code_lineage(self, config: ModelConfig) -> dict[str, Any]:
        """The user's code a factory's model was built with: its folder's digest."""
        if not config.estimator.factory:
            return {}
        lineage: dict[str, Any] = {"factory": config.estimator.factory, "sha256": None}
        if self._model_code is not None:
            lineage |= {"folder": str(self._model_code)} | code_digest(self._model_code).as_dict()
        return {"model_code": lineage}


def signature_from_training(config: ModelConfig, train_set: Dataset) -> Signature:
    """The config's features with the categories actually seen in training."""
    features = []
    for feature in config.features:
        if feature.type == "categorical":
            seen = tuple(sorted({str(v) for v in train_set.columns[feature.name]}))
            features.append(replace(feature, categories=seen))
        else:
            features.append(feature)
    return Signature(tuple(features))


def unseen_reference(
    config: ModelConfig, reference: candidate.LabeledRows | None, train_set: Dataset
) -> candidate.LabeledRows:
    """The reference rows the challenger was not trained on (empty when there are none)."""
    if reference is None or reference.rows == 0:
        empty = {
            f.name: np.empty(0, dtype=train_set.columns[f.name].dtype) for f in config.features
        }
        return candidate.LabeledRows(empty, np.empty(0, dtype=train_set.target.dtype), "")
    as_data = Dataset(dict(reference.columns), reference.target, reference.rows, "")
    kept = without_rows_of(as_data, train_set)
    return candidate.LabeledRows(kept.columns, kept.target, reference.source)


def parity_inputs(config: ModelConfig, trained: TrainedModel) -> candidate.ParityInputs:
    """The holdout and the edge cases, with scikit-learn's outputs on every row."""
    sample_size = min(trained.holdout.rows, 200)
    sample = {k: v[:sample_size] for k, v in trained.holdout.columns.items()}
    cases = {"holdout": trained.holdout.columns} | parity.edge_cases(
        config.features, trained.train.columns, sample
    )
    out = {}
    for name, columns in cases.items():
        matrix = np.column_stack([columns[n].astype(object) for n in config.feature_names])
        if config.task == "regression":
            out[name] = candidate.ParityCaseInput(
                columns=dict(columns), expected=trained.pipeline.predict(matrix)
            )
        else:
            out[name] = candidate.ParityCaseInput(
                columns=dict(columns),
                expected=trained.pipeline.predict_proba(matrix),
                expected_labels=np.asarray(trained.pipeline.predict(matrix), dtype=object),
            )
    return candidate.ParityInputs(out, trained.holdout.target)


def _values(case: candidate.ParityCaseInput) -> Any:
    if case.expected_labels is None:
        return np.asarray(case.expected)
    return case.expected_labels


def _json_bytes(doc: Any) -> bytes:
    return json.dumps(doc, indent=2).encode()


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None
