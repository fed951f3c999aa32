"""A staged candidate: what the retrainer hands to the gate through S3.

The retrainer (scikit-learn, no onnxruntime) writes ``staging/<model>/<candidate id>/``:
``model.onnx``, ``baseline.json``, ``parity_inputs.json.gz`` (the holdout with its target,
the edge cases, and scikit-learn's outputs on every row) and, last, ``candidate.json`` (the
draft manifest), whose presence means the rest is complete. The gate (onnxruntime, no
scikit-learn) reads them back, runs the ONNX model on the same rows and judges it.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from mlops.domain.schema import Feature

SCHEMA_VERSION = 1
FILES = ("model.onnx", "baseline.json", "parity_inputs.json.gz", "candidate.json")


def staging_prefix(model: str, candidate_id: str) -> str:
    return f"staging/{model}/{candidate_id}/"


@dataclass(frozen=True)
class ParityCaseInput:
    """Rows of one parity case and what scikit-learn answered on them."""

    columns: dict[str, npt.NDArray[Any]]
    expected: npt.NDArray[np.float64]  # values (regression) or probabilities (classification)
    expected_labels: npt.NDArray[Any] | None = None


@dataclass(frozen=True)
class ParityInputs:
    cases: dict[str, ParityCaseInput]  # "holdout" first, then the edge cases
    holdout_target: npt.NDArray[Any]

    @property
    def holdout(self) -> ParityCaseInput:
        return self.cases["holdout"]


def encode_parity_inputs(inputs: ParityInputs) -> bytes:
    """gzip JSON: no pickle crosses the boundary, and float64 survives ``repr`` exactly."""

    def column(values: npt.NDArray[Any]) -> list[Any]:
        return [str(v) for v in values] if values.dtype == object else values.tolist()

    doc = {
        "schema_version": SCHEMA_VERSION,
        "holdout_target": column(np.asarray(inputs.holdout_target)),
        "cases": {
            name: {
                "columns": {k: column(v) for k, v in case.columns.items()},
                "expected": np.asarray(case.expected, dtype=np.float64).tolist(),
                "expected_labels": None
                if case.expected_labels is None
                else [str(v) for v in case.expected_labels],
            }
            for name, case in inputs.cases.items()
        },
    }
    return gzip.compress(json.dumps(doc, allow_nan=False).encode(), compresslevel=6, mtime=0)


def decode_parity_inputs(data: bytes, features: tuple[Feature, ...], task: str) -> ParityInputs:
    """Read ``encode_parity_inputs`` output back into arrays typed by the features."""
    doc = json.loads(gzip.decompress(data))
    if doc.get("schema_version") != SCHEMA_VERSION:
        raise ValueError(f"parity inputs schema {doc.get('schema_version')!r} is not supported")
    kinds = {f.name: f.type for f in features}

    def columns(raw: Mapping[str, list[Any]]) -> dict[str, npt.NDArray[Any]]:
        missing = set(kinds) - set(raw)
        if missing:
            raise ValueError(f"parity inputs lack columns {sorted(missing)}")
        return {
            name: np.asarray(raw[name], dtype=np.float64 if kind == "numeric" else object)
            for name, kind in kinds.items()
        }

    cases = {
        name: ParityCaseInput(
            columns=columns(case["columns"]),
            expected=np.asarray(case["expected"], dtype=np.float64),
            expected_labels=None
            if case.get("expected_labels") is None
            else np.asarray(case["expected_labels"], dtype=object),
        )
        for name, case in doc["cases"].items()
    }
    if "holdout" not in cases:
        raise ValueError("parity inputs have no holdout case")
    target_dtype = np.float64 if task == "regression" else object
    return ParityInputs(cases, np.asarray(doc["holdout_target"], dtype=target_dtype))
