"""Training data: parse a CSV (optionally gzip), validate it, and report on it.

``inspect_csv`` reads the whole file in one pass and returns a ``DataReport`` for a person to
read (the retrainer writes it as JSON next to every upload), plus the ``Dataset`` when the file
is accepted. ``parse_csv`` is the strict form: the dataset, or a ``DataValidationError`` carrying
the report. A file with an invalid cell is rejected whole (training on silently dropped rows is
worse than not training); a row with an empty cell is dropped and counted, as long as every
column's missing rate stays within ``validation.max_missing_rate``. A number is valid when it
is within its declared bounds and within ``±MAX_MAGNITUDE``, the largest float64 whose square is
finite: scaling squares deviations and the metrics square errors, so a larger value (a price
of 1e300) would make them infinite and the failure surface later, far from its cause.

The checks, in report order: ``size``, ``format``, ``required_columns``, ``cells``,
``missing_values``, ``min_rows``, ``duplicates``, ``constant_columns``, ``categories``,
``target`` and (for classification) ``class_balance``. When ``size``, ``format`` or
``required_columns`` fails, the checks after it cannot run and are left out of the report: its
last check is the failed one.
Every other check always runs, so a rejected file's report shows everything wrong with it.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import hashlib
import io
import math
import operator
import sys
import zlib
from array import array
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import numpy.typing as npt

from mlops.domain.config import ModelConfig, ValidationConfig
from mlops.errors import DataValidationError, Problem

if TYPE_CHECKING:
    from _csv import Reader as CsvReader

MAX_REPORTED = 50
MAX_MAGNITUDE = math.sqrt(sys.float_info.max)  # ≈ 1.34e154, the largest with a finite square
Status = Literal["pass", "warn", "fail"]

_GZIP_MAGIC = b"\x1f\x8b"
_READ_CHUNK = 1 << 20
_FIRST_LINES = 3  # line numbers quoted per column in the missing-values and target details
_LISTED_CLASSES = 10
# Files people upload by mistake, by their first bytes. ASCII-only signatures that a CSV header
# could start with (Parquet's "PAR1", bzip2's "BZh") are checked more strictly in _binary_kind.
_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"%PDF-", "a PDF document"),
    (b"PK\x03\x04", "a ZIP archive (an Excel .xlsx workbook is one: export the sheet as CSV)"),
    (b"PK\x05\x06", "an empty ZIP archive"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "a legacy Excel (.xls) workbook or other OLE2 file"),
    (b"\xfd7zXZ\x00", "an xz-compressed file (only gzip is supported)"),
    (b"\x28\xb5\x2f\xfd", "a zstd-compressed file (only gzip is supported)"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (b"SQLite format 3\x00", "an SQLite database"),
)


@dataclass(frozen=True)
class Dataset:
    """Validated training data: feature columns in config order, target, provenance."""

    columns: dict[str, npt.NDArray[Any]]
    target: npt.NDArray[Any]
    rows: int
    sha256: str

    def matrix(self, names: list[str]) -> npt.NDArray[Any]:
        """A 2-D object array in ``names`` order, the shape the training pipeline takes."""
        return np.column_stack([self.columns[n].astype(object) for n in names])

    def take(self, index: npt.NDArray[np.intp]) -> Dataset:
        return Dataset(
            columns={k: v[index] for k, v in self.columns.items()},
            target=self.target[index],
            rows=len(index),
            sha256=self.sha256,
        )

    @classmethod
    def concat(cls, parts: Sequence[Dataset]) -> Dataset:
        """Several files as one training window: rows in ``parts`` order.

        The window's sha256 is the sha256 of the parts' hex digests joined (64 characters
        each, so the join is unambiguous): it names the exact files and their order.
        """
        if not parts:
            raise ValueError("concat needs at least one dataset")
        names = list(parts[0].columns)
        for part in parts[1:]:
            if list(part.columns) != names:
                raise ValueError(f"columns differ: {names} and {list(part.columns)}")
        joined = "".join(part.sha256 for part in parts)
        return cls(
            columns={n: np.concatenate([part.columns[n] for part in parts]) for n in names},
            target=np.concatenate([part.target for part in parts]),
            rows=sum(part.rows for part in parts),
            sha256=hashlib.sha256(joined.encode("ascii")).hexdigest(),
        )


@dataclass(frozen=True)
class Check:
    """One named check of a training file and what it found, in words with the numbers."""

    name: str
    status: Status
    detail: str

    def as_dict(self) -> dict[str, str]:
        return {"name": self.name, "status": self.status, "detail": self.detail}


@dataclass(frozen=True)
class DataReport:
    """Everything checked on one training file, accepted or rejected.

    ``problems`` lists what is wrong, addressed by column (a required column missing from the
    header, a column over the missing-value limit) or by ``line N.column`` (an invalid cell;
    ``line N`` for a row with the wrong number of cells, N being the record's last physical
    line), at most ``MAX_REPORTED``; the summary and ``stats`` carry the full counts.
    """

    passed: bool
    summary: str
    checks: tuple[Check, ...]
    problems: tuple[Problem, ...]
    stats: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        """JSON-serialisable, with the same keys for every report."""
        return {
            "passed": self.passed,
            "summary": self.summary,
            "checks": [c.as_dict() for c in self.checks],
            "problems": [p.as_dict() for p in self.problems],
            "stats": self.stats,
        }


def parse_csv(data: bytes, config: ModelConfig) -> Dataset:
    """The dataset in ``data``, or ``DataValidationError`` with the report (``.report``)."""
    dataset, report = inspect_csv(data, config)
    if dataset is None:
        failed = [Problem(c.name, c.detail) for c in report.checks if c.status == "fail"]
        raise DataValidationError(
            report.summary, list(report.problems) or failed, report=report.as_dict()
        )
    return dataset


def inspect_csv(data: bytes, config: ModelConfig) -> tuple[Dataset | None, DataReport]:
    """Check ``data`` (CSV bytes, gzip detected by magic number) against ``config``.

    Returns the dataset (rows with an empty cell dropped) only when every check passes or
    warns, and always the report.
    """
    report = _ReportBuilder(len(data), hashlib.sha256(data).hexdigest())
    try:
        text = _check_size(data, config.validation.max_bytes, report)
        reader, header = _check_format(text, config, report)
        columns = _check_required_columns(header, config, report)
        scan = _Scanner(columns, len(header)).scan(reader)
    except _EarlyCheckFailedError:
        return None, report.build()
    except csv.Error as exc:
        # A cell over csv's field size limit, in practice an unclosed quote that swallows the
        # rest of the file: the format check fails after all, and nothing after it is reported.
        report.checks = [c for c in report.checks if c.name == "size"]
        report.problems.clear()
        report.fail("format", f"not a readable CSV file: {exc} (an unclosed quote?)")
        return None, report.build()
    dataset = _check_rows(scan, config, report)
    built = report.build()
    if not built.passed or dataset is None:
        return None, built
    return Dataset(dataset.columns, dataset.target, dataset.rows, report.sha256), built


class _EarlyCheckFailedError(Exception):
    """An early check failed: the checks after it cannot run."""


@dataclass
class _ReportBuilder:
    stored_bytes: int
    sha256: str
    checks: list[Check] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    stats: dict[str, Any] = field(init=False)

    def __post_init__(self) -> None:
        # Every key is present in every report, rejected early or not.
        self.stats = {
            "bytes": self.stored_bytes,
            "uncompressed_bytes": None,
            "compression": None,
            "sha256": self.sha256,
            "rows_read": 0,
            "rows_used": 0,
            "rows_dropped": 0,
            "rows_invalid": 0,
            "duplicate_rows": 0,
            "columns": {},
            "class_counts": None,
        }

    def add(self, name: str, status: Status, detail: str) -> None:
        self.checks.append(Check(name, status, detail))

    def fail(self, name: str, detail: str) -> None:
        self.add(name, "fail", detail)

    def stop(self, name: str, detail: str) -> _EarlyCheckFailedError:
        self.fail(name, detail)
        return _EarlyCheckFailedError(detail)

    def build(self) -> DataReport:
        failed = [c.detail for c in self.checks if c.status == "fail"]
        warnings = sum(c.status == "warn" for c in self.checks)
        if failed:
            summary = "rejected: " + "; ".join(failed)
        else:
            used, dropped = self.stats["rows_used"], self.stats["rows_dropped"]
            summary = f"accepted: {used:,} rows"
            if dropped:
                summary += f" ({dropped:,} dropped for empty cells)"
            summary += f", {_plural(warnings, 'warning')}" if warnings else ", no warnings"
        return DataReport(
            passed=not failed,
            summary=summary,
            checks=tuple(self.checks),
            problems=tuple(self.problems[:MAX_REPORTED]),
            stats=self.stats,
        )


# --- size and format: what the bytes are, before any row is read ---------------------------


def _check_size(data: bytes, max_bytes: int, report: _ReportBuilder) -> bytes:
    """The CSV bytes, decompressed if gzip; a gzip bomb is stopped past ``max_bytes``."""
    limit = f"the limit of {max_bytes:,} bytes (validation.max_bytes)"
    if len(data) > max_bytes:
        raise report.stop("size", f"the file is {len(data):,} bytes, above {limit}")
    if data[:2] != _GZIP_MAGIC:
        report.stats["uncompressed_bytes"] = len(data)
        report.add("size", "pass", f"{len(data):,} bytes, within {limit}")
        return data
    report.stats["compression"] = "gzip"
    chunks: list[bytes] = []
    total = 0
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(data)) as stream:
            # Never more than max_bytes + 1 bytes inflated: enough to know the limit is passed.
            while chunk := stream.read(min(_READ_CHUNK, max_bytes + 1 - total)):
                total += len(chunk)
                if total > max_bytes:
                    raise report.stop(
                        "size",
                        f"decompressed, the file is more than {max_bytes:,} bytes, above "
                        f"{limit} ({len(data):,} bytes stored; reading stopped there)",
                    )
                chunks.append(chunk)
    except EOFError:
        report.add("size", "pass", f"{len(data):,} bytes stored, within {limit}")
        raise report.stop(
            "format", "not a valid gzip file: it ends before its compressed data does (truncated?)"
        ) from None
    except (OSError, zlib.error) as exc:
        report.add("size", "pass", f"{len(data):,} bytes stored, within {limit}")
        raise report.stop("format", f"not a valid gzip file ({exc})") from None
    report.stats["uncompressed_bytes"] = total
    report.add(
        "size",
        "pass",
        f"{len(data):,} bytes stored, {total:,} decompressed, within {limit}",
    )
    return b"".join(chunks)


def _check_format(
    text: bytes, config: ModelConfig, report: _ReportBuilder
) -> tuple[CsvReader, list[str]]:
    """A csv reader positioned after the header, and the header (names stripped)."""
    compressed = " (gzip-compressed)" if report.stats["compression"] else ""
    kind = _binary_kind(text)
    if kind:
        raise report.stop("format", f"not a CSV file: {kind}")
    reader = csv.reader(io.TextIOWrapper(io.BytesIO(text), encoding="utf-8-sig", newline=""))
    header: list[str] = []
    try:
        for row in reader:  # leading blank lines are skipped
            header = [name.strip() for name in row]
            if any(header):
                break
    except csv.Error as exc:
        raise csv.Error(f"line {reader.line_num}: {exc}") from exc
    if not any(header):
        raise report.stop("format", "the file is empty" if not text.strip() else "no header row")
    hint = _delimiter_hint(header)
    wanted = {*config.feature_names, config.target}
    if hint is None and not wanted <= set(header):
        first = text.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
        looks = {b"{": "JSON", b"[": "JSON", b"<": "HTML or XML"}.get(first)
        if looks:
            hint = f"not a CSV file: it looks like {looks}"
    if hint:
        raise report.stop("format", hint)
    report.add(
        "format",
        "pass",
        f"a UTF-8, comma-delimited CSV file{compressed} with {_plural(len(header), 'column')}",
    )
    return reader, header


def _binary_kind(data: bytes) -> str | None:
    """Why ``data`` is not CSV text, in words; None when it is UTF-8 text."""
    if not data:
        return None
    for magic, name in _MAGIC:
        if data.startswith(magic):
            return f"it looks like {name}"
    if data.startswith(b"BZh") and data[4:10] == b"1AY&SY":
        return "it looks like a bzip2-compressed file (only gzip is supported)"
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return 'it is UTF-16 text (Excel\'s "Unicode Text"): export it as "CSV UTF-8"'
    nul = data.find(b"\x00")
    bad_utf8 = None if data.isascii() else _first_invalid_utf8(data)
    if data.startswith(b"PAR1") and (data.endswith(b"PAR1") or nul >= 0 or bad_utf8 is not None):
        return "it looks like a Parquet file"
    if nul >= 0:
        return f"it looks like binary data (it contains NUL bytes, the first at byte {nul:,})"
    if bad_utf8 is None:
        return None
    sample = data[:4096]
    controls = sum(b < 32 and b not in b"\t\r\n" for b in sample)
    if controls > len(sample) // 20:
        return "it looks like binary data (it is not UTF-8 text)"
    line = data.count(b"\n", 0, bad_utf8) + 1
    return (
        f"it is not UTF-8 text (byte 0x{data[bad_utf8]:02x} on line {line:,} is not valid "
        "UTF-8, as in Latin-1 or Windows-1252 text): export it as UTF-8"
    )


def _first_invalid_utf8(data: bytes) -> int | None:
    """The offset of the first byte that is not UTF-8, decoding in bounded chunks."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    view = memoryview(data)
    for start in range(0, len(data), _READ_CHUNK):
        try:
            decoder.decode(view[start : start + _READ_CHUNK], final=False)
        except UnicodeDecodeError as exc:
            # exc.start counts from the bytes the decoder still held from the previous chunk.
            held = len(decoder.getstate()[0])
            return max(start - held + exc.start, 0)
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return len(data) - len(decoder.getstate()[0])
    return None


