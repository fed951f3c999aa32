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
        """The estimated absolute error per row (None where it cannot be scored). Columns
        are gathered once each and checked with numpy: this runs on every captured row."""
        out: list[float | None] = [None] * len(rows)
        index = [i for i, r in enumerate(rows) if isinstance(r.get("inputs"), Mapping)]
        if not index:
            return out
        inputs = [rows[i]["inputs"] for i in index]
        prediction = _numbers([rows[i].get("prediction") for i in index])
        usable = np.isfinite(prediction)
        numeric = {}
        for name, derived in self._numeric:
            numeric[derived] = column = _numbers([i.get(name) for i in inputs])
            usable &= np.isfinite(column)
        keep = np.flatnonzero(usable)
        if keep.size == 0:
            return out
        feeds: dict[str, Any] = {d: c[keep].reshape(-1, 1) for d, c in numeric.items()}
        for name, derived in self._categorical:
            text = np.asarray([_text(i.get(name)) for i in inputs], dtype=object)
            feeds[derived] = text[keep].reshape(-1, 1)
        feeds[self._prediction] = prediction[keep].reshape(-1, 1)
        values = np.asarray(self._session.run(None, feeds)[0], dtype=np.float64).reshape(-1)
        for position, value in zip(keep.tolist(), values.tolist(), strict=True):
            out[index[position]] = value
        return out


def _numbers(values: list[Any]) -> Any:
    """float64 values, NaN for what is not a finite number (None, text, bool, overflow)."""
    try:
        numbers = np.asarray(values, dtype=np.float64)
        if not any(type(v) is bool for v in values):
            return numbers
    except (TypeError, ValueError, OverflowError):
        pass
    return np.asarray([float(v) if is_number(v) else np.nan for v in values], dtype=np.float64)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""
