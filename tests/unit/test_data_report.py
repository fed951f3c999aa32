"""The data report: every check on its bound and one past it, and every format case in words."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import math
import tracemalloc
import zipfile
from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import pytest

from mlops.domain.config import ModelConfig, TrainingConfig, ValidationConfig
from mlops.domain.dataset import inspect_csv, parse_csv
from mlops.domain.dataset_report import MAX_REPORTED, DataReport
from mlops.domain.dataset_scan import MAX_MAGNITUDE
from mlops.domain.schema import Feature
from mlops.errors import DataValidationError

MIN_ROWS = 10
# A small regression: x numeric within [0, 100], c categorical, y numeric target.
REGRESSION = ModelConfig(
    name="small",
    task="regression",
    target="y",
    features=(Feature("x", "numeric", min=0.0, max=100.0), Feature("c", "categorical")),
    training=TrainingConfig(min_rows=MIN_ROWS),
    validation=ValidationConfig(
        max_bytes=1 << 20, max_missing_rate=0.05, max_duplicate_rate=0.5, min_class_rows=5
    ),
)
CLASSIFICATION = replace(REGRESSION, name="labels", task="classification", target="label")
HEADER = "x,c,y"
Row = Sequence[object]


def distinct_rows(n: int) -> list[Row]:
    """``n`` different valid rows; c alternates so no feature is constant."""
    return [(i / 10, "ab"[i % 2], 1000 + i) for i in range(n)]


def table(rows: Sequence[Row], header: str = HEADER) -> bytes:
    lines = [header, *(",".join(str(v) for v in row) for row in rows)]
    return ("\n".join(lines) + "\n").encode()


def check(report: DataReport, name: str) -> tuple[str, str]:
    found = [c for c in report.checks if c.name == name]
    assert found, f"no {name} check in {[c.name for c in report.checks]}"
    return found[0].status, found[0].detail


def status(report: DataReport, name: str) -> str:
    return check(report, name)[0]


def with_limits(config: ModelConfig, **limits: float) -> ModelConfig:
    return replace(config, validation=replace(config.validation, **limits))


# --- size --------------------------------------------------------------------------------------


def test_a_file_of_exactly_max_bytes_passes_and_one_byte_more_fails() -> None:
    # Given a valid file and limits at its size and one byte under it
    data = table(distinct_rows(20))
    at_limit = with_limits(REGRESSION, max_bytes=len(data))
    under = with_limits(REGRESSION, max_bytes=len(data) - 1)
    # When inspected
    _, fits = inspect_csv(data, at_limit)
    _, too_big = inspect_csv(data, under)
    # Then only the file over the limit is refused, by size alone
    assert status(fits, "size") == "pass"
    assert fits.passed
    assert [(c.name, c.status) for c in too_big.checks] == [("size", "fail")]
    assert f"{len(data):,} bytes, above the limit of {len(data) - 1:,}" in too_big.summary


def test_decompressed_gzip_of_exactly_max_bytes_passes_and_one_byte_more_fails() -> None:
    plain = table(distinct_rows(20))
    packed = gzip.compress(plain)
    _, fits = inspect_csv(packed, with_limits(REGRESSION, max_bytes=len(plain)))
    _, too_big = inspect_csv(packed, with_limits(REGRESSION, max_bytes=len(plain) - 1))
    assert fits.passed
    assert fits.stats["uncompressed_bytes"] == len(plain)
    assert status(too_big, "size") == "fail"
    assert "decompressed, the file is more than" in too_big.summary


def test_a_gzip_bomb_is_stopped_without_inflating_it() -> None:
    # Given 64 MiB of zeros compressed to a few dozen KiB, and a 1 MiB limit
    bomb = gzip.compress(b"0" * (64 << 20), compresslevel=9)
    config = with_limits(REGRESSION, max_bytes=1 << 20)
    # When inspected, with memory traced
    tracemalloc.start()
    try:
        _, report = inspect_csv(bomb, config)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # Then it fails on size, having held a few MiB at most, never the 64 MiB
    assert [(c.name, c.status) for c in report.checks] == [("size", "fail")]
    assert peak < 8 << 20, f"peak {peak:,} bytes"


# --- format ------------------------------------------------------------------------------------


def zip_bytes() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("data.csv", table(distinct_rows(20)))
    return buffer.getvalue()


PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x02"
PARQUET = b"PAR1\x15\x04\x15\x10\x15\x14L\x15\x04\x15\x00\x12\x00\x00\x08\x1c\x00\x00PAR1"


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"", "the file is empty"),
        (b"\n\r\n  \n", "the file is empty"),
        (PNG, "not a CSV file: it looks like a PNG image"),
        (PARQUET, "not a CSV file: it looks like a Parquet file"),
        (zip_bytes(), "not a CSV file: it looks like a ZIP archive"),
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj", "not a CSV file: it looks like a PDF document"),
        (b"x,c,y\n1,\x00\x01\x02,3\n", "not a CSV file: it looks like binary data"),
        ("x,c,y\n1,a,2\n".encode("utf-16"), "not a CSV file: it is UTF-16 text"),
        (
            "x,c,y\n1,a,2\n2,café,3\n".encode("latin-1"),
            "not a CSV file: it is not UTF-8 text (byte 0xe9 on line 3",
        ),
        (
            b"x;c;y\n1;a;2\n",
            "the file looks semicolon-delimited; export it with commas as the delimiter",
        ),
        (b"x\tc\ty\n1\ta\t2\n", "the file looks tab-delimited; export it with commas"),
        (b'[{"x": 1, "c": "a", "y": 2}]', "not a CSV file: it looks like JSON"),
        (b"\x1f\x8b\x08\x00garbage", "not a valid gzip file"),
        (gzip.compress(table(distinct_rows(20)))[:-30], "not a valid gzip file"),
        (gzip.compress(PNG), "not a CSV file: it looks like a PNG image"),
        (
            table(distinct_rows(3)) + b'1,"never closed,2\n' + b"z" * 200_000,
            "not a readable CSV file: line 6: field larger than field limit",
        ),
    ],
    ids=[
        "empty",
        "blank-lines",
        "png",
        "parquet",
        "zip",
        "pdf",
        "nul-bytes",
        "utf16",
        "latin1",
        "semicolons",
        "tabs",
        "json",
        "corrupt-gzip",
        "truncated-gzip",
        "gzipped-png",
        "unclosed-quote",
    ],
)
def test_a_file_that_is_not_csv_is_named_in_plain_words(data: bytes, expected: str) -> None:
    # When a file that is not a comma CSV is inspected
    dataset, report = inspect_csv(data, REGRESSION)
    # Then the format check fails in words, the checks after it do not run, nothing is parsed
    assert dataset is None
    assert [c.name for c in report.checks] == ["size", "format"]
    assert report.checks[-1].status == "fail"
    assert expected in report.checks[-1].detail
    assert report.summary == f"rejected: {report.checks[-1].detail}"
    assert "codec" not in report.summary


def test_a_utf8_bom_and_crlf_lines_as_excel_writes_them_are_accepted() -> None:
    data = b"\xef\xbb\xbf" + table(distinct_rows(20)).replace(b"\n", b"\r\n")
    dataset, report = inspect_csv(data, REGRESSION)
    assert report.passed, report.summary
    assert dataset is not None
    assert dataset.rows == 20


def test_a_header_only_file_has_zero_rows() -> None:
    _, report = inspect_csv(table([]), REGRESSION)
    assert status(report, "format") == "pass"
    assert check(report, "min_rows") == (
        "fail",
        f"0 rows used, fewer than the minimum of {MIN_ROWS} (training.min_rows)",
    )


# --- required columns --------------------------------------------------------------------------


def test_missing_required_columns_are_listed_in_order() -> None:
    _, report = inspect_csv(table([(1,)] * 20, header="c"), REGRESSION)
    assert report.summary == "rejected: 2 required column(s) missing: x, y"
    assert [p.field for p in report.problems] == ["x", "y"]
    assert report.checks[-1].name == "required_columns"


def test_a_duplicated_column_name_fails() -> None:
    rows = [(*row, 5) for row in distinct_rows(20)]
    _, report = inspect_csv(table(rows, header="x,c,y,x"), REGRESSION)
    assert check(report, "required_columns") == (
        "fail",
        "duplicated column name(s) in the header: x",
    )


def test_extra_columns_are_named_and_ignored() -> None:
    rows = [(i, *row, "note") for i, row in enumerate(distinct_rows(20))]
    dataset, report = inspect_csv(table(rows, header="id,x,c,y,comment"), REGRESSION)
    assert check(report, "required_columns") == (
        "pass",
        "all 3 required columns present; 2 extra columns ignored: id, comment",
    )
    assert dataset is not None
    assert list(dataset.columns) == ["x", "c"]


# --- cells -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cell", "problem"),
    [
        ("lots", "expected a number, got 'lots'"),
        ("nan", "expected a finite number, got 'nan'"),
        ("-inf", "expected a finite number, got '-inf'"),
        ("1e400", "expected a finite number, got '1e400'"),
        ("-0.5", "-0.5 is below the declared min 0"),
        ("100.5", "100.5 is above the declared max 100"),
    ],
)
def test_an_invalid_number_rejects_the_file_naming_line_and_column(cell: str, problem: str) -> None:
    # Given an invalid x on the fourth line (the third row)
    rows = distinct_rows(20)
    rows[2] = (cell, "a", 5)
    # When inspected
    dataset, report = inspect_csv(table(rows), REGRESSION)
    # Then the file is rejected and the problem addressed
    assert dataset is None
    assert status(report, "cells") == "fail"
    assert [(p.field, p.problem) for p in report.problems] == [("line 4.x", problem)]


def test_numbers_on_their_declared_bounds_and_any_category_text_are_valid() -> None:
    rows = [*distinct_rows(20), (0, "anything at all", 1), (100, "ünïcode", 2)]
    dataset, report = inspect_csv(table(rows), REGRESSION)
    assert status(report, "cells") == "pass"
    assert dataset is not None
    assert dataset.columns["x"].min() == 0.0
    assert dataset.columns["x"].max() == 100.0


def test_a_regression_target_must_be_a_number() -> None:
    rows = distinct_rows(20)
    rows[0] = (1, "a", "cheap")
    _, report = inspect_csv(table(rows), REGRESSION)
    assert [(p.field, p.problem) for p in report.problems] == [
        ("line 2.y", "expected a number, got 'cheap'")
    ]


# The largest float64 whose square is finite, and the next one up (its square overflows).
AT_MAGNITUDE = repr(MAX_MAGNITUDE)
PAST_MAGNITUDE = repr(math.nextafter(MAX_MAGNITUDE, math.inf))
UNBOUNDED = replace(REGRESSION, features=(Feature("x", "numeric"), Feature("c", "categorical")))


def test_the_magnitude_bound_is_the_largest_float64_whose_square_is_finite() -> None:
    assert math.isfinite(float(AT_MAGNITUDE) * float(AT_MAGNITUDE))
    assert float(PAST_MAGNITUDE) * float(PAST_MAGNITUDE) == math.inf


@pytest.mark.parametrize("cell", ["1e300", "-1e300", PAST_MAGNITUDE, f"-{PAST_MAGNITUDE}"])
def test_a_target_whose_square_overflows_rejects_the_file_naming_line_and_column(
    cell: str,
) -> None:
    # Given a target past ±1.34e154 on the fourth line (the metrics square errors: RMSE = inf)
    rows = distinct_rows(20)
    rows[2] = (1, "a", cell)
    # When inspected
    dataset, report = inspect_csv(table(rows), REGRESSION)
    # Then the file is rejected, the cell addressed, and the target check names line and field
    assert dataset is None
    assert [(p.field, p.problem) for p in report.problems] == [
        (
            "line 4.y",
            f"{float(cell):g} is beyond ±1.34e+154, where its square overflows float64 "
            "(scaling and the error metrics square numbers)",
        )
    ]
    assert check(report, "target") == (
        "fail",
        "1 row with an invalid target y (first at line 4): a regression target is a finite "
        "number within ±1.34e+154",
    )


@pytest.mark.parametrize("cell", ["inf", "-inf", "nan", "NaN", "1e309", "Infinity"])
def test_a_target_that_is_not_finite_rejects_the_file_naming_line_and_column(cell: str) -> None:
    rows = distinct_rows(20)
    rows[2] = (1, "a", cell)
    dataset, report = inspect_csv(table(rows), REGRESSION)
    assert dataset is None
    assert [(p.field, p.problem) for p in report.problems] == [
        ("line 4.y", f"expected a finite number, got {cell!r}")
    ]
    assert status(report, "target") == "fail"
    assert "invalid target y (first at line 4)" in report.summary


def test_every_overflowing_target_row_is_listed_and_the_first_three_summarised() -> None:
    # Given four huge prices among 30 rows, on lines 3, 9, 15 and 21
    rows = distinct_rows(30)
    for i in (1, 7, 13, 19):
        rows[i] = (1, "a", "1e300")
    _, report = inspect_csv(table(rows), REGRESSION)
    assert [p.field for p in report.problems] == ["line 3.y", "line 9.y", "line 15.y", "line 21.y"]
    assert check(report, "target")[1].startswith(
        "4 rows with an invalid target y (first at lines 3, 9, 15)"
    )
    assert report.summary.startswith("rejected: 4 of 30 rows have invalid cells")


@pytest.mark.parametrize("sign", ["", "-"])
def test_a_target_exactly_at_the_magnitude_bound_is_valid(sign: str) -> None:
    rows = distinct_rows(20)
    rows[2] = (1, "a", sign + AT_MAGNITUDE)
    dataset, report = inspect_csv(table(rows), REGRESSION)
    assert report.passed, report.summary
    assert dataset is not None
    assert float(sign + AT_MAGNITUDE) in dataset.target


@pytest.mark.parametrize(
    ("config", "cell"),
    [
        (UNBOUNDED, "1e300"),
        (UNBOUNDED, f"-{PAST_MAGNITUDE}"),
        # A declared bound wider than the magnitude bound does not widen it.
        (
            replace(
                UNBOUNDED, features=(Feature("x", "numeric", max=1e300), UNBOUNDED.features[1])
            ),
            "1e200",
        ),
    ],
    ids=["unbounded", "unbounded-negative", "declared-wider"],
)
def test_a_numeric_feature_whose_square_overflows_is_invalid(
    config: ModelConfig, cell: str
) -> None:
    # Scaling squares deviations: var = inf leaves the column unscaled, then float32 makes it inf
    rows = distinct_rows(20)
    rows[2] = (cell, "a", 5)
    dataset, report = inspect_csv(table(rows), config)
    assert dataset is None
    assert [(p.field, p.problem) for p in report.problems] == [
        (
            "line 4.x",
            f"{float(cell):g} is beyond ±1.34e+154, where its square overflows float64 "
            "(scaling and the error metrics square numbers)",
        )
    ]
    assert status(report, "target") == "pass"


@pytest.mark.parametrize("sign", ["", "-"])
def test_an_unbounded_feature_exactly_at_the_magnitude_bound_is_valid(sign: str) -> None:
    rows = distinct_rows(20)
    rows[2] = (sign + AT_MAGNITUDE, "a", 5)
    dataset, report = inspect_csv(table(rows), UNBOUNDED)
    assert report.passed, report.summary
    assert dataset is not None


def test_a_row_with_the_wrong_number_of_cells_is_invalid() -> None:
    lines = table(distinct_rows(20)).decode().splitlines()
    lines[5] += ",extra"
    _, report = inspect_csv("\n".join(lines).encode(), REGRESSION)
    assert [(p.field, p.problem) for p in report.problems] == [
        ("line 6", "expected 3 cells, got 4")
    ]
    assert report.stats["rows_invalid"] == 1


def test_problems_are_capped_and_the_count_is_in_the_summary() -> None:
    rows = [(f"bad{i}", "a", i) for i in range(MAX_REPORTED + 10)]
    _, report = inspect_csv(table(rows), REGRESSION)
    assert len(report.problems) == MAX_REPORTED
    assert report.summary.startswith("rejected: 60 of 60 rows have invalid cells")


def test_the_other_checks_still_run_when_cells_are_invalid() -> None:
    rows = distinct_rows(20)
    rows[0] = ("bad", "a", 1)
    _, report = inspect_csv(table(rows), REGRESSION)
    assert [c.name for c in report.checks] == [
        "size",
        "format",
        "required_columns",
        "cells",
        "missing_values",
        "min_rows",
        "duplicates",
        "constant_columns",
        "categories",
        "target",
    ]


# --- missing values ----------------------------------------------------------------------------


def rows_with_empty_x(empty: int, total: int = 100) -> list[Row]:
    rows = distinct_rows(total)
    for i in range(empty):
        rows[i * 7] = ("", *rows[i * 7][1:])
    return rows


def test_a_missing_rate_exactly_at_the_limit_drops_rows_with_a_warning() -> None:
    # Given 5 empty x in 100 rows: 5 %, the limit
    dataset, report = inspect_csv(table(rows_with_empty_x(5)), REGRESSION)
    # Then the rows are dropped and counted, and the file accepted
    assert status(report, "missing_values") == "warn"
    assert dataset is not None
    assert dataset.rows == 95
    assert report.stats["rows_dropped"] == 5
    assert report.stats["columns"]["x"]["missing_rate"] == 0.05
    assert report.summary == "accepted: 95 rows (5 dropped for empty cells), 1 warning"


def test_a_missing_rate_one_row_over_the_limit_fails_naming_the_column() -> None:
    dataset, report = inspect_csv(table(rows_with_empty_x(6)), REGRESSION)
    assert dataset is None
    assert check(report, "missing_values") == (
        "fail",
        "x is empty in 6% of rows (6 of 100), above the limit of 5% (validation.max_missing_rate)",
    )
    assert report.problems[0].field == "x"


def test_the_missing_warning_says_where_the_empty_cells_are() -> None:
    _, report = inspect_csv(table(rows_with_empty_x(3)), REGRESSION)
    assert check(report, "missing_values") == (
        "warn",
        "3 rows with empty cells dropped (3% of 100); the highest missing rate is x: 3% "
        "(first at lines 2, 9, 16), within the limit of 5% (validation.max_missing_rate)",
    )


def test_every_column_over_the_missing_limit_is_named_in_header_order() -> None:
    rows = [(*row[:2], "" if i % 10 == 0 else row[2]) for i, row in enumerate(rows_with_empty_x(6))]
    _, report = inspect_csv(table(rows), REGRESSION)
    assert [p.field for p in report.problems] == ["x", "y"]


def test_an_empty_target_counts_as_missing() -> None:
    rows = distinct_rows(100)
    rows[3] = (*rows[3][:2], "")
    dataset, report = inspect_csv(table(rows), REGRESSION)
    assert dataset is not None
    assert dataset.rows == 99
    assert report.stats["columns"]["y"]["missing"] == 1


def test_a_file_without_empty_cells_passes_the_missing_check() -> None:
    _, report = inspect_csv(table(distinct_rows(20)), REGRESSION)
    assert check(report, "missing_values") == ("pass", "no empty cells")


def test_blank_lines_and_rows_of_empty_cells_are_not_rows() -> None:
    lines = table(distinct_rows(20)).decode().splitlines()
    lines[4:4] = ["", ",,", "  ,  , "]
    dataset, report = inspect_csv("\n".join(lines).encode(), REGRESSION)
    assert report.stats["rows_read"] == 20
    assert dataset is not None
    assert dataset.rows == 20


# --- min rows ----------------------------------------------------------------------------------


def test_exactly_min_rows_passes() -> None:
    dataset, report = inspect_csv(table(distinct_rows(MIN_ROWS)), REGRESSION)
    assert status(report, "min_rows") == "pass"
    assert dataset is not None


def test_one_row_under_min_rows_fails() -> None:
    dataset, report = inspect_csv(table(distinct_rows(MIN_ROWS - 1)), REGRESSION)
    assert dataset is None
    assert report.summary == (
        f"rejected: {MIN_ROWS - 1} rows used, fewer than the minimum of {MIN_ROWS} "
        "(training.min_rows)"
    )


def test_rows_dropped_for_empty_cells_do_not_count_towards_min_rows() -> None:
    rows = [*distinct_rows(MIN_ROWS - 1), ("", "a", 1)]
    _, report = inspect_csv(table(rows), with_limits(REGRESSION, max_missing_rate=0.2))
    assert status(report, "min_rows") == "fail"


# --- duplicates --------------------------------------------------------------------------------


def with_copies(unique: int, copies: int) -> list[Row]:
    rows = distinct_rows(unique)
    return rows + [rows[0]] * copies


def test_a_duplicate_rate_exactly_at_the_limit_warns() -> None:
    # Given 50 rows that repeat an earlier one, in 100: 50 %, the limit
    dataset, report = inspect_csv(table(with_copies(50, 50)), REGRESSION)
    assert report.stats["duplicate_rows"] == 50
    assert status(report, "duplicates") == "warn"
    assert dataset is not None


def test_a_duplicate_rate_one_row_over_the_limit_fails() -> None:
    dataset, report = inspect_csv(table(with_copies(49, 51)), REGRESSION)
    assert dataset is None
    assert check(report, "duplicates") == (
        "fail",
        "51 of 100 rows (51%) repeat an earlier row exactly, above the limit of 50% "
        "(validation.max_duplicate_rate)",
    )


def test_rows_differing_only_in_an_ignored_column_are_duplicates() -> None:
    rows = [(i, *row) for i, row in enumerate(with_copies(20, 1))]
    _, report = inspect_csv(table(rows, header="id,x,c,y"), REGRESSION)
    assert report.stats["duplicate_rows"] == 1


def test_no_duplicates_passes() -> None:
    _, report = inspect_csv(table(distinct_rows(20)), REGRESSION)
    assert check(report, "duplicates") == ("pass", "no duplicate rows")


# --- constant columns and target ---------------------------------------------------------------


def test_a_constant_feature_warns_naming_it_and_its_value() -> None:
    rows = [(x, "same", y) for x, _, y in distinct_rows(20)]
    dataset, report = inspect_csv(table(rows), REGRESSION)
    assert check(report, "constant_columns") == (
        "warn",
        "1 feature with a single value in every row (they teach the model nothing): c = 'same'",
    )
    assert dataset is not None


def test_a_constant_regression_target_fails_naming_its_value() -> None:
    # Given every price the same (an upload where every price = 100000 was promoted)
    rows = [(x, c, 100000) for x, c, _ in distinct_rows(20)]
    # When inspected
    dataset, report = inspect_csv(table(rows), REGRESSION)
    # Then the file is rejected: a regressor fitted on one value learns nothing
    assert dataset is None
    assert check(report, "target") == (
        "fail",
        "the target y is 100000 in every row: there is nothing to learn "
        "(a regressor needs at least 2 distinct values)",
    )


def test_a_regression_target_with_two_values_passes() -> None:
    rows = [(x, c, 100000) for x, c, _ in distinct_rows(20)]
    rows[-1] = (*rows[-1][:2], 100001)
    dataset, report = inspect_csv(table(rows), REGRESSION)
    assert check(report, "target") == ("pass", "numeric target y from 100000 to 100001")
    assert dataset is not None


def labelled(counts: dict[str, int]) -> bytes:
    labels = [label for label, n in counts.items() for _ in range(n)]
    rows = [(i / 10, "ab"[i % 2], label) for i, label in enumerate(labels)]
    return table(rows, header="x,c,label")


def test_classification_needs_two_classes() -> None:
    dataset, report = inspect_csv(labelled({"yes": 20}), CLASSIFICATION)
    assert dataset is None
    assert check(report, "target") == (
        "fail",
        "the target label has 1 class: yes (20); a classifier needs at least 2",
    )


def test_a_class_with_exactly_min_class_rows_passes() -> None:
    dataset, report = inspect_csv(labelled({"yes": 20, "no": 5}), CLASSIFICATION)
    assert status(report, "class_balance") == "pass"
    assert report.stats["class_counts"] == {"no": 5, "yes": 20}
    assert dataset is not None
    assert sorted(set(dataset.target)) == ["no", "yes"]


def test_a_class_one_row_under_min_class_rows_fails_naming_it() -> None:
    dataset, report = inspect_csv(labelled({"yes": 20, "no": 4}), CLASSIFICATION)
    assert dataset is None
    assert check(report, "class_balance") == (
        "fail",
        "class 'no' has 4 rows, fewer than 5 (validation.min_class_rows)",
    )


# --- categories --------------------------------------------------------------------------------


def with_categories(distinct: int, rows: int = 20) -> bytes:
    """``rows`` valid rows whose category c takes exactly ``distinct`` values."""
    return table([(x, f"v{i % distinct}", y) for i, (x, _, y) in enumerate(distinct_rows(rows))])


def test_a_few_categories_over_many_rows_pass_with_their_counts() -> None:
    # Given 5 locations over 60 rows
    dataset, report = inspect_csv(with_categories(5, rows=60), REGRESSION)
    assert check(report, "categories") == (
        "pass",
        "distinct values per categorical feature: c 5; within 50% of 60 rows "
        "(validation.max_category_ratio) and 1,000 (validation.max_categories)",
    )
    assert dataset is not None


def test_categories_exactly_at_the_ratio_pass_and_one_more_value_fails() -> None:
    # Given 20 rows and the default ratio of 0.5: 10 distinct values is the limit
    at_limit, report = inspect_csv(with_categories(10), REGRESSION)
    over, refused = inspect_csv(with_categories(11), REGRESSION)
    # Then 10 pass and 11 are refused, naming the column, both counts and what to do
    assert status(report, "categories") == "pass"
    assert at_limit is not None
    assert over is None
    assert check(refused, "categories") == (
        "fail",
        "c has 11 distinct values in 20 rows, 55% of them, above the limit of 50% "
        "(validation.max_category_ratio): it identifies rows rather than describing them, and "
        "one-hot encoding makes a column of each value; drop c from the features or raise "
        "validation.max_category_ratio",
    )


def test_a_category_per_row_is_refused_and_passes_with_the_ratio_raised() -> None:
    # Given c unique in every row (an identifier)
    data = with_categories(20)
    _, refused = inspect_csv(data, REGRESSION)
    # When the config raises the ratio to 1, the same file passes
    dataset, accepted = inspect_csv(data, with_limits(REGRESSION, max_category_ratio=1.0))
    assert status(refused, "categories") == "fail"
    assert "c has 20 distinct values in 20 rows, 100% of them" in refused.summary
    assert accepted.passed, accepted.summary
    assert dataset is not None


def test_categories_exactly_at_max_categories_pass_and_one_more_fails() -> None:
    # Given a cap of 4 values (and the ratio far away: 5 of 40 rows)
    capped = with_limits(REGRESSION, max_categories=4)
    at_limit, report = inspect_csv(with_categories(4, rows=40), capped)
    over, refused = inspect_csv(with_categories(5, rows=40), capped)
    assert status(report, "categories") == "pass"
    assert at_limit is not None
    assert over is None
    assert check(refused, "categories") == (
        "fail",
        "c has 5 distinct values in 40 rows, above the limit of 4 (validation.max_categories): "
        "one-hot encoding makes a column of each value; drop c from the features or raise "
        "validation.max_categories",
    )
    # And raising the cap lets the same file through
    assert inspect_csv(with_categories(5, rows=40), with_limits(capped, max_categories=5))[0]


def test_a_column_over_both_category_limits_names_both_keys() -> None:
    _, report = inspect_csv(with_categories(20), with_limits(REGRESSION, max_categories=10))
    assert check(report, "categories")[1].endswith(
        "drop c from the features or raise validation.max_category_ratio and "
        "validation.max_categories"
    )


def test_the_ratio_counts_the_rows_used_not_the_rows_read() -> None:
    # Given 10 distinct values in 21 rows read, one of them dropped for an empty x: 10 of 20
    rows = [(x, f"v{i % 10}", y) for i, (x, _, y) in enumerate(distinct_rows(20))]
    rows.append(("", "v0", 1))
    _, report = inspect_csv(table(rows), with_limits(REGRESSION, max_missing_rate=0.1))
    assert status(report, "categories") == "pass"
    assert "within 50% of 20 rows" in check(report, "categories")[1]


def test_regression_reports_no_class_balance() -> None:
    _, report = inspect_csv(table(distinct_rows(20)), REGRESSION)
    assert "class_balance" not in [c.name for c in report.checks]
    assert report.stats["class_counts"] is None


# --- the report as a document ------------------------------------------------------------------


def test_the_report_round_trips_through_json_with_the_same_keys_either_way() -> None:
    # Given an accepted and a rejected file
    _, accepted = inspect_csv(table(rows_with_empty_x(2)), REGRESSION)
    _, rejected = inspect_csv(b"", REGRESSION)
    # When serialised
    docs = [json.loads(json.dumps(r.as_dict(), allow_nan=False)) for r in (accepted, rejected)]
    # Then nothing is lost and both have the same keys
    assert docs[0] == accepted.as_dict()
    assert docs[0].keys() == docs[1].keys() == {"passed", "summary", "checks", "problems", "stats"}
    assert docs[0]["stats"].keys() == docs[1]["stats"].keys()
    assert docs[0]["stats"]["columns"]["x"]["missing"] == 2
    assert docs[1]["stats"]["sha256"] == hashlib.sha256(b"").hexdigest()


def test_column_stats_describe_the_rows_used() -> None:
    # Given 20 rows, one of them dropped for an empty x
    rows = [(10, "a", 1), (20, "b", 2), (30, "a", 3), *distinct_rows(20)[3:]]
    rows.append(("", "b", 4))
    # When inspected
    _, report = inspect_csv(table(rows), with_limits(REGRESSION, max_missing_rate=0.1))
    # Then the missing rate is over the rows read and the rest over the rows used
    x = report.stats["columns"]["x"]
    assert set(x) == {"missing", "missing_rate", "distinct", "min", "max", "mean"}
    assert x["missing_rate"] == 1 / 21
    assert set(report.stats["columns"]["c"]) == {"missing", "missing_rate", "distinct"}
    assert report.stats["columns"]["c"]["distinct"] == 2
    values = np.array([10, 20, 30, *(i / 10 for i in range(3, 20))])
    assert x["mean"] == pytest.approx(values.mean())
    assert (x["min"], x["max"]) == (values.min(), values.max())


def test_parse_csv_raises_with_the_report() -> None:
    data = table(distinct_rows(MIN_ROWS - 1))
    _, report = inspect_csv(data, REGRESSION)
    with pytest.raises(DataValidationError) as caught:
        parse_csv(data, REGRESSION)
    assert caught.value.report == report.as_dict()
    assert caught.value.message == report.summary
    # No row problems: the failed check itself is the detail
    assert [p.field for p in caught.value.details] == ["min_rows"]


def test_parse_csv_details_are_the_row_problems_when_there_are_some() -> None:
    rows = distinct_rows(20)
    rows[0] = ("bad", "a", 1)
    with pytest.raises(DataValidationError) as caught:
        parse_csv(table(rows), REGRESSION)
    assert [p.field for p in caught.value.details] == ["line 2.x"]
