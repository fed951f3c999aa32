"""Training data: parse a CSV (optionally gzip) and validate it against the model config.

The whole file is checked before anything is trained, and a bad file is rejected with a report
(every problem up to a cap, plus counts) rather than trained on partially: a model trained on
silently dropped rows is worse than no new model.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from mlops.domain.config import ModelConfig
from mlops.errors import DataValidationError, Problem

MAX_REPORTED = 50


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


def parse_csv(data: bytes, config: ModelConfig) -> Dataset:
    """Parse and validate ``data`` (CSV bytes, gzip detected by magic number)."""
    sha = hashlib.sha256(data).hexdigest()
    reader = csv.reader(io.StringIO(_text(data)))
    header = [h.strip() for h in next(reader, None) or []]
    if not header:
        raise DataValidationError("the file is empty", [Problem("header", "no header row")])
    wanted = [*config.feature_names, config.target]
    missing = [name for name in wanted if name not in header]
    if missing:
        raise DataValidationError(
            f"{len(missing)} required column(s) missing",
            [Problem(name, "required column missing from the header") for name in missing],
        )
    values, rows = _read_rows(reader, header, wanted, config)
    if rows < config.training.min_rows:
        raise DataValidationError(
            f"{rows} rows is fewer than the minimum of {config.training.min_rows}",
            [Problem("rows", f"need at least {config.training.min_rows} rows")],
        )
    columns = {
        f.name: np.asarray(values[f.name], dtype=np.float64 if f.type == "numeric" else object)
        for f in config.features
    }
    target_dtype = np.float64 if config.task == "regression" else object
    target = np.asarray(values[config.target], dtype=target_dtype)
    if config.task == "classification" and len(set(target.tolist())) < 2:
        raise DataValidationError(
            "the target has a single class", [Problem(config.target, "need at least two classes")]
        )
    return Dataset(columns=columns, target=target, rows=rows, sha256=sha)


def _text(data: bytes) -> str:
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as exc:
            raise DataValidationError(f"not a valid gzip file: {exc}") from exc
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataValidationError(f"not UTF-8 text: {exc}") from exc


def _read_rows(
    reader: Iterator[list[str]], header: list[str], wanted: list[str], config: ModelConfig
) -> tuple[dict[str, list[Any]], int]:
    """Every row checked; raises with the report if any row is invalid."""
    index = {name: header.index(name) for name in wanted}
    features = {f.name: f for f in config.features}
    values: dict[str, list[Any]] = {name: [] for name in wanted}
    problems: list[Problem] = []
    bad = rows = 0
    for line_no, row in enumerate(reader, start=2):
        if not row or all(not c.strip() for c in row):
            continue
        rows += 1
        if len(row) != len(header):
            bad += 1
            _report(problems, f"line {line_no}", f"expected {len(header)} cells, got {len(row)}")
            continue
        parsed: dict[str, Any] = {}
        row_bad = False
        for name in wanted:
            feature = features.get(name)
            numeric = feature.type == "numeric" if feature else config.task == "regression"
            value, problem = _parse_cell(
                row[index[name]].strip(),
                numeric,
                feature.min if feature else None,
                feature.max if feature else None,
            )
            if problem:
                row_bad = True
                _report(problems, f"line {line_no}.{name}", problem)
            parsed[name] = value
        if row_bad:
            bad += 1
            continue
        for name in wanted:
            values[name].append(parsed[name])
    if bad:
        raise DataValidationError(f"{bad} of {rows} rows are invalid", problems)
    return values, rows


def _parse_cell(
    cell: str, numeric: bool, lo: float | None, hi: float | None
) -> tuple[Any, str | None]:
    if not cell:
        return None, "empty value"
    if not numeric:
        return cell, None
    try:
        number = float(cell)
    except ValueError:
        return None, f"expected a number, got {cell[:40]!r}"
    if not math.isfinite(number):
        return None, f"expected a finite number, got {cell!r}"
    if lo is not None and number < lo:
        return None, f"{number:g} is below the declared min {lo:g}"
    if hi is not None and number > hi:
        return None, f"{number:g} is above the declared max {hi:g}"
    return number, None


def _report(problems: list[Problem], where: str, problem: str) -> None:
    if len(problems) < MAX_REPORTED:
        problems.append(Problem(where, problem))
