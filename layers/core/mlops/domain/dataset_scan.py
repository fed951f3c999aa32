"""One pass over a training file's rows: the required columns found in the header, each cell
parsed once and checked (a number is finite, within its declared bounds and ``±MAX_MAGNITUDE``),
and what the pass found (``Scan``) for the checks on rows and columns."""

from __future__ import annotations

import csv
import math
import operator
import sys
from array import array
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from mlops.domain.config import ModelConfig
from mlops.domain.dataset_report import MAX_REPORTED, ReportBuilder, listed, plural
from mlops.domain.schema import broken_bound
from mlops.errors import Problem

if TYPE_CHECKING:
    from _csv import Reader as CsvReader

MAX_MAGNITUDE = math.sqrt(sys.float_info.max)  # ≈ 1.34e154, the largest with a finite square
_FIRST_LINES = 3  # line numbers quoted per column in the missing-values and target details


@dataclass(frozen=True)
class _Column:
    """A required column: where it is in the header and what a valid cell is."""

    name: str
    index: int
    numeric: bool
    min: float | None = None
    max: float | None = None

    def problem(self, cell: str) -> str:
        """Why a non-empty ``cell`` is invalid (the fast path only calls this on a failure)."""
        try:
            number = float(cell)
        except ValueError:
            return f"expected a number, got {cell.strip()[:40]!r}"
        if not math.isfinite(number):
            return f"expected a finite number, got {cell.strip()[:40]!r}"
        broken = broken_bound(number, self.min, self.max)
        if broken is not None:
            side, bound = broken
            where = "below" if side == "min" else "above"
            return f"{number:g} is {where} the declared {side} {bound:g}"
        return (
            f"{number:g} is beyond ±{MAX_MAGNITUDE:.3g}, where its square overflows float64 "
            "(scaling and the error metrics square numbers)"
        )


def check_required_columns(
    header: list[str], config: ModelConfig, report: ReportBuilder
) -> list[_Column]:
    wanted = [*config.feature_names, config.target]
    missing = [name for name in wanted if name not in header]
    counts = Counter(name for name in header if name)
    repeated = sorted(name for name, n in counts.items() if n > 1)
    for name in missing:
        report.problems.append(Problem(name, "required column missing from the header"))
    for name in repeated:
        report.problems.append(Problem(name, f"column appears {counts[name]} times in the header"))
    if missing or repeated:
        parts = []
        if missing:
            parts.append(f"{len(missing)} required column(s) missing: {listed(missing)}")
        if repeated:
            parts.append(f"duplicated column name(s) in the header: {listed(repeated)}")
        raise report.stop("required_columns", "; ".join(parts))
    extra = [name or "(unnamed)" for name in header if name not in wanted]
    detail = f"all {len(wanted)} required columns present"
    if extra:
        detail += f"; {plural(len(extra), 'extra column')} ignored: {listed(extra)}"
    report.add("required_columns", "pass", detail)
    features = {f.name: f for f in config.features}
    columns = []
    for name in wanted:
        feature = features.get(name)
        numeric = feature.type == "numeric" if feature else config.task == "regression"
        lo, hi = (feature.min, feature.max) if feature else (None, None)
        columns.append(_Column(name, header.index(name), numeric, lo, hi))
    return columns


@dataclass
class Scan:
    """What one pass over the rows found; values hold the rows used, in file order."""

    numbers: dict[str, array[float]]
    texts: dict[str, list[str]]
    rows_read: int = 0
    rows_used: int = 0
    rows_dropped: int = 0
    rows_invalid: int = 0
    duplicate_rows: int = 0
    missing: Counter[str] = field(default_factory=Counter)
    missing_lines: dict[str, list[int]] = field(default_factory=dict)
    invalid: Counter[str] = field(default_factory=Counter)
    invalid_lines: dict[str, list[int]] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)