def _delimiter_hint(header: list[str]) -> str | None:
    if len(header) != 1:
        return None
    semicolons, tabs = header[0].count(";"), header[0].count("\t")
    if semicolons > tabs:
        return "the file looks semicolon-delimited; export it with commas as the delimiter"
    if tabs:
        return "the file looks tab-delimited; export it with commas as the delimiter"
    return None


# --- columns and rows ------------------------------------------------------------------------


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
        if self.min is not None and number < self.min:
            return f"{number:g} is below the declared min {self.min:g}"
        if self.max is not None and number > self.max:
            return f"{number:g} is above the declared max {self.max:g}"
        return (
            f"{number:g} is beyond ±{MAX_MAGNITUDE:.3g}, where its square overflows float64 "
            "(scaling and the error metrics square numbers)"
        )


def _check_required_columns(
    header: list[str], config: ModelConfig, report: _ReportBuilder
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
            parts.append(f"{len(missing)} required column(s) missing: {_listed(missing)}")
        if repeated:
            parts.append(f"duplicated column name(s) in the header: {_listed(repeated)}")
        raise report.stop("required_columns", "; ".join(parts))
    extra = [name or "(unnamed)" for name in header if name not in wanted]
    detail = f"all {len(wanted)} required columns present"
    if extra:
        detail += f"; {_plural(len(extra), 'extra column')} ignored: {_listed(extra)}"
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
class _Scan:
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


class _Scanner:
    """One pass over the rows with the stdlib csv reader.

    The hot path parses each required cell once and appends it to its column; a row with an
    empty or invalid cell is rare, so its cells are appended anyway and rolled back.
    """

    def __init__(self, columns: list[_Column], width: int) -> None:
        self.columns = columns
        self.width = width
        self.result = _Scan(
            numbers={c.name: array("d") for c in columns if c.numeric},
            texts={c.name: [] for c in columns if not c.numeric},
        )

    def scan(self, reader: CsvReader) -> _Scan:
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


@dataclass(frozen=True)
class _Rows:
    columns: dict[str, npt.NDArray[Any]]
    target: npt.NDArray[Any]
    rows: int


def _check_rows(scan: _Scan, config: ModelConfig, report: _ReportBuilder) -> _Rows | None:
    """The checks on rows and columns (all of them run); the rows used."""
    limits = config.validation
    stats = report.stats
    stats.update(
        rows_read=scan.rows_read,
        rows_used=scan.rows_used,
        rows_dropped=scan.rows_dropped,
        rows_invalid=scan.rows_invalid,
        duplicate_rows=scan.duplicate_rows,
    )
    values: dict[str, npt.NDArray[Any]] = {
        name: np.frombuffer(numbers, dtype=np.float64) if numbers else np.empty(0)
        for name, numbers in scan.numbers.items()
    }
    values.update({name: np.asarray(texts, dtype=object) for name, texts in scan.texts.items()})
    names = [*config.feature_names, config.target]
    distinct = {name: _distinct(values[name], scan.texts.get(name)) for name in names}
    stats["columns"] = {
        name: _column_stats(name, values[name], scan, distinct[name]) for name in names
    }

    if scan.rows_invalid:
        report.fail(
            "cells",
            f"{scan.rows_invalid:,} of {scan.rows_read:,} rows have invalid cells "
            f"(the first {MAX_REPORTED} problems are listed)",
        )
    else:
        report.add("cells", "pass", f"every filled cell of {scan.rows_read:,} rows is valid")
    _check_missing(scan, limits.max_missing_rate, report)

    minimum = config.training.min_rows
    if scan.rows_used < minimum:
        report.fail(
            "min_rows",
            f"{scan.rows_used:,} rows used, fewer than the minimum of {minimum:,} "
            "(training.min_rows)",
        )
    else:
        report.add("min_rows", "pass", f"{scan.rows_used:,} rows used, at least {minimum:,}")

    _check_duplicates(scan, limits.max_duplicate_rate, report)
    constant = [
        f"{name} = {_show(values[name][0])}" for name in config.feature_names if distinct[name] == 1
    ]
    if constant:
        report.add(
            "constant_columns",
            "warn",
            f"{_plural(len(constant), 'feature')} with a single value in every row "
            f"(they teach the model nothing): {', '.join(constant)}",
        )
    else:
        report.add("constant_columns", "pass", "every feature has more than one value")
    categorical = [f.name for f in config.features if f.type == "categorical"]
    _check_categories(
        {name: distinct[name] for name in categorical}, scan.rows_used, limits, report
    )

    target = values[config.target]
    if config.task == "classification":
        counts = Counter(scan.texts[config.target])
        stats["class_counts"] = dict(sorted(counts.items()))
        _check_classes(config.target, counts, limits.min_class_rows, report)
    elif scan.invalid[config.target]:
        report.fail(
            "target",
            f"{_plural(scan.invalid[config.target], 'row')} with an invalid target "
            f"{config.target} (first at {_lines(scan.invalid_lines[config.target])}): "
            f"a regression target is a finite number within ±{MAX_MAGNITUDE:.3g}",
        )
    elif distinct[config.target] == 1:
        report.fail(
            "target",
            f"the target {config.target} is {_show(target[0])} in every row: "
            "there is nothing to learn (a regressor needs at least 2 distinct values)",
        )
    elif scan.rows_used:
        report.add(
            "target",
            "pass",
            f"numeric target {config.target} from {_show(target.min())} to {_show(target.max())}",
        )
    else:
        report.add("target", "pass", f"numeric target {config.target}: no rows to check")

    if any(c.status == "fail" for c in report.checks):
        return None
    return _Rows({f.name: values[f.name] for f in config.features}, target, scan.rows_used)


def _check_missing(scan: _Scan, max_rate: float, report: _ReportBuilder) -> None:
    rates = {name: scan.missing[name] / scan.rows_read for name in scan.missing}
    over = [name for name, rate in rates.items() if rate > max_rate]
    limit = f"the limit of {_percent(max_rate)} (validation.max_missing_rate)"
    if over:
        described = [
            f"{name} is empty in {_percent(rates[name])} of rows "
            f"({scan.missing[name]:,} of {scan.rows_read:,})"
            for name in over
        ]
        # Column problems first: row problems can fill the cap, these say the most.
        report.problems[:0] = [
            Problem(name, f"{text}, above {limit}")
            for name, text in zip(over, described, strict=True)
        ]
        report.fail("missing_values", f"{'; '.join(described)}, above {limit}")
    elif scan.rows_dropped:
        worst = max(rates, key=lambda name: rates[name])
        report.add(
            "missing_values",
            "warn",
            f"{_plural(scan.rows_dropped, 'row')} with empty cells dropped "
            f"({_percent(scan.rows_dropped / scan.rows_read)} of {scan.rows_read:,}); "
            f"the highest missing rate is {worst}: {_percent(rates[worst])} "
            f"(first at {_lines(scan.missing_lines[worst])}), within {limit}",
        )
    else:
        report.add("missing_values", "pass", "no empty cells")
    report.problems.extend(scan.problems)


def _check_duplicates(scan: _Scan, max_rate: float, report: _ReportBuilder) -> None:
    if not scan.duplicate_rows:
        report.add("duplicates", "pass", "no duplicate rows")
        return
    rate = scan.duplicate_rows / scan.rows_used
    detail = (
        f"{scan.duplicate_rows:,} of {scan.rows_used:,} rows ({_percent(rate)}) repeat an "
        "earlier row exactly"
    )
    limit = f"the limit of {_percent(max_rate)} (validation.max_duplicate_rate)"
    if rate > max_rate:
        report.fail("duplicates", f"{detail}, above {limit}")
    else:
        report.add("duplicates", "warn", f"{detail}, within {limit}")


def _check_categories(
    distinct: dict[str, int], rows: int, limits: ValidationConfig, report: _ReportBuilder
) -> None:
    """Categorical features with nearly a value per row, or too many values to one-hot."""
    if not distinct:
        report.add("categories", "pass", "no categorical features")
        return
    if not rows:
        report.add("categories", "pass", "no rows to count categories in")
        return
    ratio, cap = limits.max_category_ratio, limits.max_categories
    refused = []
    for name, count in distinct.items():
        share = count / rows
        over: list[tuple[str, str]] = []  # (how far, the key that sets the limit)
        if share > ratio:
            over.append(
                (
                    f"{_percent(share)} of them, above the limit of {_percent(ratio)}",
                    "validation.max_category_ratio",
                )
            )
        if count > cap:
            over.append((f"above the limit of {cap:,}", "validation.max_categories"))
        if not over:
            continue
        why = " and ".join(f"{text} ({key})" for text, key in over)
        identifies = "it identifies rows rather than describing them, and " if share > ratio else ""
        refused.append(
            f"{name} has {count:,} distinct values in {rows:,} rows, {why}: {identifies}"
            f"one-hot encoding makes a column of each value; drop {name} from the features "
            f"or raise {' and '.join(key for _, key in over)}"
        )
    if refused:
        report.fail("categories", "; ".join(refused))
        return
    counts = ", ".join(f"{name} {count:,}" for name, count in distinct.items())
    report.add(
        "categories",
        "pass",
        f"distinct values per categorical feature: {counts}; within {_percent(ratio)} of "
        f"{rows:,} rows (validation.max_category_ratio) and {cap:,} (validation.max_categories)",
    )


def _check_classes(
    target: str, counts: Counter[str], min_class_rows: int, report: _ReportBuilder
) -> None:
    listed = ", ".join(f"{c} ({n:,})" for c, n in counts.most_common(_LISTED_CLASSES))
    if len(counts) > _LISTED_CLASSES:
        listed += f", and {len(counts) - _LISTED_CLASSES:,} more"
    if len(counts) < 2:
        found = f": {listed}" if counts else ""
        report.fail(
            "target",
            f"the target {target} has {_plural(len(counts), 'class', 'classes')}{found}; "
            "a classifier needs at least 2",
        )
    else:
        report.add("target", "pass", f"{len(counts):,} classes: {listed}")
    rare = sorted((n, c) for c, n in counts.items() if n < min_class_rows)
    if rare:
        named = ", ".join(f"{c!r} has {_plural(n, 'row')}" for n, c in rare)
        report.fail(
            "class_balance",
            f"class {named}, fewer than {min_class_rows:,} (validation.min_class_rows)",
        )
    else:
        smallest = f"; the smallest has {min(counts.values()):,}" if counts else ""
        report.add(
            "class_balance",
            "pass",
            f"every class has at least {min_class_rows:,} rows{smallest}",
        )


def _distinct(values: npt.NDArray[Any], texts: list[str] | None) -> int:
    if texts is not None:
        return len(set(texts))
    return int(np.unique(values).size)


def _column_stats(
    name: str, values: npt.NDArray[Any], scan: _Scan, distinct: int
) -> dict[str, Any]:
    """Missing rate over the rows read; the rest over the rows used."""
    missing = scan.missing[name]
    out: dict[str, Any] = {
        "missing": missing,
        "missing_rate": missing / scan.rows_read if scan.rows_read else 0.0,
        "distinct": distinct,
    }
    if name in scan.numbers:
        empty = not len(values)
        out["min"] = None if empty else float(values.min())
        out["max"] = None if empty else float(values.max())
        out["mean"] = None if empty else float(values.mean())
    return out


def _lines(first: list[int]) -> str:
    """``line 7`` or ``lines 2, 9, 16``: where the first few faults of a kind are."""
    return ("line " if len(first) == 1 else "lines ") + ", ".join(f"{n:,}" for n in first)


def _percent(rate: float) -> str:
    return f"{100 * rate:.3g}%"


def _plural(n: int, word: str, words: str | None = None) -> str:
    return f"{n:,} {word if n == 1 else (words or word + 's')}"


def _show(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float | np.floating) else repr(value)


def _listed(names: list[str]) -> str:
    """At most ``MAX_REPORTED`` names: a header of 30,000 columns must not make a 300 KB line."""
    more = len(names) - MAX_REPORTED
    return ", ".join(names[:MAX_REPORTED]) + (f" and {more} more" if more > 0 else "")
