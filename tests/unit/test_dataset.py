"""Training data validation: a bad file is rejected whole, with a report naming lines and
columns."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from mlops.domain.config import ModelConfig
from mlops.domain.dataset import parse_csv
from mlops.domain.synthetic import conditions_for_month, csv_bytes, generate
from mlops.errors import DataValidationError


def test_a_generated_month_parses_with_its_sha256(config: ModelConfig, month0_csv: bytes) -> None:
    data = parse_csv(month0_csv, config)
    assert data.rows == 1500
    assert data.columns["sqft"].dtype == np.float64
    assert set(data.columns["location"]) <= {
        "downtown",
        "riverside",
        "uptown",
        "suburbs",
        "countryside",
    }
    assert len(data.sha256) == 64


def test_gzip_is_detected_and_gives_the_same_rows(config: ModelConfig) -> None:
    columns = generate(200, conditions_for_month(0), seed=1)
    plain = parse_csv(csv_bytes(columns), config)
    packed = parse_csv(csv_bytes(columns, compress=True), config)
    assert packed.rows == plain.rows
    np.testing.assert_array_equal(packed.target, plain.target)


def test_missing_columns_are_named(config: ModelConfig, month0_csv: bytes) -> None:
    header, _, rest = month0_csv.partition(b"\n")
    header = header.replace(b"sqft,", b"").replace(b",price", b"")
    body = b"\n".join(b",".join(line.split(b",")[1:-1]) for line in rest.splitlines())
    with pytest.raises(DataValidationError) as caught:
        parse_csv(header + b"\n" + body, config)
    assert [p.field for p in caught.value.details] == ["sqft", "price"]


def test_bad_cells_reject_the_file_with_line_and_column(
    config: ModelConfig, month0_csv: bytes
) -> None:
    lines = month0_csv.decode().splitlines()
    header = lines[0].split(",")
    row = lines[3].split(",")
    row[header.index("sqft")] = "lots"
    lines[3] = ",".join(row)
    row = lines[5].split(",")
    row[header.index("bedrooms")] = "99"  # above the declared max of 20
    lines[5] = ",".join(row)
    lines[7] = lines[7] + ",extra"
    with pytest.raises(DataValidationError) as caught:
        parse_csv("\n".join(lines).encode(), config)
    assert caught.value.message == "3 of 1500 rows are invalid"
    assert [(p.field, p.problem) for p in caught.value.details] == [
        ("line 4.sqft", "expected a number, got 'lots'"),
        ("line 6.bedrooms", "99 is above the declared max 20"),
        ("line 8", "expected 10 cells, got 11"),
    ]


def test_too_few_rows_is_rejected(config: ModelConfig) -> None:
    data = csv_bytes(generate(10, conditions_for_month(0), seed=1))
    with pytest.raises(DataValidationError, match="fewer than the minimum"):
        parse_csv(data, config)


@pytest.mark.parametrize("data", [b"", b"\x1f\x8bnot gzip", b"\xff\xfe\x00bad"])
def test_unreadable_files_are_rejected(config: ModelConfig, data: bytes) -> None:
    with pytest.raises(DataValidationError):
        parse_csv(data, config)


def test_gzip_of_garbage_reports_the_header(config: ModelConfig) -> None:
    with pytest.raises(DataValidationError, match="required column"):
        parse_csv(gzip.compress(b"a,b\n1,2\n"), config)