class Scanner:
    """One pass over the rows with the stdlib csv reader.

    The hot path parses each required cell once and appends it to its column; a row with an
    empty or invalid cell is rare, so its cells are appended anyway and rolled back.
    """

    def __init__(self, columns: list[_Column], width: int) -> None:
        self.columns = columns
        self.width = width
        self.result = Scan(
            numbers={c.name: array("d") for c in columns if c.numeric},
            texts={c.name: [] for c in columns if not c.numeric},
        )

    def scan(self, reader: CsvReader) -> Scan:
        result = self.result
        numeric = [
            (
                c.index,
                -MAX_MAGNITUDE if c.min is None else max(c.min, -MAX_MAGNITUDE),
                MAX_MAGNITUDE if c.max is None else min(c.max, MAX_MAGNITUDE),
                result.numbers[c.name].append,
                c,
            )
            for c in self.columns
            if c.numeric
        ]
        # Equal categories share one string object: a million rows hold a handful of strings.
        interned: dict[str, str] = {}
        categorical = [
            (c.index, result.texts[c.name].append, interned.setdefault, c)
            for c in self.columns
            if not c.numeric
        ]
        row_key = operator.itemgetter(*(c.index for c in self.columns))
        seen: set[int] = set()
        faults: list[tuple[_Column, str]] = []
        width = self.width
        read = used = duplicates = 0
        try:  # zero-cost until raised
            for row in reader:
                if len(row) != width:
                    if "".join(row).strip():
                        read += 1
                        self._wrong_width(row, reader)
                    continue
                read += 1
                for index, lo, hi, add_number, column in numeric:
                    cell = row[index]
                    try:
                        number = float(cell)
                    except ValueError:
                        faults.append((column, cell))
                        continue
                    # Also false for nan and ±inf, as bounds are finite.
                    if lo <= number <= hi:
                        add_number(number)
                    else:
                        faults.append((column, cell))
                for index, add_text, intern, column in categorical:
                    cell = row[index].strip()
                    if cell:
                        add_text(intern(cell, cell))
                    else:
                        faults.append((column, cell))
                if faults:
                    if self._fault(row, faults, reader, used):
                        read -= 1  # a row of empty cells only is a blank line
                    faults.clear()
                    continue
                used += 1
                # Exact duplicates: the same text in every required column. A 64-bit hash keeps
                # memory at one int per row (a false match needs a collision, p ≈ rows² / 2⁶⁵).
                digest = hash(row_key(row))
                if digest in seen:
                    duplicates += 1
                else:
                    seen.add(digest)
        except csv.Error as exc:
            raise csv.Error(f"line {reader.line_num}: {exc}") from exc
        result.rows_read, result.rows_used, result.duplicate_rows = read, used, duplicates
        return result

    def _wrong_width(self, row: list[str], reader: CsvReader) -> None:
        self.result.rows_invalid += 1
        self._problem(f"line {reader.line_num}", f"expected {self.width} cells, got {len(row)}")

    def _fault(
        self, row: list[str], faults: list[tuple[_Column, str]], reader: CsvReader, used: int
    ) -> bool:
        """Roll the row back and count it as dropped or invalid; True for a blank row."""
        result = self.result
        for numbers in result.numbers.values():
            del numbers[used:]
        for texts in result.texts.values():
            del texts[used:]
        if not "".join(row).strip():
            return True
        line = reader.line_num
        invalid = False
        for column, cell in faults:
            if cell.strip():
                invalid = True
                self._problem(f"line {line}.{column.name}", column.problem(cell))
                counts, first = result.invalid, result.invalid_lines
            else:
                counts, first = result.missing, result.missing_lines
            counts[column.name] += 1
            lines = first.setdefault(column.name, [])
            if len(lines) < _FIRST_LINES:
                lines.append(line)
        if invalid:
            result.rows_invalid += 1
        else:
            result.rows_dropped += 1
        return False

    def _problem(self, where: str, problem: str) -> None:
        if len(self.result.problems) < MAX_REPORTED:
            self.result.problems.append(Problem(where, problem))
