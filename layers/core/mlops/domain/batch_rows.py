"""A chunk of batch-scoring rows as validated columns: what ``OnnxModel.score`` takes in one call.

Rows come as CSV cells (a file streamed from S3) or as the objects a Step Functions Distributed
Map's CSV ``ItemReader`` makes (header -> string value); both become one column of raw cells per
feature and are checked a column at a time with the value rules of training files
(``dataset_scan``), so a row a training file may hold is a row batch scoring accepts:

- a number is what Python's ``float`` reads (the training scan's parser: ``" 1.5 "``, ``1e3``,
  ``1_000``), finite, within the feature's declared ``min``/``max`` (inclusive) and within
  ``±MAX_MAGNITUDE``;
- a categorical value is non-empty once stripped (stripped, as training stores it) and valid
  Unicode; a category never seen in training is scored, as at ``/predict``.

A rejected row is never dropped silently: each problem is a ``Rejection`` (the 1-based data row
number, the field, a reason code and a sentence). Columns that are not features (an id, the
target) are allowed and ignored; an id column, when named, is echoed in the output.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any

import numpy as np
import numpy.typing as npt

from mlops.domain.dataset_scan import MAX_MAGNITUDE
from mlops.domain.schema import Feature, Signature, broken_bound, valid_unicode
from mlops.errors import DataValidationError, Problem

# Reason codes: the summary counts rejected rows' problems by these.
EMPTY = "empty"
NOT_A_NUMBER = "not_a_number"
NOT_FINITE = "not_finite"
BELOW_MIN = "below_min"
ABOVE_MAX = "above_max"
TOO_LARGE = "too_large"
INVALID_TEXT = "invalid_text"
WRONG_WIDTH = "wrong_width"
REASONS = (EMPTY, NOT_A_NUMBER, NOT_FINITE, BELOW_MIN, ABOVE_MAX, TOO_LARGE, INVALID_TEXT)
ROW = "(row)"  # the field of a problem with the whole row (its width)
_SHOWN = 40  # characters of a bad cell quoted in a reason


@dataclass(frozen=True)
class Rejection:
    """One problem of one rejected row."""

    row: int  # 1-based data row number (the header is not a row)
    field: str
    code: str
    reason: str


@dataclass(frozen=True)
class RowPlan:
    """Where each feature (and the id column) is: header positions for CSV rows, keys for
    Map items. Built once per file from its header."""

    signature: Signature
    header: tuple[str, ...]
    positions: tuple[int, ...]  # of the features, in signature order
    id_column: str | None = None
    id_position: int | None = None

    @classmethod
    def from_header(
        cls, header: Sequence[str], signature: Signature, id_column: str | None = None
    ) -> RowPlan:
        """``DataValidationError`` naming what is missing when the header cannot be scored:
        a feature (or the named id column) missing, or a feature named twice."""
        names = [h.lstrip("\ufeff") if i == 0 else h for i, h in enumerate(header)]
        problems = [
            Problem(f.name, "required column missing from the header")
            for f in signature.features
            if f.name not in names
        ]
        problems += [
            Problem(f.name, f"column appears {names.count(f.name)} times in the header")
            for f in signature.features
            if names.count(f.name) > 1
        ]
        if id_column is not None and id_column not in names:
            problems.append(Problem(id_column, "the id column is missing from the header"))
        if problems:
            raise DataValidationError(
                f"the header cannot be scored: {len(problems)} problem(s)", problems
            )
        return cls(
            signature=signature,
            header=tuple(names),
            positions=tuple(names.index(f.name) for f in signature.features),
            id_column=id_column,
            id_position=None if id_column is None else names.index(id_column),
        )


@dataclass
class ValidChunk:
    """A chunk's rows: ``columns`` hold the valid rows only (``valid[i]`` says which)."""

    rows: npt.NDArray[np.int64]  # data row number of every row in the chunk
    ids: list[str]  # the id column's value of every row, or its row number
    valid: npt.NDArray[np.bool_]
    columns: dict[str, npt.NDArray[Any]]
    rejections: list[Rejection] = field(default_factory=list)

    @property
    def size(self) -> int:
        return len(self.rows)

    @property
    def scored(self) -> int:
        return int(self.valid.sum())

    @property
    def rejected(self) -> int:
        return self.size - self.scored


def chunk_from_cells(rows: list[list[str]], first_row: int, plan: RowPlan) -> ValidChunk:
    """CSV rows (lists of cells) numbered from ``first_row``. A row of another width than the
    header is rejected whole; the rest are validated a column at a time."""
    width = len(plan.header)
    numbers = np.arange(first_row, first_row + len(rows), dtype=np.int64)
    widths = np.fromiter(map(len, rows), dtype=np.int64, count=len(rows))
    whole = widths == width
    rejections = [
        Rejection(
            int(numbers[i]),
            ROW,
            WRONG_WIDTH,
            f"{widths[i]} fields, the header has {width}"
            if widths[i]
            else "a blank line (no fields)",
        )
        for i in np.flatnonzero(~whole)
    ]
    kept = rows if bool(whole.all()) else [r for r, ok in zip(rows, whole, strict=True) if ok]
    cells = [list(map(itemgetter(at), kept)) for at in plan.positions]
    ids = _ids(rows, whole, numbers, plan.id_position)
    # Text decoded as strict UTF-8 cannot hold a lone surrogate: no need to look for one.
    return _validate(plan, numbers, whole, cells, ids, rejections, decoded=True)


