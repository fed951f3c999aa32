"""Score DLE's loss model (``loss_model.onnx``) on captured rows, with onnxruntime.

The prediction logger runs this on each batch's live rows: one ``(n, 1)`` input per feature
(numbers as float64, text as str, a missing one empty) and the served prediction. A row
without captured inputs, with a numeric input that is not a finite number (``/predict``
refuses those; older captures may hold them), or without a usable prediction gets None
(unscored). No scikit-learn here: the logger ships onnxruntime only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import onnxruntime as ort

from mlops.domain.input_names import input_name
from mlops.domain.serving import is_number


class LossModel:
    """An ``InferenceSession`` of a loss model and the features it reads."""

    def __init__(
        self,
        model_bytes: bytes,
        *,
        numeric: Sequence[str],
        categorical: Sequence[str],
        prediction_input: str,
    ) -> None:
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self._session = ort.InferenceSession(
            model_bytes, sess_options=options, providers=["CPUExecutionProvider"]
        )
        self._numeric = [(n, input_name(n)) for n in numeric]
        self._categorical = [(n, input_name(n)) for n in categorical]
        self._prediction = prediction_input
        expected = {d for _, d in (*self._numeric, *self._categorical)} | {prediction_input}
        found = {i.name for i in self._session.get_inputs()}
        if found != expected:
            raise ValueError(
                f"loss model inputs {sorted(found)[:5]} are not the features and the "
                f"prediction {sorted(expected)[:5]}"
            )

    def score(self, rows: Sequence[Mapping[str, Any]]) -> list[float | None]:
        """The estimated absolute error per row (None where it cannot be scored)."""
        usable = [
            i
            for i, r in enumerate(rows)
            if isinstance(r.get("inputs"), Mapping)
            and is_number(r.get("prediction"))
            and all(is_number(r["inputs"].get(name)) for name, _ in self._numeric)
        ]
        out: list[float | None] = [None] * len(rows)
        if not usable:
            return out
        picked = [rows[i] for i in usable]
        inputs = [r["inputs"] for r in picked]
        feeds: dict[str, Any] = {
            derived: _numbers([i.get(name) for i in inputs]) for name, derived in self._numeric
        }
        for name, derived in self._categorical:
            feeds[derived] = np.asarray([_text(i.get(name)) for i in inputs], dtype=object).reshape(
                -1, 1
            )
        feeds[self._prediction] = _numbers([r["prediction"] for r in picked])
        values = np.asarray(self._session.run(None, feeds)[0], dtype=np.float64).reshape(-1)
        for i, value in zip(usable, values.tolist(), strict=True):
            out[i] = value
        return out


def _numbers(values: list[Any]) -> Any:
    return np.asarray(values, dtype=np.float64).reshape(-1, 1)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""
