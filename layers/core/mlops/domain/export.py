"""Export a fitted pipeline to ONNX with skl2onnx, one input per feature.

Numeric inputs are float64 ``(n, 1)`` and categorical inputs are strings ``(n, 1)``, so the
serving side feeds JSON values without a DataFrame and without a lossy client-side cast.
"""

from __future__ import annotations

from typing import Any

from skl2onnx import convert_sklearn
from skl2onnx.common.data_types import DoubleTensorType, StringTensorType
from sklearn.pipeline import Pipeline

from mlops.domain.config import ModelConfig

# ai.onnx.ml 3 is what onnxruntime's tree kernels implement for these ops.
TARGET_OPSET = {"": 17, "ai.onnx.ml": 3}


def to_onnx_bytes(pipeline: Pipeline, config: ModelConfig) -> bytes:
    inputs: list[tuple[str, Any]] = [
        (
            f.name,
            DoubleTensorType([None, 1]) if f.type == "numeric" else StringTensorType([None, 1]),
        )
        for f in config.features
    ]
    options: dict[Any, Any] = {}
    if config.task == "classification":
        # A plain probability tensor instead of a list of dicts (ZipMap): cheaper to run and read.
        options[id(pipeline.steps[-1][1])] = {"zipmap": False}
    model = convert_sklearn(
        pipeline,
        name=config.name,
        initial_types=inputs,
        target_opset=TARGET_OPSET,
        options=options or None,
    )
    model.doc_string = f"{config.name}: {config.task} on {', '.join(config.feature_names)}"
    return bytes(model.SerializeToString())