def chunk_from_items(items: Sequence[Any], rows: Sequence[int], plan: RowPlan) -> ValidChunk:
    """Distributed Map items (header -> value objects) with their data row numbers. A key
    missing from an item is an empty cell; an item that is not an object is rejected whole."""
    numbers = np.asarray(rows, dtype=np.int64)
    whole = np.fromiter((isinstance(i, Mapping) for i in items), dtype=np.bool_, count=len(items))
    rejections = [
        Rejection(int(numbers[i]), ROW, WRONG_WIDTH, "not a row object")
        for i in np.flatnonzero(~whole)
    ]
    kept = [item for item, ok in zip(items, whole, strict=True) if ok]
    cells = [[_text(item.get(f.name)) for item in kept] for f in plan.signature.features]
    if plan.id_column is None:
        ids = [str(n) for n in numbers]
    else:
        ids = [
            _text(item.get(plan.id_column)) if isinstance(item, Mapping) else str(n)
            for item, n in zip(items, numbers, strict=True)
        ]
    return _validate(plan, numbers, whole, cells, ids, rejections)


def _text(value: Any) -> str:
    """A Map item's value as its CSV cell (the CSV ItemReader gives strings; None is empty)."""
    if value is None:
        return ""
    return value if isinstance(value, str) else str(value)


def _ids(
    rows: list[list[str]],
    whole: npt.NDArray[np.bool_],
    numbers: npt.NDArray[np.int64],
    at: int | None,
) -> list[str]:
    if at is None:
        return [str(n) for n in numbers.tolist()]
    return [
        row[at] if ok else (row[at] if at < len(row) else str(n))
        for row, ok, n in zip(rows, whole.tolist(), numbers.tolist(), strict=True)
    ]


def _validate(  # noqa: PLR0917 (private: the two readers' shared step)
    plan: RowPlan,
    numbers: npt.NDArray[np.int64],
    whole: npt.NDArray[np.bool_],
    cells: list[list[str]],
    ids: list[str],
    rejections: list[Rejection],
    *,
    decoded: bool = False,
) -> ValidChunk:
    """Check each feature's cells (of the rows of the right width) as one column; ``decoded``:
    the cells come from UTF-8 bytes (no lone surrogate can be in them)."""
    kept_rows = numbers[whole]
    ok = np.ones(len(kept_rows), dtype=np.bool_)
    values: list[npt.NDArray[Any]] = []
    for feature, column in zip(plan.signature.features, cells, strict=True):
        if feature.type == "numeric":
            parsed, good = _numbers(column, feature)
        else:
            parsed, good = _texts(column, decoded)
        if not good.all():
            for i in np.flatnonzero(~good):
                code, reason = _problem(column[i], feature)
                rejections.append(Rejection(int(kept_rows[i]), feature.name, code, reason))
            ok &= good
        values.append(parsed)
    valid = whole.copy()
    valid[np.flatnonzero(whole)] = ok
    columns = {
        f.name: column[ok] if not ok.all() else column
        for f, column in zip(plan.signature.features, values, strict=True)
    }
    rejections.sort(key=lambda r: r.row)
    return ValidChunk(numbers, ids, valid, columns, rejections)


def _numbers(column: list[str], feature: Feature) -> tuple[npt.NDArray[np.float64], Any]:
    """float64 values (NaN where unreadable) and which cells are valid."""
    try:  # the common case: every cell reads; Python's float, as the training scan
        parsed = np.fromiter(map(float, column), dtype=np.float64, count=len(column))
    except (ValueError, TypeError):
        parsed = np.fromiter(map(_float_or_nan, column), dtype=np.float64, count=len(column))
    low = -MAX_MAGNITUDE if feature.min is None else max(feature.min, -MAX_MAGNITUDE)
    high = MAX_MAGNITUDE if feature.max is None else min(feature.max, MAX_MAGNITUDE)
    # NaN and ±inf fail both comparisons: bounds are finite.
    return parsed, (parsed >= low) & (parsed <= high)


def _float_or_nan(cell: str) -> float:
    try:
        return float(cell)
    except (ValueError, TypeError):
        return math.nan


def _texts(column: list[str], decoded: bool) -> tuple[npt.NDArray[Any], npt.NDArray[np.bool_]]:
    stripped = list(map(str.strip, column))
    good = np.fromiter(map(bool, stripped), dtype=np.bool_, count=len(column))
    if not decoded and not "".join(stripped).isascii():
        good &= np.fromiter(map(valid_unicode, stripped), dtype=np.bool_, count=len(column))
    return np.asarray(stripped, dtype=object), good


def _problem(cell: str, feature: Feature) -> tuple[str, str]:
    """Why one cell is invalid (only called for the cells that are)."""
    shown = repr(cell.strip()[:_SHOWN])
    if not cell.strip():
        return EMPTY, "empty"
    if feature.type == "categorical":
        return INVALID_TEXT, "not valid Unicode text (a lone surrogate)"
    try:
        number = float(cell)
    except (ValueError, TypeError):
        return NOT_A_NUMBER, f"expected a number, got {shown}"
    if not math.isfinite(number):
        return NOT_FINITE, f"expected a finite number, got {shown}"
    broken = broken_bound(number, feature.min, feature.max)
    if broken is not None:
        side, bound = broken
        code = BELOW_MIN if side == "min" else ABOVE_MAX
        where = "below" if side == "min" else "above"
        return code, f"{number:g} is {where} the declared {side} {bound:g}"
    return TOO_LARGE, f"{number:g} is beyond ±{MAX_MAGNITUDE:.3g}"
