"""A CSV of instances read in chunks of columns: every row scored or reported with why."""

from __future__ import annotations

import io

import numpy as np
import pytest

from mlops.domain.csv_rows import CsvChunk, csv_chunks
from mlops.domain.schema import Feature, Signature
from mlops.errors import DataValidationError

SIGNATURE = Signature(
    (
        Feature("mean radius", "numeric", min=0.0, max=10.0),
        Feature("catégorie", "categorical"),
    )
)


def chunks(text: str, size: int = 100) -> list[CsvChunk]:
    return list(csv_chunks(io.StringIO(text), SIGNATURE, size))


def test_rows_become_columns_in_the_signature_s_order_whatever_the_header_order() -> None:
    (chunk,) = chunks("id,catégorie,mean radius\n7,a,1.5\n8,b,2\n")
    assert chunk.valid == [True, True]
    assert chunk.columns["mean radius"].dtype == np.float64
    assert chunk.columns["mean radius"].tolist() == [1.5, 2.0]
    assert chunk.columns["catégorie"].tolist() == ["a", "b"]
    assert chunk.lines == [2, 3]


@pytest.mark.parametrize(
    ("cell", "ok"),
    [("0", True), ("10", True), ("-0.0001", False), ("10.0001", False), ("nan", False)],
)
def test_declared_bounds_are_inclusive_and_one_past_is_reported(cell: str, ok: bool) -> None:
    (chunk,) = chunks(f"mean radius,catégorie\n{cell},a\n")
    assert chunk.valid == [ok]
    if not ok:
        assert chunk.problems[0].startswith("mean radius: ")


@pytest.mark.parametrize(
    ("row", "problem"),
    [
        ("abc,a", "mean radius: expected a number, got 'abc'"),
        (",a", "mean radius: expected a number, got ''"),
        ("1, ", "catégorie: empty"),
        ("1,a,extra", "3 fields, the header has 2"),
        ("inf,a", "mean radius: expected a finite number, got 'inf'"),
    ],
)
def test_a_bad_row_is_reported_and_the_rest_still_scored(row: str, problem: str) -> None:
    (chunk,) = chunks(f"mean radius,catégorie\n1,a\n{row}\n2,b\n")
    assert chunk.valid == [True, False, True]
    assert chunk.problems == {1: problem}
    assert chunk.columns["mean radius"].tolist() == [1.0, 2.0]  # only the valid rows


def test_chunks_hold_at_most_chunk_rows_and_keep_file_lines() -> None:
    body = "mean radius,catégorie\n" + "".join(f"{i},a\n" for i in range(5))
    got = chunks(body, size=2)
    assert [c.rows for c in got] == [2, 2, 1]
    assert [c.lines for c in got] == [[2, 3], [4, 5], [6]]


def test_a_header_without_a_feature_names_it() -> None:
    with pytest.raises(DataValidationError) as caught:
        chunks("radius,catégorie\n1,a\n")
    assert [p.field for p in caught.value.details] == ["mean radius"]


def test_an_empty_file_says_so_and_a_byte_order_mark_is_not_part_of_a_name() -> None:
    with pytest.raises(DataValidationError, match="empty"):
        chunks("")
    (chunk,) = chunks("\ufeffmean radius,catégorie\n1,a\n")
    assert chunk.valid == [True]


def test_a_quoted_cell_over_two_lines_keeps_every_row_on_its_own_first_line() -> None:
    got = chunks('mean radius,catégorie\n1,a\n2,"b\nc"\n3,d\n')
    assert [c.lines for c in got] == [[2, 3, 5]]


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b'mean radius,cat\xc3\xa9gorie\n1,"abc\n', "line 2: not a CSV row"),
        (b"mean radius,cat\xc3\xa9gorie\n1,\xff\n", "not UTF-8 text"),
        (b"mean radius,cat\xc3\xa9gorie\n1," + b"x" * 200_000 + b"\n", "line 2: not a CSV row"),
    ],
)
def test_a_file_that_is_not_csv_or_not_utf8_is_a_report_not_a_traceback(
    raw: bytes, message: str
) -> None:
    text = io.TextIOWrapper(io.BytesIO(raw), encoding="utf-8", newline="")
    with pytest.raises(DataValidationError, match=message):
        list(csv_chunks(text, SIGNATURE, 100))
