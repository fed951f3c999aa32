"""Train, export, gate and register a model version (the use case behind ``mlops train``
and, later, the retrainer)."""

from __future__ import annotations

import hashlib
import json
import platform
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from importlib import metadata
from typing import Any

import numpy as np
import numpy.typing as npt

from mlops.adapters.model_store import ModelStore
from mlops.adapters.registry import Registry, VersionRecord
from mlops.domain import baseline, manifest, parity
from mlops.domain.config import ModelConfig
from mlops.domain.dataset import Dataset, parse_csv
from mlops.domain.export import to_onnx_bytes
from mlops.domain.schema import Signature
from mlops.domain.scoring import OnnxModel
from mlops.domain.training import TrainedModel, train
from mlops.errors import ParityError, Problem
from mlops.services import promotion

LIBRARIES = ("scikit-learn", "skl2onnx", "onnx", "onnxruntime", "numpy", "protobuf")
PRODUCTION = "production"


@dataclass(frozen=True)
class TrainingResult:
    version: str
    promoted: bool
    metrics: dict[str, float]
    parity: parity.ParityReport
    manifest: dict[str, Any]


class TrainingService:
    def __init__(self, store: ModelStore, registry: Registry, code_version: str) -> None:
        self._store = store
        self._registry = registry
        self._code_version = code_version

    def train_and_register(
        self,
        config: ModelConfig,
        data: bytes,
        data_uri: str,
        *,
        promote: bool = True,
    ) -> TrainingResult:
        """Validate ``data``, train, export to ONNX and register it only if parity holds.

        Raises ``DataValidationError`` (nothing trained) or ``ParityError`` (nothing
        registered). With ``promote`` the production alias moves to the new version with a
        conditional write.
        """
        dataset = parse_csv(data, config)
        trained = train(config, dataset)
        model_bytes = to_onnx_bytes(trained.pipeline, config)
        signature = signature_from_training(config, trained.train)
        onnx_model = OnnxModel(model_bytes, signature, config.task, trained.classes)
        report = check_parity(config, trained, onnx_model)
        if not report.passed:
            raise ParityError(
                f"ONNX export failed the parity gate: {report.summary()}",
                [
                    Problem(c.name, f"{c.mismatches} of {c.rows} rows outside tolerance")
                    for c in report.cases
                    if c.mismatches
                ],
            )
        holdout_scores = onnx_model.score(trained.holdout.columns).values
        baseline_doc = baseline.build_baseline(
            config.features,
            trained.train.columns,
            np.asarray(holdout_scores),
            task=config.task,
            metrics=trained.metrics,
            bins=config.training.baseline_bins,
        )
        version = self._registry.next_version(config.name)
        parent = self._registry.get_alias(config.name, PRODUCTION)
        baseline_bytes = _json_bytes(baseline_doc)
        manifest_doc = self._manifest(
            config,
            version=version,
            parent=parent,
            signature=signature,
            trained=trained,
            dataset=dataset,
            data_uri=data_uri,
            model_bytes=model_bytes,
            baseline_bytes=baseline_bytes,
            report=report,
        )
        prefix = self._store.put_version(
            config.name,
            version,
            {
                "model.onnx": model_bytes,
                "baseline.json": baseline_bytes,
                "manifest.json": _json_bytes(manifest_doc),
            },
        )
        self._registry.put_version(
            VersionRecord(
                model=config.name,
                version=version,
                created_at=manifest_doc["created_at"],
                manifest_key=prefix + "manifest.json",
                model_sha256=manifest_doc["artifacts"]["model.onnx"]["sha256"],
                metrics=trained.metrics,
                status="registered",
            )
        )
        promoted = False
        if promote:
            self._registry.move_alias(config.name, PRODUCTION, version, expected=parent)
            promoted = True
        return TrainingResult(version, promoted, trained.metrics, report, manifest_doc)

    def promote(self, model: str, version: str, alias: str = PRODUCTION) -> str | None:
        """Point ``alias`` at an existing ``version``; returns the version it pointed at."""
        return promotion.promote(self._registry, model, version, alias)

    def _manifest(
        self,
        config: ModelConfig,
        *,
        version: str,
        parent: str | None,
        signature: Signature,
        trained: TrainedModel,
        dataset: Dataset,
        data_uri: str,
        model_bytes: bytes,
        baseline_bytes: bytes,
        report: parity.ParityReport,
    ) -> dict[str, Any]:
        return {
            "schema_version": manifest.SCHEMA_VERSION,
            "model_name": config.name,
            "version": version,
            "task": config.task,
            "target": config.target,
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "signature": signature.as_dict(),
            "classes": manifest.typed_labels(trained.classes),
            "outputs": ["label", "probabilities"]
            if config.task == "classification"
            else ["variable"],
            "metrics": trained.metrics,
            "estimator": {"type": config.estimator.type, "params": dict(config.estimator.params)},
            "lineage": {
                "data": {"uri": data_uri, "sha256": dataset.sha256, "rows": dataset.rows},
                "train_rows": trained.train.rows,
                "holdout_rows": trained.holdout.rows,
                "parent_version": parent,
                "code_version": self._code_version,
                "config_sha256": _sha256(json.dumps(_config_doc(config), sort_keys=True).encode()),
            },
            "libraries": {"python": platform.python_version()}
            | {name: _version(name) for name in LIBRARIES},
            "artifacts": {
                "model.onnx": {"sha256": _sha256(model_bytes), "bytes": len(model_bytes)},
                "baseline.json": {"sha256": _sha256(baseline_bytes), "bytes": len(baseline_bytes)},
            },
            "parity": report.as_dict(),
        }


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


def check_parity(
    config: ModelConfig, trained: TrainedModel, onnx_model: OnnxModel
) -> parity.ParityReport:
    """onnxruntime vs scikit-learn on the holdout and on edge cases."""
    sample_size = min(trained.holdout.rows, 200)
    sample = {k: v[:sample_size] for k, v in trained.holdout.columns.items()}
    cases = {"holdout": trained.holdout.columns} | parity.edge_cases(
        config.features, trained.train.columns, sample
    )
    results = []
    for name, columns in cases.items():
        matrix = np.column_stack([columns[n].astype(object) for n in config.feature_names])
        onnx_scores = onnx_model.score(columns)
        if config.task == "regression":
            expected: npt.NDArray[Any] = trained.pipeline.predict(matrix)
            results.append(
                parity.compare_case(name, expected, np.asarray(onnx_scores.values), config.parity)
            )
        else:
            assert onnx_scores.probabilities is not None
            results.append(
                parity.compare_case(
                    name,
                    trained.pipeline.predict_proba(matrix),
                    onnx_scores.probabilities,
                    config.parity,
                    expected_labels=trained.pipeline.predict(matrix),
                    actual_labels=np.asarray(onnx_scores.values),
                )
            )
    return parity.judge(results, config.parity)


def _config_doc(config: ModelConfig) -> dict[str, Any]:
    return {
        "name": config.name,
        "task": config.task,
        "target": config.target,
        "features": [f.as_dict() for f in config.features],
        "estimator": {"type": config.estimator.type, "params": dict(config.estimator.params)},
    }


def _json_bytes(doc: Any) -> bytes:
    return json.dumps(doc, indent=2, sort_keys=False).encode()


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None
