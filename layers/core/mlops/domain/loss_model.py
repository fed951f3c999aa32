"""DLE's loss model and CBPE's calibration, fitted at training on the holdout.

Only the retrainer and the CLI import this module (scikit-learn, skl2onnx); the logger scores
the exported loss model with onnxruntime (``domain.loss_scoring``) and the evaluator reads
sums (``domain.estimate``).

The loss model predicts the absolute error of the served model from the features and the
model's prediction. It is fitted on the **holdout**, whose errors the served model did not
see in training (its in-sample residuals would be too small). Its constants (how its
estimates scale to MAE, MSE and, divided by the prediction, MAPE; how far single rows stray)
come from **cross-fitting**: ``FOLDS`` models, each fitted on the other folds, predict the
fold left out, so they are measured on errors they were not fitted on either. The exported
model is then fitted on the whole holdout. A holdout under ``MIN_ROWS`` rows gets no loss
model (no estimate).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from skl2onnx import convert_sklearn
from skl2onnx.common.data_types import DoubleTensorType, StringTensorType
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import GradientBoostingRegressor
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder

from mlops.domain.config import ModelConfig
from mlops.domain.estimate import Calibration, LossModelSpec, fit_calibration, loss_constants
from mlops.domain.export import TARGET_OPSET
from mlops.domain.input_names import input_name
from mlops.domain.model_code import with_float32_cast
from mlops.domain.training import TrainedModel, floor_thresholds_to_float32

FOLDS = 5
MIN_ROWS = 100
SEED = 20261207
PREDICTION_INPUT = "mlops_prediction"
# Small on purpose: a few hundred holdout rows, fitted FOLDS + 1 times in the retrainer
# (milliseconds each; a histogram booster spends ~0.2 s a fit in its setup), and scored by the
# logger on every captured row.
LOSS_PARAMS: dict[str, Any] = {
    "n_estimators": 40,
    "max_depth": 3,
    "learning_rate": 0.1,
    "min_samples_leaf": 20,
    "random_state": SEED,
}


@dataclass(frozen=True)
class FittedLossModel:
    onnx: bytes
    spec: LossModelSpec
    holdout_estimates: npt.NDArray[np.float64]  # scikit-learn's, for the gate's parity check


def prediction_input(config: ModelConfig) -> str:
    """The loss model's input for the served prediction: a name no feature's input has."""
    taken = {input_name(f.name) for f in config.features}
    name = PREDICTION_INPUT
    while name in taken:
        name += "_"
    return name


def estimate_section(
    trained: TrainedModel, config: ModelConfig
) -> tuple[dict[str, Any] | None, FittedLossModel | None]:
    """``baseline.json``'s ``estimate`` section and, for regression, the loss model to stage
    next to the model; (None, None) when the holdout cannot support an estimate."""
    if config.task == "classification":
        calibration = calibration_for(trained, config)
        return (None if calibration is None else calibration.to_dict()), None
    loss = fit_loss_model(trained, config)
    return (None if loss is None else loss.spec.to_dict()), loss


def calibration_for(trained: TrainedModel, config: ModelConfig) -> Calibration | None:
    """CBPE's map from the trained classifier's holdout probabilities."""
    x = trained.holdout.matrix(config.feature_names)
    pipeline = trained.pipeline
    return fit_calibration(
        pipeline.predict(x), pipeline.predict_proba(x), trained.holdout.target, trained.classes
    )


def fit_loss_model(trained: TrainedModel, config: ModelConfig) -> FittedLossModel | None:
    """DLE's loss model, exported, with its cross-fitted constants; None when the holdout is
    too small or the errors give nothing to scale (a perfect model)."""
    holdout = trained.holdout
    if config.task != "regression" or holdout.rows < MIN_ROWS:
        return None
    x = holdout.matrix(config.feature_names)
    predicted = np.asarray(trained.pipeline.predict(x), dtype=np.float64)
    errors = np.abs(predicted - holdout.target.astype(np.float64))
    inputs = np.column_stack([x, predicted.astype(object)])
    folds = np.random.default_rng(SEED).permutation(holdout.rows) % FOLDS
    out_of_fold = np.zeros(holdout.rows, dtype=np.float64)
    for k in range(FOLDS):
        model = _loss_pipeline(config).fit(inputs[folds != k], errors[folds != k])
        out_of_fold[folds == k] = model.predict(inputs[folds == k])
    constants = loss_constants(errors, out_of_fold, holdout.target, predicted)
    if constants is None:
        return None
    final = _loss_pipeline(config).fit(inputs, errors)
    floor_thresholds_to_float32(final.steps[-1][1])
    name = prediction_input(config)
    onnx = _export(final, config, name)
    spec = LossModelSpec.of(hashlib.sha256(onnx).hexdigest(), name, holdout.rows, constants)
    return FittedLossModel(onnx, spec, np.asarray(final.predict(inputs), dtype=np.float64))


def _loss_pipeline(config: ModelConfig) -> Pipeline:
    """Numeric features and the prediction as they are, categoricals one-hot (unseen ones
    ignored), then a small gradient-boosted tree ensemble with a float32 cast (parity)."""
    numeric = [i for i, f in enumerate(config.features) if f.type == "numeric"]
    numeric.append(len(config.features))  # the prediction
    categorical = [i for i, f in enumerate(config.features) if f.type == "categorical"]
    parts: list[tuple[str, Any, list[int]]] = [("numeric", "passthrough", numeric)]
    if categorical:
        encoder = OneHotEncoder(handle_unknown="ignore", sparse_output=False, dtype=np.float64)
        parts.append(("categorical", encoder, categorical))
    prepare = ColumnTransformer(parts)
    return with_float32_cast(
        Pipeline([("prepare", prepare), ("estimator", GradientBoostingRegressor(**LOSS_PARAMS))])
    )


def _export(pipeline: Pipeline, config: ModelConfig, prediction_name: str) -> bytes:
    inputs: list[tuple[str, Any]] = [
        (
            input_name(f.name),
            DoubleTensorType([None, 1]) if f.type == "numeric" else StringTensorType([None, 1]),
        )
        for f in config.features
    ]
    inputs.append((prediction_name, DoubleTensorType([None, 1])))
    model = convert_sklearn(
        pipeline, name=f"{config.name}-loss", initial_types=inputs, target_opset=TARGET_OPSET
    )
    model.doc_string = f"{config.name}: estimated absolute error (DLE)"
    return bytes(model.SerializeToString())
