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

import csv
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from mlops.domain.config import ModelConfig
from mlops.domain.dataset_checks import check_rows
from mlops.domain.dataset_format import check_format, check_size
from mlops.domain.dataset_report import DataReport, EarlyCheckFailedError, ReportBuilder
from mlops.domain.dataset_scan import Scanner, check_required_columns
from mlops.errors import DataValidationError, Problem


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
    report = ReportBuilder(len(data), hashlib.sha256(data).hexdigest())
    try:
        text = check_size(data, config.validation.max_bytes, report)
        reader, header = check_format(text, config, report)
        columns = check_required_columns(header, config, report)
        scan = Scanner(columns, len(header)).scan(reader)
    except EarlyCheckFailedError:
        return None, report.build()
    except csv.Error as exc:
        # A cell over csv's field size limit, in practice an unclosed quote that swallows the
        # rest of the file: the format check fails after all, and nothing after it is reported.
        report.checks = [c for c in report.checks if c.name == "size"]
        report.problems.clear()
        report.fail("format", f"not a readable CSV file: {exc} (an unclosed quote?)")
        return None, report.build()
    dataset = check_rows(scan, config, report)
    built = report.build()
    if not built.passed or dataset is None:
        return None, built
    return Dataset(dataset.columns, dataset.target, dataset.rows, report.sha256), built
