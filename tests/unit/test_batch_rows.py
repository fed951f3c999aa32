"""Batch rows as validated columns: the training files' value rules, row by row and field by
field, for CSV cells and Distributed Map items alike."""

from __future__ import annotations

import csv
import io
import math

import numpy as np
import pytest

from mlops.domain.batch_rows import (
    ROW,
    RowPlan,
    chunk_from_cells,
    chunk_from_items,
)
from mlops.domain.dataset_scan import MAX_MAGNITUDE, Scanner, _Column
from mlops.domain.schema import Feature, Signature
from mlops.errors import DataValidationError

SIGNATURE = Signature(
    (
        Feature("sqft", "numeric", min=200.0, max=20000.0),
        Feature("rate", "numeric"),
        Feature("location", "categorical"),
    )
)
HEADER = ["id", "sqft", "rate", "location", "price"]


def plan(id_column: str | None = None) -> RowPlan:
    return RowPlan.from_header(HEADER, SIGNATURE, id_column)


def row(sqft: str = "1000", rate: str = "5", location: str = "riverside") -> list[str]:
    return ["a", sqft, rate, location, "1"]


def accepted_for_training(sqft: str, rate: str, location: str) -> bool:
    """Whether the training scan uses a row with these cells (the rule batch rows mirror)."""
    columns = [
        _Column("sqft", 1, True, 200.0, 20000.0),
        _Column("rate", 2, True),
        _Column("location", 3, False),
    ]
    text = io.StringIO()
    csv.writer(text).writerow(row(sqft, rate, location))
    scan = Scanner(columns, len(HEADER)).scan(csv.reader(io.StringIO(text.getvalue())))
    return scan.rows_used == 1


CELLS = [
    ("1000", "5", "riverside"),
    (" 1000 ", "5", "riverside"),  # padded: float() reads it
    ("1e3", "5", "riverside"),
    ("1_000", "5", "riverside"),  # Python's float reads underscores (FACTS: pandas does not)
    ("١٢٠٠", "5", "riverside"),  # Arabic-Indic digits, as training reads them
    ("200", "5", "riverside"),  # on the min
    ("20000", "5", "riverside"),  # on the max
    (repr(math.nextafter(200.0, 0)), "5", "riverside"),  # one past the min
    (repr(math.nextafter(20000.0, math.inf)), "5", "riverside"),  # one past the max
    ("1000", repr(MAX_MAGNITUDE), "riverside"),  # on the magnitude limit
    ("1000", "1e155", "riverside"),  # past it
    ("1000", "-1e155", "riverside"),
    ("1000", "nan", "riverside"),
    ("1000", "inf", "riverside"),
    ("1000", "", "riverside"),
    ("1000", "abc", "riverside"),
    ("1000", "0x10", "riverside"),
    ("1000", "5", ""),
    ("1000", "5", "   "),
    ("1000", "5", " downtown "),
    ("1000", "5", "never seen"),  # unseen categories are scored, as at /predict
]


@pytest.mark.parametrize(("sqft", "rate", "location"), CELLS)
def test_a_row_is_scored_exactly_when_a_training_file_may_hold_it(
    sqft: str, rate: str, location: str
) -> None:
    chunk = chunk_from_cells([row(sqft, rate, location)], 1, plan())
    assert bool(chunk.valid[0]) == accepted_for_training(sqft, rate, location)
    assert chunk.scored + chunk.rejected == 1
    assert len(chunk.rejections) == (0 if chunk.valid[0] else 1)


def test_columns_hold_the_valid_rows_parsed_as_training_parses_them() -> None:
    rows = [row("1_000", " 2.5 ", " downtown "), row("abc"), row("300", "7", "x")]
    chunk = chunk_from_cells(rows, 11, plan())
    assert chunk.valid.tolist() == [True, False, True]
    assert chunk.columns["sqft"].tolist() == [1000.0, 300.0]
    assert chunk.columns["rate"].tolist() == [2.5, 7.0]
    assert chunk.columns["location"].tolist() == ["downtown", "x"]  # stripped, as training
    assert chunk.rows.tolist() == [11, 12, 13]
    assert chunk.ids == ["11", "12", "13"]


def test_every_problem_names_its_row_field_and_reason() -> None:
    rows = [
        row("150", "nan", ""),
        ["too", "short"],
        [],
        row(),
    ]
    chunk = chunk_from_cells(rows, 1, plan())
    found = [(r.row, r.field, r.code) for r in chunk.rejections]
    assert found == [
        (1, "sqft", "below_min"),
        (1, "rate", "not_finite"),
        (1, "location", "empty"),
        (2, ROW, "wrong_width"),
        (3, ROW, "wrong_width"),
    ]
    assert chunk.valid.tolist() == [False, False, False, True]
    assert "150 is below the declared min 200" in chunk.rejections[0].reason
    assert "2 fields, the header has 5" in chunk.rejections[3].reason
    assert "blank line" in chunk.rejections[4].reason


def test_the_id_column_is_echoed_for_every_row() -> None:
    rows = [row(), ["b", "x", "1", "y", "2"], ["c-short"], []]
    chunk = chunk_from_cells(rows, 1, plan("id"))
    # a short row still shows its id; a blank line, which holds none, its row number
    assert chunk.ids == ["a", "b", "c-short", "4"]


def test_map_items_validate_like_csv_cells() -> None:
    items = [
        {"id": "a", "sqft": "1000", "rate": "5", "location": "riverside"},
        {"id": "b", "sqft": "1000", "location": "riverside"},  # rate missing: empty
        "not an object",
        {"id": "d", "sqft": 1500, "rate": "5", "location": "x", "extra": "ignored"},
    ]
    chunk = chunk_from_items(items, [5, 6, 7, 8], plan("id"))
    assert chunk.valid.tolist() == [True, False, False, True]
    assert [(r.row, r.field, r.code) for r in chunk.rejections] == [
        (6, "rate", "empty"),
        (7, ROW, "wrong_width"),
    ]
    assert chunk.ids == ["a", "b", "7", "d"]
    assert chunk.columns["sqft"].tolist() == [1000.0, 1500.0]


def test_a_lone_surrogate_in_a_map_item_is_rejected() -> None:
    chunk = chunk_from_items([{"sqft": "1000", "rate": "1", "location": "\ud800"}], [1], plan())
    assert [(r.field, r.code) for r in chunk.rejections] == [("location", "invalid_text")]


@pytest.mark.parametrize(
    ("header", "id_column", "says"),
    [
        (["sqft", "rate"], None, "location"),
        (["sqft", "rate", "location", "sqft"], None, "2 times"),
        (HEADER, "loan", "loan"),
    ],
)
def test_a_header_that_cannot_be_scored_names_what_is_missing(
    header: list[str], id_column: str | None, says: str
) -> None:
    with pytest.raises(DataValidationError) as raised:
        RowPlan.from_header(header, SIGNATURE, id_column)
    assert says in str(raised.value)


def test_a_byte_order_mark_is_not_part_of_the_first_name() -> None:
    found = RowPlan.from_header(["\ufeffsqft", "rate", "location"], SIGNATURE)
    assert found.positions == (0, 1, 2)


def test_a_chunk_of_every_valid_row_keeps_its_arrays() -> None:
    chunk = chunk_from_cells([row()] * 3, 1, plan())
    assert chunk.columns["sqft"].dtype == np.float64
    assert chunk.columns["location"].dtype == object
    assert (chunk.scored, chunk.rejected, chunk.rejections) == (3, 0, [])
