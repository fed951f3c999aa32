"""ONNX scoring with onnxruntime: the only model code on the serving path.

No scikit-learn here: the serving path must import nothing heavier than numpy + onnxruntime.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import onnxruntime as ort

from mlops.domain.input_names import input_name
from mlops.domain.schema import Signature


@dataclass(frozen=True)
class Scores:
    """Model outputs for a batch: ``values`` (regression value or class label) and, for
    classification, one probability row per instance in ``classes`` order."""

    values: list[Any]
    probabilities: npt.NDArray[np.float32] | None = None
    classes: tuple[str | int, ...] = ()

    def probability_dicts(self) -> list[dict[str, float]] | None:
        if self.probabilities is None:
            return None
        keys = [str(c) for c in self.classes]  # JSON object keys are strings
        return [
            {c: round(float(p), 6) for c, p in zip(keys, row, strict=True)}
            for row in self.probabilities
        ]


class OnnxModel:
    """An ``InferenceSession`` bound to its signature; feeds one ``(n, 1)`` input per feature."""

    def __init__(
        self,
        model_bytes: bytes,
        signature: Signature,
        task: str,
        classes: tuple[str | int, ...] = (),
        *,
        threads: int = 1,
    ) -> None:
        """``classes`` in the model's order, as trained: the graph emits string labels, and a
        classifier trained on integer labels answers integers. ``threads``: onnxruntime's
        intra-op threads, 1 for requests (Lambda gives a fraction of a core at small sizes, and
        thread pools add wake-up latency that dwarfs a 50 µs tree ensemble); more for batch
        chunks of 50,000 rows, where a tree ensemble splits its rows across threads."""
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self._session = ort.InferenceSession(
            model_bytes, sess_options=options, providers=["CPUExecutionProvider"]
        )
        self.signature = signature
        self.task = task
        self.classes = classes
        self._label_of: dict[str, str | int] = {str(c): c for c in classes}
        # The graph's inputs carry derived names (export.py); requests keep the user's.
        self._feeds = [
            (f.name, input_name(f.name), f.type == "categorical") for f in signature.features
        ]
        inputs = {i.name for i in self._session.get_inputs()}
        if inputs != {derived for _, derived, _ in self._feeds}:
            raise ValueError(
                f"ONNX inputs {sorted(inputs)} do not match the signature's "
                f"{sorted(derived for _, derived, _ in self._feeds)}"
            )
        self._outputs = [o.name for o in self._session.get_outputs()]

    def score(self, columns: Mapping[str, npt.NDArray[Any]]) -> Scores:
        """Score validated columns, ``(n,)`` or ``(n, 1)`` each (numeric or str)."""
        feeds = {
            derived: _column(columns[name], categorical)
            for name, derived, categorical in self._feeds
        }
        outputs = self._session.run(self._outputs, feeds)
        if self.task == "regression":
            # tolist() makes Python floats in one C loop (float32 widened exactly, as float()).
            return Scores(values=np.asarray(outputs[0], dtype=np.float64).ravel().tolist())
        labels, probabilities = outputs[0], outputs[1]
        return Scores(
            values=[self._label_of.get(v, v) for v in map(_label, np.asarray(labels).ravel())],
            probabilities=np.asarray(probabilities, dtype=np.float32),
            classes=self.classes,
        )


def _column(values: npt.NDArray[Any], categorical: bool) -> npt.NDArray[Any]:
    column = np.asarray(values).reshape(-1, 1)
    if categorical:
        return column.astype(str)
    return column if column.dtype == np.float64 else column.astype(np.float64)


def _label(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value
