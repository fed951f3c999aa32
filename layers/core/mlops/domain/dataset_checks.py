"""The checks on a scanned file's rows and columns: cells, missing values, row count,
duplicates, constant columns, categories and the target. Every one runs, so a rejected file's
report shows everything wrong with it."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from mlops.domain.config import ModelConfig, ValidationConfig
from mlops.domain.dataset_report import (
    MAX_REPORTED,
    ReportBuilder,
    line_numbers,
    percent,
    plural,
    show,
)
from mlops.domain.dataset_scan import MAX_MAGNITUDE, Scan
from mlops.errors import Problem

_LISTED_CLASSES = 10


@dataclass(frozen=True)
class _Rows:
    columns: dict[str, npt.NDArray[Any]]
    target: npt.NDArray[Any]
    rows: int


def check_rows(scan: Scan, config: ModelConfig, report: ReportBuilder) -> _Rows | None:
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
        f"{name} = {show(values[name][0])}" for name in config.feature_names if distinct[name] == 1
    ]
    if constant:
        report.add(
            "constant_columns",
            "warn",
            f"{plural(len(constant), 'feature')} with a single value in every row "
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
            f"{plural(scan.invalid[config.target], 'row')} with an invalid target "
            f"{config.target} (first at {line_numbers(scan.invalid_lines[config.target])}): "
            f"a regression target is a finite number within ±{MAX_MAGNITUDE:.3g}",
        )
    elif distinct[config.target] == 1:
        report.fail(
            "target",
            f"the target {config.target} is {show(target[0])} in every row: "
            "there is nothing to learn (a regressor needs at least 2 distinct values)",
        )
    elif scan.rows_used:
        report.add(
            "target",
            "pass",
            f"numeric target {config.target} from {show(target.min())} to {show(target.max())}",
        )
    else:
        report.add("target", "pass", f"numeric target {config.target}: no rows to check")

    if any(c.status == "fail" for c in report.checks):
        return None
    return _Rows({f.name: values[f.name] for f in config.features}, target, scan.rows_used)


def _check_missing(scan: Scan, max_rate: float, report: ReportBuilder) -> None:
    rates = {name: scan.missing[name] / scan.rows_read for name in scan.missing}
    over = [name for name, rate in rates.items() if rate > max_rate]
    limit = f"the limit of {percent(max_rate)} (validation.max_missing_rate)"
    if over:
        described = [
            f"{name} is empty in {percent(rates[name])} of rows "
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
            f"{plural(scan.rows_dropped, 'row')} with empty cells dropped "
            f"({percent(scan.rows_dropped / scan.rows_read)} of {scan.rows_read:,}); "
            f"the highest missing rate is {worst}: {percent(rates[worst])} "
            f"(first at {line_numbers(scan.missing_lines[worst])}), within {limit}",
        )
    else:
        report.add("missing_values", "pass", "no empty cells")
    report.problems.extend(scan.problems)


def _check_duplicates(scan: Scan, max_rate: float, report: ReportBuilder) -> None:
    if not scan.duplicate_rows:
        report.add("duplicates", "pass", "no duplicate rows")
        return
    rate = scan.duplicate_rows / scan.rows_used
    detail = (
        f"{scan.duplicate_rows:,} of {scan.rows_used:,} rows ({percent(rate)}) repeat an "
        "earlier row exactly"
    )
    limit = f"the limit of {percent(max_rate)} (validation.max_duplicate_rate)"
    if rate > max_rate:
        report.fail("duplicates", f"{detail}, above {limit}")
    else:
        report.add("duplicates", "warn", f"{detail}, within {limit}")


def _check_categories(
    distinct: dict[str, int], rows: int, limits: ValidationConfig, report: ReportBuilder
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
                    f"{percent(share)} of them, above the limit of {percent(ratio)}",
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
        f"distinct values per categorical feature: {counts}; within {percent(ratio)} of "
        f"{rows:,} rows (validation.max_category_ratio) and {cap:,} (validation.max_categories)",
    )


def _check_classes(
    target: str, counts: Counter[str], min_class_rows: int, report: ReportBuilder
) -> None:
    listed = ", ".join(f"{c} ({n:,})" for c, n in counts.most_common(_LISTED_CLASSES))
    if len(counts) > _LISTED_CLASSES:
        listed += f", and {len(counts) - _LISTED_CLASSES:,} more"
    if len(counts) < 2:
        found = f": {listed}" if counts else ""
        report.fail(
            "target",
            f"the target {target} has {plural(len(counts), 'class', 'classes')}{found}; "
            "a classifier needs at least 2",
        )
    else:
        report.add("target", "pass", f"{len(counts):,} classes: {listed}")
    rare = sorted((n, c) for c, n in counts.items() if n < min_class_rows)
    if rare:
        named = ", ".join(f"{c!r} has {plural(n, 'row')}" for n, c in rare)
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


def _column_stats(name: str, values: npt.NDArray[Any], scan: Scan, distinct: int) -> dict[str, Any]:
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
