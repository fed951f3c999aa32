"""A staged candidate: what the retrainer hands to the gate through S3.

The retrainer (scikit-learn, no onnxruntime) writes ``staging/<model>/<candidate id>/``:
``model.onnx``, ``baseline.json``, ``parity_inputs.json.gz`` (the holdout with its target,
the edge cases, and scikit-learn's outputs on every row), ``reference.json.gz`` (recent
labeled traffic the challenger was not trained on: evidence the uploader does not control)
and, last, ``candidate.json`` (the draft manifest), whose presence means the rest is complete.
A registered version keeps ``golden.json.gz`` (its holdout, at most ``reference_rows``): the
set the next challenger is also scored on. The gate (onnxruntime, no
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

from mlops.domain.estimate import LOSS_MODEL
from mlops.domain.schema import Feature

SCHEMA_VERSION = 1
FILES = (
    "model.onnx",
    "baseline.json",
    "parity_inputs.json.gz",
    "reference.json.gz",
    "candidate.json",
)
# Staged when the candidate has one: DLE's loss model (regression; ``domain.estimate``).
OPTIONAL_FILES = (LOSS_MODEL,)
GOLDEN = "golden.json.gz"
REFERENCE = "reference.json.gz"


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


@dataclass(frozen=True)
class LabeledRows:
    """Feature columns and their target: a golden or reference set."""

    columns: dict[str, npt.NDArray[Any]]
    target: npt.NDArray[Any]
    source: str = ""  # where the rows come from, for the report

    @property
    def rows(self) -> int:
        return len(self.target)


def _column(values: npt.NDArray[Any]) -> list[Any]:
    return [str(v) for v in values] if values.dtype == object else values.tolist()


def encode_rows(rows: LabeledRows) -> bytes:
    doc = {
        "schema_version": SCHEMA_VERSION,
        "source": rows.source,
        "columns": {k: _column(np.asarray(v)) for k, v in rows.columns.items()},
        "target": _column(np.asarray(rows.target)),
    }
    return gzip.compress(json.dumps(doc, allow_nan=False).encode(), compresslevel=6, mtime=0)


def decode_rows(data: bytes, features: tuple[Feature, ...], task: str) -> LabeledRows:
    """``encode_rows`` output back into arrays typed by ``features``; raises ``ValueError``
    (or ``OSError``/``KeyError`` for a damaged file) when it does not fit them."""
    doc = json.loads(gzip.decompress(data))
    if doc.get("schema_version") != SCHEMA_VERSION:
        raise ValueError(f"rows schema {doc.get('schema_version')!r} is not supported")
    columns = _typed_columns(doc["columns"], features, "rows")
    target = np.asarray(doc["target"], dtype=np.float64 if task == "regression" else object)
    if any(len(v) != len(target) for v in columns.values()):
        raise ValueError("columns and target differ in length")
    return LabeledRows(columns, target, str(doc.get("source", "")))


def _typed_columns(
    raw: Mapping[str, list[Any]], features: tuple[Feature, ...], what: str
) -> dict[str, npt.NDArray[Any]]:
    missing = {f.name for f in features} - set(raw)
    if missing:
        raise ValueError(f"{what} lack columns {sorted(missing)}")
    return {
        f.name: np.asarray(raw[f.name], dtype=np.float64 if f.type == "numeric" else object)
        for f in features
    }


def encode_parity_inputs(inputs: ParityInputs) -> bytes:
    """gzip JSON: no pickle crosses the boundary, and float64 survives ``repr`` exactly."""
    column = _column

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
    cases = {
        name: ParityCaseInput(
            columns=_typed_columns(case["columns"], features, "parity inputs"),
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
