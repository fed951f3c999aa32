"""The baseline the inference benchmark compares with: the *same* handler
(functions/inference/app.py, same routes, validation, logging, metrics, registry lookup), but
the model is the scikit-learn pipeline pickled with joblib and loaded from S3, the way most
Lambda ML samples serve it. Only the model runtime differs. Benchmark-only; never deployed.

Loading this file installs the joblib provider, then imports the real handler module.
"""

from __future__ import annotations

import importlib.util
import io
import os
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import numpy.typing as npt

from mlops import bootstrap
from mlops.adapters.aws import client
from mlops.adapters.model_store import ModelStore
from mlops.adapters.registry import Registry
from mlops.domain.layout import version_prefix
from mlops.domain.manifest import Manifest
from mlops.domain.schema import Signature
from mlops.domain.scoring import Scores
from mlops.services.inference import InferenceService
from mlops.services.model_loading import LoadedModel
from mlops.services.model_provider import ModelProvider
from mlops.settings import inference_settings

APP = Path(__file__).resolve().parent.parent / "functions" / "inference" / "app.py"


class SklearnModel:
    """Scores like ``OnnxModel`` but with the fitted pipeline."""

    def __init__(self, pipeline: Any, signature: Signature) -> None:
        self._pipeline = pipeline
        self.signature = signature

    def score(self, columns: dict[str, npt.NDArray[Any]]) -> Scores:
        matrix = np.column_stack([columns[n].ravel().astype(object) for n in self.signature.names])
        return Scores(values=[float(p) for p in self._pipeline.predict(matrix)])


class JoblibProvider(ModelProvider):
    def _load(self, version: str) -> LoadedModel:
        manifest = Manifest.from_dict(
            self._store.get_json(version_prefix(self.model_name, version) + "manifest.json")
        )
        pipeline = joblib.load(io.BytesIO(self._store.get_bytes(os.environ["SKLEARN_MODEL_KEY"])))
        return LoadedModel(manifest, SklearnModel(pipeline, manifest.signature))  # type: ignore[arg-type]


def joblib_service() -> InferenceService:
    settings = inference_settings()
    provider = JoblibProvider(
        settings.model_name,
        settings.model_alias,
        registry=Registry(settings.registry_table, client("dynamodb")),
        store=ModelStore(settings.model_bucket, client("s3")),
        refresh_seconds=settings.alias_refresh_seconds,
    )
    return InferenceService(provider, max_instances=settings.max_instances)


_onnx_service = bootstrap.inference_service
bootstrap.inference_service = joblib_service  # type: ignore[assignment]
try:
    _spec = importlib.util.spec_from_file_location("inference_app_with_joblib", APP)
    assert _spec is not None
    assert _spec.loader is not None
    _app = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(_app)
finally:  # the real handler in this process keeps its ONNX service
    bootstrap.inference_service = _onnx_service  # type: ignore[method-assign]
service = _app.service
lambda_handler = _app.lambda_handler
