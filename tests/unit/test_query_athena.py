"""The Athena side of `mlops query`, against botocore's Stubber (every request and answer is
checked against Athena's service model): start in the workgroup, poll, page, type, fail."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from mlops.errors import StorageError
from mlops_cli.query.athena import AthenaQueryEngine, typed
from mlops_cli.query.result import (
    QueryError,
    QuerySyntaxError,
    ScanLimitError,
    UnknownTableError,
)

QID = "6f1c0b8e-0000-4000-8000-000000000001"
SQL = "SELECT version, count(*) AS n FROM captures WHERE model = 'm' GROUP BY 1"


class Clock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def athena() -> Iterator[tuple[Any, Stubber]]:
    client = boto3.client(
        "athena", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    with Stubber(client) as stub:
        yield client, stub
        stub.assert_no_pending_responses()


def engine(client: Any, clock: Clock, progress: list[str] | None = None) -> AthenaQueryEngine:
    return AthenaQueryEngine(
        client,
        workgroup="stack-queries",
        database="stack_monitoring",
        sleep=clock.sleep,
        clock=lambda: clock.now,
        progress=(progress.append if progress is not None else lambda _: None),
    )


def started(stub: Stubber) -> None:
    stub.add_response(
        "start_query_execution",
        {"QueryExecutionId": QID},
        {
            "QueryString": SQL,
            "WorkGroup": "stack-queries",
            "QueryExecutionContext": {"Database": "stack_monitoring"},
        },
    )


def state(
    stub: Stubber, name: str, *, reason: str = "", category: int | None = None, scanned: int = 0
) -> None:
    status: dict[str, Any] = {"State": name}
    if reason:
        status["StateChangeReason"] = reason
    if category is not None:
        status["AthenaError"] = {
            "ErrorCategory": category,
            "ErrorType": 1000,
            "ErrorMessage": reason,
        }
    stub.add_response(
        "get_query_execution",
        {
            "QueryExecution": {
                "QueryExecutionId": QID,
                "Status": status,
                "Statistics": {"DataScannedInBytes": scanned, "EngineExecutionTimeInMillis": 1200},
                "ResultConfiguration": {"OutputLocation": f"s3://results/results/{QID}.csv"},
            }
        },
        {"QueryExecutionId": QID},
    )


def page(
    stub: Stubber, rows: list[list[str | None]], *, token: str | None, after: str | None
) -> None:
    answer: dict[str, Any] = {
        "ResultSet": {
            "Rows": [{"Data": [{} if v is None else {"VarCharValue": v} for v in r]} for r in rows],
            "ResultSetMetadata": {
                "ColumnInfo": [
                    {"Name": "version", "Type": "varchar"},
                    {"Name": "n", "Type": "bigint"},
                ]
            },
        }
    }
    if token:
        answer["NextToken"] = token
    expected: dict[str, Any] = {"QueryExecutionId": QID, "MaxResults": 1000}
    if after:
        expected["NextToken"] = after
    stub.add_response("get_query_results", answer, expected)


def test_a_query_runs_in_the_workgroup_polls_and_pages_through_typed_rows(
    athena: tuple[Any, Stubber],
) -> None:
    client, stub = athena
    clock, progress = Clock(), []
    started(stub)
    state(stub, "QUEUED")
    state(stub, "RUNNING", scanned=5_000_000)
    state(stub, "SUCCEEDED", scanned=7_000_000)
    page(stub, [["version", "n"], ["1", "10"], ["2", None]], token="t1", after=None)
    page(stub, [["3", "30"]], token=None, after="t1")
    result = engine(client, clock, progress).run(SQL)
    assert result.engine == "athena"
    assert result.columns == ["version", "n"]
    assert result.types == ["varchar", "bigint"]
    # the header row of the first page is dropped; NULL stays None; bigint is an int
    assert result.rows == [["1", 10], ["2", None], ["3", 30]]
    assert result.stats["bytes_scanned"] == 7_000_000
    assert result.stats["query_execution_id"] == QID
    assert progress == ["queued: 0.0 s, 0.0 MB scanned", "running: 0.2 s, 5.0 MB scanned"]
    assert clock.sleeps == [0.25, 0.375]  # backing off


def test_the_bytes_scanned_cutoff_names_the_limit_and_the_fix(athena: tuple[Any, Stubber]) -> None:
    client, stub = athena
    started(stub)
    state(stub, "CANCELLED", reason="Query cancelled: bytes scanned limit was exceeded")
    stub.add_response(
        "get_work_group",
        {
            "WorkGroup": {
                "Name": "stack-queries",
                "Configuration": {"BytesScannedCutoffPerQuery": 10_000_000},
            }
        },
        {"WorkGroup": "stack-queries"},
    )
    with pytest.raises(
        ScanLimitError, match=r"10,000,000 bytes.*QueryBytesScannedCutoff.*filter on dt"
    ):
        engine(client, Clock()).run(SQL)


@pytest.mark.parametrize(
    ("reason", "category", "error"),
    [
        ("line 1:1: mismatched input 'SELEC'", 2, QuerySyntaxError),
        (
            "TABLE_NOT_FOUND: line 1:15: Table 'awsdatacatalog.db.nope' does not exist",
            2,
            UnknownTableError,
        ),
        ("COLUMN_NOT_FOUND: line 1:8: Column 'x' cannot be resolved", 2, UnknownTableError),
        ("Internal error", 1, QueryError),
    ],
)
def test_failures_are_told_apart(
    athena: tuple[Any, Stubber], reason: str, category: int, error: type[Exception]
) -> None:
    client, stub = athena
    started(stub)
    state(stub, "FAILED", reason=reason, category=category)
    with pytest.raises(error, match=QID) as raised:
        engine(client, Clock()).run(SQL)
    assert reason in str(raised.value)
    if error is QueryError:
        assert not isinstance(raised.value, QuerySyntaxError | UnknownTableError)


def test_a_query_past_the_timeout_is_stopped(athena: tuple[Any, Stubber]) -> None:
    client, stub = athena
    clock = Clock()
    started(stub)
    for _ in range(3):
        state(stub, "RUNNING")
    stub.add_response("stop_query_execution", {}, {"QueryExecutionId": QID})
    query = engine(client, clock)
    query.timeout_s = 0.5  # 0.25 + 0.375 s of polling passes it on the third look
    with pytest.raises(QueryError, match="still running after 0 s: stopped"):
        query.run(SQL)


def test_a_refused_start_and_an_unreachable_athena_are_errors(athena: tuple[Any, Stubber]) -> None:
    client, stub = athena
    stub.add_client_error("start_query_execution", "InvalidRequestException", "Query exhausted")
    with pytest.raises(QuerySyntaxError, match="Athena refused the query: Query exhausted"):
        engine(client, Clock()).run(SQL)
    stub.add_client_error("start_query_execution", "AccessDeniedException", "not allowed", 400)
    with pytest.raises(StorageError, match="workgroup stack-queries: not allowed"):
        engine(client, Clock()).run(SQL)


@pytest.mark.parametrize(
    ("value", "sql_type", "expected"),
    [
        ("12", "bigint", 12),
        ("1.5", "double", 1.5),
        ("NaN", "double", "nan"),
        ("true", "boolean", True),
        ("false", "boolean", False),
        ("12.50", "decimal(10,2)", "12.50"),  # exact, as text
        ("x", "varchar", "x"),
        (None, "bigint", None),
    ],
)
def test_athena_strings_come_back_in_their_column_type(
    value: str | None, sql_type: str, expected: Any
) -> None:
    got = typed(value, sql_type)
    assert str(got) == str(expected) if expected == "nan" else got == expected


def test_the_service_runs_a_deployed_stacks_query_in_its_workgroup_and_database() -> None:
    # Given a deployed stack's outputs (moto's Athena: it records queries, runs no SQL)
    from mlops_cli.emulator.target import Target
    from mlops_cli.query.service import run_query
    from tests.conftest import moto_resources

    with moto_resources():
        athena = boto3.client("athena")
        athena.create_work_group(
            Name="stack-queries",
            Configuration={"ResultConfiguration": {"OutputLocation": "s3://results/results/"}},
        )
        target = Target(
            {"CaptureDatabaseName": "stack_monitoring", "QueryWorkGroupName": "stack-queries"},
            "stack s",
        )
        # When `mlops query --stack s` runs
        result = run_query(target, SQL, deployed=True)
        # Then Athena ran it in the stack's workgroup, against the stack's database
        execution = athena.get_query_execution(QueryExecutionId=result.stats["query_execution_id"])[
            "QueryExecution"
        ]
    assert result.engine == "athena"
    assert execution["Query"] == SQL
    assert execution["WorkGroup"] == "stack-queries"
    assert execution["QueryExecutionContext"] == {"Database": "stack_monitoring"}
