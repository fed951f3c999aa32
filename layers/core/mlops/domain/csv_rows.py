"""A CSV of instances to score, read in chunks of columns: what offline and batch scoring feed
to ``OnnxModel.score``.

Memory follows the chunk, not the file. Every row either becomes part of a chunk's columns or
is reported with why (its line and the field), never dropped silently: a bad row in a file of
millions is a line in the output, not a failed job.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

import numpy as np
import numpy.typing as npt

from mlops.domain.schema import Feature, Signature, broken_bound
from mlops.errors import DataValidationError, Problem


@dataclass
class CsvChunk:
    """Rows ``lines[i]`` (1-based file lines); ``columns`` holds the valid ones, in order."""

    lines: list[int]
    columns: dict[str, npt.NDArray[Any]]
    valid: list[bool]
    problems: dict[int, str] = field(default_factory=dict)  # index in the chunk -> why

    @property
    def rows(self) -> int:
        return len(self.lines)


def csv_chunks(lines: Iterable[str], signature: Signature, chunk_rows: int) -> Iterator[CsvChunk]:
    """Chunks of at most ``chunk_rows`` rows. The header must name every feature (other
    columns, such as the target or an id, are ignored); ``DataValidationError`` otherwise."""
    if chunk_rows < 1:
        raise ValueError(f"chunk_rows must be at least 1, got {chunk_rows}")
    reader = csv.reader(lines, strict=True)
    try:
        header = next(reader)
    except StopIteration:
        raise DataValidationError("the file is empty: expected a header row", []) from None
    except (csv.Error, UnicodeDecodeError) as exc:
        raise _unreadable(exc, 1) from exc
    if header and header[0].startswith("\ufeff"):  # a spreadsheet's byte-order mark
        header[0] = header[0][1:]
    missing = [f.name for f in signature.features if f.name not in header]
    if missing:
        raise DataValidationError(
            f"the header lacks {len(missing)} feature column(s): {', '.join(missing)}",
            [Problem(name, "required column missing from the header") for name in missing],
        )
    positions = [(f, header.index(f.name)) for f in signature.features]
    width = len(header)
    rows = _numbered(reader)
    while True:
        block = list(islice(rows, chunk_rows))
        if not block:
            return
        yield _chunk([row for _, row in block], positions, width, [line for line, _ in block])


def _numbered(reader: Any) -> Iterator[tuple[int, list[str]]]:
    """Each row with the file line it starts on (a quoted cell may span lines); a file that is
    not CSV (an over-long field, an unclosed quote at the end) or not UTF-8 is a
    ``DataValidationError`` naming the line, not a traceback."""
    start = reader.line_num + 1
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except (csv.Error, UnicodeDecodeError) as exc:
            raise _unreadable(exc, start) from exc
        yield start, row
        start = reader.line_num + 1


def _chunk(
    block: list[list[str]], positions: list[tuple[Feature, int]], width: int, lines: list[int]
) -> CsvChunk:
    problems: dict[int, str] = {}
    values: dict[str, list[Any]] = {f.name: [] for f, _ in positions}
    valid: list[bool] = []
    for i, row in enumerate(block):
        why = None if len(row) == width else f"{len(row)} fields, the header has {width}"
        parsed: list[Any] = []
        for feature, at in positions:
            if why is not None:
                break
            value, why = _value(row[at], feature)
            parsed.append(value)
        if why is not None:
            problems[i] = why
            valid.append(False)
            continue
        valid.append(True)
        for (feature, _), value in zip(positions, parsed, strict=True):
            values[feature.name].append(value)
    columns = {
        f.name: np.asarray(values[f.name], dtype=np.float64 if f.type == "numeric" else object)
        for f, _ in positions
    }
    return CsvChunk(lines, columns, valid, problems)


def _value(cell: str, feature: Feature) -> tuple[Any, str | None]:
    if feature.type == "categorical":
        # As the API: a categorical value is a non-empty string (unseen ones are scored).
        return (cell, None) if cell.strip() else (None, f"{feature.name}: empty")
    try:
        number = float(cell)
    except ValueError:
        return None, f"{feature.name}: expected a number, got {cell[:40]!r}"
    if not math.isfinite(number):
        return None, f"{feature.name}: expected a finite number, got {cell[:40]!r}"
    if broken := broken_bound(number, feature.min, feature.max):
        side, bound = broken
        return None, f"{feature.name}: {number:g} is outside the declared {side} {bound:g}"
    return number, None


def _unreadable(exc: Exception, line: int) -> DataValidationError:
    if isinstance(exc, UnicodeDecodeError):  # decoded ahead of the row: the line is a floor
        return DataValidationError(
            f"from line {line} on: not UTF-8 text ({exc.reason}): save the file as UTF-8", []
        )
    return DataValidationError(f"line {line}: not a CSV row ({exc})", [])
