"""The gate's check of a candidate's quality-estimate artifacts (``domain.estimate``).

A classifier's ``baseline.json`` carries CBPE's calibration; a regressor's names DLE's loss
model (``loss_model.onnx``, staged next to the model with its sha256). Both come from the
retrainer, and the logger and the evaluator trust them for every hour of the version's life,
so the gate checks them like the export itself: a calibration that is malformed, not
monotone, or about other classes, and a loss model whose digest, inputs or outputs disagree
with what the retrainer measured, get the candidate rejected, naming why. A candidate with
no estimate section (too few holdout rows, too many classes) passes: its reports say the
estimate is unavailable.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

import numpy as np

from mlops.domain import parity
from mlops.domain.candidate import ParityInputs
from mlops.domain.config import ModelConfig
from mlops.domain.estimate import LOSS_MODEL, Calibration, CalibrationError, LossModelSpec
from mlops.domain.loss_scoring import LossModel


def check_estimates(
    config: ModelConfig,
    doc: Mapping[str, Any],
    files: Mapping[str, bytes],
    inputs: ParityInputs,
) -> str | None:
    """Why the candidate's estimate artifacts cannot be trusted, or None when they can."""
    try:
        section = json.loads(files["baseline.json"]).get("estimate")
    except (ValueError, AttributeError) as exc:
        return f"baseline.json is unreadable: {exc}"
    if section is None:
        return None if LOSS_MODEL not in files else "a loss model no baseline describes"
    try:
        if config.task == "classification":
            calibration = Calibration.from_dict(section)
            classes = {str(c) for c in doc.get("classes") or ()}
            if set(calibration.classes) != classes:
                return "the CBPE calibration is broken: it is about other classes than the model"
            return None
        spec = LossModelSpec.from_dict(section)
    except CalibrationError as exc:
        kind = "CBPE calibration" if config.task == "classification" else "DLE description"
        return f"the {kind} is broken: {exc}"
    return _check_loss_model(config, doc, files, inputs, spec)


def _check_loss_model(
    config: ModelConfig,
    doc: Mapping[str, Any],
    files: Mapping[str, bytes],
    inputs: ParityInputs,
    spec: LossModelSpec,
) -> str | None:
    body = files.get(LOSS_MODEL)
    if body is None:
        return f"the baseline names a loss model, but no {LOSS_MODEL} was staged"
    if hashlib.sha256(body).hexdigest() != spec.sha256:
        return f"{LOSS_MODEL} is not the loss model the baseline names (sha256 differs)"
    try:
        model = LossModel(
            body,
            numeric=[f.name for f in config.features if f.type == "numeric"],
            categorical=[f.name for f in config.features if f.type == "categorical"],
            prediction_input=spec.prediction_input,
        )
    except Exception as exc:  # onnxruntime's own exception types
        return f"the loss model does not load: {str(exc)[:300]}"
    expected = np.asarray((doc.get("loss_model") or {}).get("holdout_estimates") or [], float)
    holdout = inputs.holdout
    rows = [
        {
            "inputs": {name: _plain(column[i]) for name, column in holdout.columns.items()},
            "prediction": float(holdout.expected[i]),
        }
        for i in range(len(holdout.expected))
    ]
    if expected.shape != (len(rows),):
        return "the loss model's holdout estimates are missing or of another length"
    scored = np.asarray([np.nan if v is None else v for v in model.score(rows)], float)
    case = parity.compare_case("loss_model_holdout", expected, scored, config.parity)
    report = parity.judge([case], config.parity)
    if not report.passed or not np.isfinite(scored).all():
        return f"the loss model failed its parity check: {report.summary()}"
    return None


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value
