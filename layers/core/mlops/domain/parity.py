"""The parity gate: does the ONNX export reproduce the scikit-learn model?

Pure numpy comparison of two sets of outputs on the same rows; the caller decides which rows
(the holdout plus edge cases) and runs both models.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from mlops.domain.config import ParityConfig
from mlops.domain.schema import Feature


@dataclass(frozen=True)
class ParityCase:
    name: str
    rows: int
    mismatches: int
    max_abs_diff: float
    max_rel_diff: float


@dataclass(frozen=True)
class ParityReport:
    passed: bool
    tolerance: dict[str, float]
    cases: tuple[ParityCase, ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "tolerance": self.tolerance,
            "cases": [asdict(c) for c in self.cases],
        }

    def summary(self) -> str:
        worst = max(self.cases, key=lambda c: c.max_rel_diff)
        total = sum(c.mismatches for c in self.cases)
        rows = sum(c.rows for c in self.cases)
        return (
            f"{total} of {rows} rows outside tolerance; worst case {worst.name!r}: "
            f"max abs diff {worst.max_abs_diff:.3g}, max rel diff {worst.max_rel_diff:.3g}"
        )


def compare_case(
    name: str,
    expected: npt.NDArray[Any],
    actual: npt.NDArray[Any],
    tolerance: ParityConfig,
    *,
    expected_labels: npt.NDArray[Any] | None = None,
    actual_labels: npt.NDArray[Any] | None = None,
) -> ParityCase:
    """Compare outputs row by row. For classification ``expected``/``actual`` are probability
    matrices and the labels must match exactly; for regression they are values."""
    expected = np.asarray(expected, dtype=np.float64)
    actual = np.asarray(actual, dtype=np.float64)
    if expected.shape != actual.shape:
        raise ValueError(f"parity case {name!r}: shapes {expected.shape} != {actual.shape}")
    diff = np.abs(expected - actual)
    scale = np.abs(expected)
    rel = np.divide(diff, scale, out=np.zeros_like(diff), where=scale > 0)
    if expected_labels is None:
        # ONNX adds tree outputs in float32, so its rounding error scales with the model's
        # output range, not with one prediction that happens to be near zero (a 1M-row model
        # was off by 1.4e-4 of a 1,211 price, 4e-10 of the typical 300,000). Each row is
        # judged relative to the larger of its value and the case's median magnitude.
        typical = float(np.median(scale)) if scale.size else 0.0
        bad = diff > tolerance.atol + tolerance.rtol * np.maximum(scale, typical)
    else:
        bad = (diff > tolerance.prob_atol).reshape(len(expected), -1).any(axis=1)
        # At an exact tie (e.g. a forest voting 10 to 10) the two runtimes may break it
        # differently; that is not a model difference, so only untied label changes count.
        top2 = np.sort(expected.reshape(len(expected), -1), axis=1)[:, -2:]
        tied = (top2[:, 1] - top2[:, 0]) <= tolerance.prob_atol
        changed = np.asarray(expected_labels).astype(str) != np.asarray(actual_labels).astype(str)
        bad |= changed & ~tied
    rows = len(expected)
    return ParityCase(
        name=name,
        rows=rows,
        mismatches=int(np.count_nonzero(bad.reshape(rows, -1).any(axis=1))),
        max_abs_diff=float(diff.max(initial=0.0)),
        max_rel_diff=float(rel.max(initial=0.0)),
    )


def judge(cases: list[ParityCase], tolerance: ParityConfig) -> ParityReport:
    """Pass when the share of mismatching rows in every case is within the allowed fraction."""
    passed = all(c.mismatches <= tolerance.max_mismatch_fraction * c.rows for c in cases)
    return ParityReport(passed=passed, tolerance=asdict(tolerance), cases=tuple(cases))


UNSEEN_CATEGORY = "__unseen_category__"


def edge_cases(
    features: tuple[Feature, ...],
    train: Mapping[str, npt.NDArray[Any]],
    sample: Mapping[str, npt.NDArray[Any]],
) -> dict[str, dict[str, npt.NDArray[Any]]]:
    """Rows built from ``sample`` that push the model where exports tend to break: every
    numeric feature at its lower / upper bound (declared, else the training extreme) and every
    categorical feature at a value never seen in training."""

    def with_values(pick: Callable[[Feature], Any | None]) -> dict[str, npt.NDArray[Any]]:
        out: dict[str, npt.NDArray[Any]] = {}
        for f in features:
            value = pick(f)
            column = sample[f.name]
            out[f.name] = column.copy() if value is None else np.full_like(column, value)
        return out

    def lower(f: Feature) -> float | None:
        if f.type != "numeric":
            return None
        return f.min if f.min is not None else float(np.min(train[f.name]))

    def upper(f: Feature) -> float | None:
        if f.type != "numeric":
            return None
        return f.max if f.max is not None else float(np.max(train[f.name]))

    return {
        "numeric_at_lower_bound": with_values(lower),
        "numeric_at_upper_bound": with_values(upper),
        "unseen_categories": with_values(
            lambda f: UNSEEN_CATEGORY if f.type == "categorical" else None
        ),
    }
