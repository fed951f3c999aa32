"""Training data parsing: a bad file is rejected whole, with a report naming lines and
columns; the checks one by one, on their bounds, are in test_data_report.py."""

from __future__ import annotations

import gzip
import hashlib

import numpy as np
import pytest

from mlops.domain.config import ModelConfig
from mlops.domain.dataset import Dataset, inspect_csv, parse_csv
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
    assert caught.value.message.startswith("rejected: 3 of 1,500 rows have invalid cells")
    assert [(p.field, p.problem) for p in caught.value.details] == [
        ("line 4.sqft", "expected a number, got 'lots'"),
        ("line 6.bedrooms", "99 is above the declared max 20"),
        ("line 8", "expected 10 cells, got 11"),
    ]


def test_a_month_where_every_price_is_the_same_is_rejected(config: ModelConfig) -> None:
    # Given a generated month whose prices were all overwritten with 100000
    columns = generate(200, conditions_for_month(0), seed=1)
    columns["price"] = np.full(200, 100000.0)
    # When parsed, Then it is rejected by the target check, in words
    with pytest.raises(DataValidationError) as caught:
        parse_csv(csv_bytes(columns), config)
    assert caught.value.message == (
        "rejected: the target price is 100000 in every row: there is nothing to learn "
        "(a regressor needs at least 2 distinct values)"
    )


def test_a_price_of_1e300_is_rejected_naming_its_lines(
    config: ModelConfig, month0_csv: bytes
) -> None:
    # Given month 0 with two prices of 1e300 (RMSE would be infinite), on lines 3 and 11
    lines = month0_csv.decode().splitlines()
    for number in (2, 10):
        lines[number] = lines[number].rsplit(",", 1)[0] + ",1e300"
    # When parsed
    with pytest.raises(DataValidationError) as caught:
        parse_csv(("\n".join(lines) + "\n").encode(), config)
    # Then the rows and the field are named, in the summary and in the details
    assert "2 rows with an invalid target price (first at lines 3, 11)" in caught.value.message
    assert [p.field for p in caught.value.details] == ["line 3.price", "line 11.price"]


def test_a_location_unique_to_every_row_is_refused_before_any_fit(config: ModelConfig) -> None:
    # Given a month whose location is an identifier: a different value in every row
    columns = generate(200, conditions_for_month(0), seed=1)
    columns["location"] = np.array([f"parcel-{i}" for i in range(200)], dtype=object)
    # When inspected
    dataset, report = inspect_csv(csv_bytes(columns), config)
    # Then the categories check names the column, its count, the rows and what to do
    assert dataset is None
    assert "location has 200 distinct values in 200 rows, 100% of them" in report.summary
    assert "drop location from the features or raise validation.max_category_ratio" in (
        report.summary
    )


def test_five_locations_over_sixty_rows_pass(config: ModelConfig) -> None:
    columns = generate(60, conditions_for_month(0), seed=1)
    assert len(set(columns["location"])) == 5
    dataset, report = inspect_csv(csv_bytes(columns), config)
    assert report.passed, report.summary
    assert dataset is not None
    assert [c.status for c in report.checks if c.name == "categories"] == ["pass"]


def test_too_few_rows_is_rejected(config: ModelConfig) -> None:
    data = csv_bytes(generate(10, conditions_for_month(0), seed=1))
    with pytest.raises(DataValidationError, match="fewer than the minimum"):
        parse_csv(data, config)


@pytest.mark.parametrize("data", [b"", b"\x1f\x8bnot gzip", b"\xff\xfe\x00bad"])
def test_unreadable_files_are_rejected_by_the_format_check(
    config: ModelConfig, data: bytes
) -> None:
    with pytest.raises(DataValidationError) as caught:
        parse_csv(data, config)
    assert [p.field for p in caught.value.details] == ["format"]


def test_gzip_of_garbage_reports_the_header(config: ModelConfig) -> None:
    with pytest.raises(DataValidationError, match="required column"):
        parse_csv(gzip.compress(b"a,b\n1,2\n"), config)


def test_an_empty_cell_drops_its_row_under_the_missing_rate(
    config: ModelConfig, month0_csv: bytes
) -> None:
    # Given one empty location among 1,500 rows (0.07 %, under the 5 % limit)
    broken = month0_csv.replace(b"riverside", b"", 1)
    # When parsed
    data = parse_csv(broken, config)
    # Then the row is left out rather than the file rejected
    assert data.rows == 1499
    assert "" not in set(data.columns["location"])


def test_a_rejection_carries_the_full_report(config: ModelConfig) -> None:
    data = csv_bytes(generate(10, conditions_for_month(0), seed=1))
    with pytest.raises(DataValidationError) as caught:
        parse_csv(data, config)
    report = caught.value.report
    assert report is not None
    assert report["passed"] is False
    assert report["stats"]["rows_used"] == 10


def test_concat_joins_parts_in_order_with_a_window_digest(config: ModelConfig) -> None:
    # Given two parsed months
    first = parse_csv(csv_bytes(generate(60, conditions_for_month(0), seed=1)), config)
    second = parse_csv(csv_bytes(generate(70, conditions_for_month(1), seed=2)), config)
    # When concatenated
    window = Dataset.concat([first, second])
    # Then rows follow the parts' order and the digest names both parts in that order
    assert window.rows == 130
    np.testing.assert_array_equal(
        window.columns["sqft"], np.concatenate([first.columns["sqft"], second.columns["sqft"]])
    )
    np.testing.assert_array_equal(window.target[60:], second.target)
    assert list(window.columns) == config.feature_names
    expected = hashlib.sha256((first.sha256 + second.sha256).encode()).hexdigest()
    assert window.sha256 == expected
    assert Dataset.concat([second, first]).sha256 != expected


def test_concat_refuses_nothing_and_mismatched_columns(config: ModelConfig) -> None:
    part = parse_csv(csv_bytes(generate(60, conditions_for_month(0), seed=1)), config)
    other = Dataset(columns={"a": np.zeros(1)}, target=np.zeros(1), rows=1, sha256=part.sha256)
    with pytest.raises(ValueError, match="at least one"):
        Dataset.concat([])
    with pytest.raises(ValueError, match="columns differ"):
        Dataset.concat([part, other])
