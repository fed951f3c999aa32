"""How a query's answer prints, whichever engine ran it: JSON without NaN, CSV with NULLs."""

from __future__ import annotations

import json
from datetime import date

import pytest

from mlops.errors import ConfigError
from mlops_cli.emulator.target import Target
from mlops_cli.query.result import QueryResult
from mlops_cli.query.service import run_query


def result() -> QueryResult:
    return QueryResult(
        engine="duckdb",
        columns=["version", "rmse", "ok", "tags"],
        types=["varchar", "double", "boolean", "array(varchar)"],
        rows=[
            ["1", float("nan"), True, ["a"]],
            ["2", float("inf"), None, []],
            ["3", 0.1, False, None],
        ],
    )


def test_json_carries_non_finite_numbers_as_athena_prints_them() -> None:
    text = json.dumps(result().as_dict(), allow_nan=False)  # would raise on a NaN left in
    rows = json.loads(text)["rows"]
    assert [r[1] for r in rows] == ["NaN", "Infinity", 0.1]
    assert rows[0][3] == ["a"]


def test_csv_has_a_header_and_empty_cells_for_null() -> None:
    assert result().csv().splitlines() == [
        "version,rmse,ok,tags",
        '1,NaN,true,"[""a""]"',  # an array as JSON text, quoted as CSV quotes
        "2,Infinity,,[]",
        "3,0.1,false,",
    ]


@pytest.mark.parametrize("sql", ["", "  \n"])
def test_empty_sql_is_refused_before_any_engine(sql: str) -> None:
    with pytest.raises(ConfigError, match="no SQL"):
        run_query(Target({}, "t"), sql, deployed=False)


def test_since_on_a_deployed_stack_says_to_filter_in_the_sql() -> None:
    target = Target({"CaptureDatabaseName": "db", "QueryWorkGroupName": "wg"}, "stack s")
    with pytest.raises(ConfigError, match="filter on dt in the SQL"):
        run_query(target, "SELECT 1", deployed=True, since=date(2026, 11, 1))


def test_the_table_prints_every_cell_and_a_footer(capsys: pytest.CaptureFixture[str]) -> None:
    from mlops_cli.commands.query import _print_table

    answer = result()
    answer.stats = {"seconds": 1.5, "bytes_in_scope": 2_500_000}
    _print_table(answer)
    out = capsys.readouterr().out
    header, *lines = [line for line in out.splitlines() if line.strip()]
    assert header.split() == ["version", "rmse", "ok", "tags"]
    assert lines[1].split() == ["1", "NaN", "true", '["a"]']
    assert lines[2].split() == ["2", "Infinity", "NULL", "[]"]
    assert lines[-1] == "3 rows (duckdb, 1.5 s, 2.5 MB read)"
