"""`mlops query`'s local engine: docs/query.md's SQL over objects the real prediction logger
wrote to moto's S3, with the Glue tables the template declares, checked against numpy."""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import pytest

from mlops.adapters import aws
from mlops.adapters.capture_store import CaptureStore
from mlops.adapters.model_store import ModelStore
from mlops.domain import capture
from mlops.domain.ids import uuid7s
from mlops.services.prediction_logger import LogEvent, PredictionLoggerService
from mlops_cli.emulator.sources.logs import log_event_id
from mlops_cli.emulator.template import Resolver, load_template, parameter_defaults
from mlops_cli.query.duckdb_engine import LocalQueryEngine
from mlops_cli.query.result import QuerySyntaxError, UnknownTableError
from tests.conftest import BUCKET, ROOT, moto_resources

MODEL = "house-prices"
DATABASE = "mlops_local_monitoring"
TODAY = date(2026, 12, 7)
TRAINED = ("downtown", "riverside", "uptown", "suburbs", "countryside")
DOCS = ROOT / "docs" / "query.md"


def doc_queries() -> list[str]:
    """The ```sql blocks of docs/query.md, in order: RMSE, coverage, unseen categories."""
    return re.findall(r"```sql\n(.*?)```", DOCS.read_text(), re.DOTALL)


def create_tables(glue: Any) -> None:
    """The template's Glue database and tables, resolved as the local stack resolves them."""
    template = load_template(ROOT / "template.yaml")
    resolver = Resolver(
        parameter_defaults(template),
        template.get("Conditions", {}),
        refs={"ArtifactsBucket": BUCKET, "CaptureDatabase": DATABASE},
    )
    glue.create_database(DatabaseInput={"Name": DATABASE})
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::Glue::Table":
            props = resolver.resolve(resource["Properties"])
            glue.create_table(DatabaseName=DATABASE, TableInput=props["TableInput"])


@dataclass
class Sent:
    """What the test sent, as a client would know it: the independent side of each check."""

    predictions: list[dict[str, Any]] = field(default_factory=list)  # id, version, dt, value...
    labels: dict[str, list[tuple[int, float]]] = field(default_factory=dict)  # id → (ts, actual)


def ms(day: date, hour: int, minute: int = 0) -> int:
    return int(datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC).timestamp() * 1000)


class Traffic:
    def __init__(self) -> None:
        s3 = aws.client("s3")
        self.logger = PredictionLoggerService(
            CaptureStore(BUCKET, s3), ModelStore(BUCKET, s3), model_name=MODEL
        )
        self.sent = Sent()
        self.rng = np.random.default_rng(5)

    def deliver(self, lines: list[str], ts: int) -> None:
        self.logger.store_batch([LogEvent(log_event_id(ts), ts, line) for line in lines])

    def predict(
        self, version: str, ts: int, locations: list[str], *, evaluation: bool = False
    ) -> list[str]:
        ids = uuid7s(ts, len(locations))
        values = [float(v) for v in self.rng.normal(400_000, 50_000, len(locations))]
        lines = capture.capture_lines(
            model=MODEL,
            version=version,
            alias="production",
            variant=None,
            request_id=ids[0],
            timestamp_ms=ts,
            latency_ms=0.5,
            instances=[{"sqft": 1500.0, "location": loc} for loc in locations],
            prediction_ids=ids,
            predictions=values,
            probabilities=None,
            evaluation=evaluation,
        )
        self.deliver(lines, ts)
        day = datetime.fromtimestamp(ts / 1000, UTC).date().isoformat()
        for pid, value, loc in zip(ids, values, locations, strict=True):
            self.sent.predictions.append(
                {
                    "id": pid,
                    "version": version,
                    "dt": day,
                    "value": value,
                    "location": loc,
                    "live": not evaluation,
                }
            )
        return ids

    def label(self, ts: int, labels: dict[str, float]) -> None:
        items = [{"prediction_id": pid, "actual": actual} for pid, actual in labels.items()]
        self.deliver(capture.feedback_line(model=MODEL, timestamp_ms=ts, items=items), ts)
        for pid, actual in labels.items():
            self.sent.labels.setdefault(pid, []).append((ts, actual))


@pytest.fixture(scope="module")
def stored(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Sent, Path]]:
    with moto_resources():
        create_tables(boto3.client("glue"))
        traffic = Traffic()
        rng = np.random.default_rng(9)
        days = [date(2026, 10, 31), date(2026, 11, 2), date(2026, 11, 3)]
        for d, day in enumerate(days):
            for version in ("1", "2"):
                for hour in (3, 17):
                    n = int(rng.integers(20, 40))
                    locations = [
                        str(rng.choice(TRAINED)) if rng.random() > 0.2 else "harbor"
                        for _ in range(n)
                    ]
                    if d == 2 and version == "2":
                        locations[:3] = ["lakeside"] * 3  # a second unseen category, rarer
                    ids = traffic.predict(version, ms(day, hour), locations)
                    chosen = [pid for pid in ids if rng.random() < 0.4]
                    actuals = {pid: float(rng.normal(400_000, 60_000)) for pid in chosen}
                    # Labels arrive the next day: their dt is after the prediction's.
                    traffic.label(ms(day + timedelta(days=1), 9), actuals)
        # Evaluation traffic, labelled: stored, but the queries count live traffic only.
        evaluation = traffic.predict("1", ms(days[1], 5), ["harbor"] * 6, evaluation=True)
        traffic.label(ms(days[1], 6), dict.fromkeys(evaluation, 1.0))
        # A prediction labelled twice: the later label counts.
        relabelled = traffic.sent.predictions[-10]["id"]
        traffic.label(ms(days[2], 20), {relabelled: 123_456.0})
        traffic.label(ms(days[2], 21), {relabelled: 654_321.0})
        # A redelivered, re-batched capture line: a second object holding the same rows.
        again = traffic.sent.predictions[-20]
        s3 = boto3.client("s3")
        key = next(
            o["Key"]
            for o in s3.list_objects_v2(Bucket=BUCKET, Prefix="captures/")["Contents"]
            if again["id"]
            in gzip.decompress(s3.get_object(Bucket=BUCKET, Key=o["Key"])["Body"].read()).decode()
        )
        s3.put_object(
            Bucket=BUCKET,
            Key=key.replace(".jsonl.gz", "-redelivered.jsonl.gz"),
            Body=s3.get_object(Bucket=BUCKET, Key=key)["Body"].read(),
        )
        yield traffic.sent, tmp_path_factory.mktemp("cache")


def engine(cache: Path) -> LocalQueryEngine:
    return LocalQueryEngine(
        glue=aws.client("glue"),
        s3=aws.client("s3"),
        database=DATABASE,
        cache=cache,
        today=lambda: TODAY,
    )


@pytest.fixture
def local(stored: tuple[Sent, Path]) -> tuple[Sent, LocalQueryEngine]:
    """The engine over the module's moto (its context stays open while the module runs)."""
    return stored[0], engine(stored[1])


def latest(labels: list[tuple[int, float]]) -> float:
    return max(labels)[1]


def live_from(sent: Sent, day: str = "2026-11-01") -> list[dict[str, Any]]:
    return [p for p in sent.predictions if p["live"] and p["dt"] >= day]


def by_group(rows: list[list[Any]]) -> dict[tuple[str, str], list[Any]]:
    return {(row[0], row[1]): row[2:] for row in rows}


def test_rmse_per_version_per_day_matches_numpy(local: tuple[Sent, LocalQueryEngine]) -> None:
    # Given live predictions over three days, labels (one relabelled), evaluation traffic and a
    # redelivered batch; When docs/query.md's RMSE query runs locally
    sent, query = local
    result = query.run(doc_queries()[0])
    # Then each (version, day) from 2026-11-01 has numpy's RMSE of its labelled live rows
    expected: dict[tuple[str, str], list[float]] = {}
    for p in live_from(sent):
        if p["id"] in sent.labels:
            expected.setdefault((p["version"], p["dt"]), []).append(
                p["value"] - latest(sent.labels[p["id"]])
            )
    assert result.columns == ["version", "dt", "labelled", "rmse"]
    assert result.types == ["varchar", "varchar", "bigint", "double"]
    got = by_group(result.rows)
    assert set(got) == set(expected)
    assert len(got) == 4
    for group, errors in expected.items():
        assert got[group][0] == len(errors)
        assert got[group][1] == pytest.approx(float(np.sqrt(np.mean(np.square(errors)))), rel=1e-12)
    # ordered by day, then version as a number
    assert [(r[1], r[0]) for r in result.rows] == sorted((d, v) for v, d in expected)


def test_label_coverage_per_version_per_day_matches_numpy(
    local: tuple[Sent, LocalQueryEngine],
) -> None:
    sent, query = local
    result = query.run(doc_queries()[1])
    expected: dict[tuple[str, str], list[bool]] = {}
    for p in live_from(sent):
        expected.setdefault((p["version"], p["dt"]), []).append(p["id"] in sent.labels)
    got = by_group(result.rows)
    assert set(got) == set(expected)
    for group, labelled in expected.items():
        assert got[group][:2] == [len(labelled), sum(labelled)]
        assert got[group][2] == pytest.approx(float(np.mean(labelled)), rel=1e-12)


def test_top_unseen_categories_counts_live_rows_once(local: tuple[Sent, LocalQueryEngine]) -> None:
    sent, query = local
    result = query.run(doc_queries()[2])
    counts: dict[str, int] = {}
    first: dict[str, str] = {}
    for p in live_from(sent):
        if p["location"] not in TRAINED:
            counts[p["location"]] = counts.get(p["location"], 0) + 1
            first[p["location"]] = min(first.get(p["location"], "9999"), p["dt"])
    ranked = sorted(counts, key=lambda loc: (-counts[loc], loc))
    assert result.rows == [[loc, counts[loc], first[loc]] for loc in ranked]
    assert ranked == ["harbor", "lakeside"]


def test_captures_show_the_declared_columns_then_partition_keys(
    local: tuple[Sent, LocalQueryEngine],
) -> None:
    _, query = local
    result = query.run("SELECT * FROM captures WHERE model = 'house-prices' LIMIT 1")
    assert result.columns == [
        "prediction_id",
        "request_id",
        "ts",
        "variant",
        "inputs",
        "prediction",
        "probabilities",
        "source",
        "model",
        "version",
        "dt",
        "hour",
    ]
    row = dict(zip(result.columns, result.rows[0], strict=True))
    assert isinstance(row["ts"], int)
    assert isinstance(row["prediction"], str)
    assert json.loads(row["inputs"])["sqft"] == 1500.0  # the object, as JSON text
    assert len(row["hour"]) == 2


def test_a_query_without_the_injected_model_key_is_refused_as_athena_would(
    local: tuple[Sent, LocalQueryEngine],
) -> None:
    _, query = local
    with pytest.raises(QuerySyntaxError, match="injected partition key"):
        query.run("SELECT count(*) FROM captures")
    # a comment or a string that mentions it gives Athena no value either
    for hidden in (
        "SELECT count(*) FROM captures -- WHERE model = 'house-prices'",
        "SELECT count(*) FROM captures /* model IN ('house-prices') */",
        "SELECT count(*) FROM captures WHERE request_id <> 'model = x'",
    ):
        with pytest.raises(QuerySyntaxError, match="injected partition key"):
            query.run(hidden)
    assert query.run("SELECT count(*) > 0 FROM captures WHERE model IN ('house-prices')").rows


def test_syntax_errors_and_unknown_tables_are_named(local: tuple[Sent, LocalQueryEngine]) -> None:
    _, query = local
    with pytest.raises(QuerySyntaxError, match="syntax error"):
        query.run("SELEC 1")
    with pytest.raises(UnknownTableError, match=r"predictions.*tables: captures, feedback"):
        query.run("SELECT * FROM predictions")


def test_since_and_until_bound_the_days_read_and_the_cache_fetches_only_new_objects(
    stored: tuple[Sent, Path], tmp_path: Path
) -> None:
    sent, _ = stored
    query = engine(tmp_path)
    sql = "SELECT dt, count(*) FROM captures WHERE model = 'house-prices' GROUP BY dt ORDER BY dt"
    first = query.run(sql, since=date(2026, 11, 2), until=date(2026, 11, 2))
    day = [p for p in sent.predictions if p["dt"] == "2026-11-02"]
    assert first.rows == [["2026-11-02", len(day)]]  # raw rows: evaluation ones included
    assert first.stats["objects_fetched"] == first.stats["objects"] > 0
    assert first.stats["partitions_converted"] == 5  # 2 versions x 2 hours + evaluation hour
    again = query.run(sql)
    assert [r[0] for r in again.rows] == ["2026-10-31", "2026-11-02", "2026-11-03"]
    assert 0 < again.stats["objects_fetched"] < again.stats["objects"]
    assert again.stats["partitions_converted"] == 8
    assert query.run(sql).stats["objects_fetched"] == 0
    assert query.run(sql).stats["partitions_converted"] == 0


def test_a_rewritten_or_expired_object_is_read_anew(
    stored: tuple[Sent, Path], tmp_path: Path
) -> None:
    # Given a day with one object, queried once (so copied and converted)
    query = engine(tmp_path)
    store = CaptureStore(BUCKET, aws.client("s3"))
    key = f"captures/model={MODEL}/version=1/dt=2026-11-05/hour=01/x.jsonl.gz"
    row = {"prediction_id": "p", "request_id": "r", "ts": 1, "prediction": 1.0}
    store.put_jsonl_gz(key, [row])
    sql = "SELECT count(*) FROM captures WHERE model = 'house-prices' AND dt = '2026-11-05'"
    assert query.run(sql).rows == [[1]]
    # When the object is rewritten with two rows (as a redelivery re-batched would)
    store.put_jsonl_gz(key, [row, row | {"prediction_id": "q"}])
    # Then the copy and its Parquet are refreshed; and when it expires, its rows are gone
    assert query.run(sql).rows == [[2]]
    aws.client("s3").delete_object(Bucket=BUCKET, Key=key)
    assert query.run(sql).rows == [[0]]
    assert not list(tmp_path.rglob("dt=2026-11-05"))


@pytest.mark.parametrize(
    ("path", "expected"),
    [("$.location", "harbor"), ("$.sqft", "1500.0"), ("$", None), ("$.nope", None)],
)
def test_json_extract_scalar_means_what_it_means_on_trino(
    local: tuple[Sent, LocalQueryEngine], path: str, expected: str | None
) -> None:
    _, query = local
    result = query.run(
        f"SELECT DISTINCT json_extract_scalar(inputs, '{path}') FROM captures "
        "WHERE model = 'house-prices' AND json_extract_scalar(inputs, '$.location') = 'harbor'"
    )
    assert result.rows == [[expected]]


FROM_CAPTURES = "FROM captures WHERE model = 'house-prices'"


@pytest.mark.parametrize(
    "sql",
    [
        # a second statement after a harmless first, and statements that write or reconfigure
        f"SELECT count(*) {FROM_CAPTURES}; COPY (SELECT 1) TO '{{out}}'",
        f"COPY (SELECT * {FROM_CAPTURES}) TO '{{out}}'",
        "COPY (SELECT 1 AS x) TO '{parquet}' (FORMAT parquet, USE_TMP_FILE false)",
        "ATTACH '{out}' AS elsewhere",
        "INSTALL httpfs",
        "LOAD httpfs",
        "SET enable_external_access = true",
        "PRAGMA enable_profiling",
        f"CREATE TABLE leak AS SELECT * {FROM_CAPTURES}",
        "EXPORT DATABASE '{folder}'",
    ],
)
def test_a_statement_that_is_not_one_select_is_refused_and_writes_nothing(
    local: tuple[Sent, LocalQueryEngine], tmp_path: Path, sql: str
) -> None:
    # Given the engine with its cached Parquet; When hostile SQL asks it to write or reconfigure
    _, query = local
    query.run(f"SELECT count(*) {FROM_CAPTURES}")  # the cache is there
    parquet = next(query.cache.rglob("columnar.parquet"))
    before = parquet.read_bytes()
    out = tmp_path / "out.csv"
    hostile = sql.format(out=out, parquet=parquet, folder=tmp_path / "export")
    # Then it is refused as bad SQL (exit 2) before anything runs, and nothing was written
    with pytest.raises(QuerySyntaxError, match=r"one SQL statement|SELECT \(or EXPLAIN\) only"):
        query.run(hostile)
    assert list(tmp_path.iterdir()) == []
    assert parquet.read_bytes() == before


@pytest.mark.parametrize(
    "reader",
    [
        "read_csv('{secret}')",
        "read_text('{secret}')",
        "read_blob('{secret}')",
        "read_parquet('{other}')",
        "glob('{folder}/*')",
        "'{secret}'",
        "read_csv('https://example.com/x.csv')",
    ],
)
def test_a_select_reads_the_tables_and_no_other_file(
    local: tuple[Sent, LocalQueryEngine], tmp_path: Path, reader: str
) -> None:
    # Given a file beside the cache that no table declares (a secret, another Parquet file)
    _, query = local
    secret = tmp_path / "secret.csv"
    secret.write_text("password\nhunter2\n")
    other = tmp_path / "other.parquet"
    import duckdb

    duckdb.connect().execute(f"COPY (SELECT 'hunter2' AS password) TO '{other}'")
    # When a SELECT names it (or a URL) as a table function or a path
    sql = f"SELECT * FROM {reader.format(secret=secret, other=other, folder=tmp_path)}"
    # Then the engine refuses to open it, naming why
    with pytest.raises(QuerySyntaxError, match="reads only the stack's tables"):
        query.run(sql)


def test_the_tables_still_answer_inside_the_sandbox(local: tuple[Sent, LocalQueryEngine]) -> None:
    _, query = local
    result = query.run(f"EXPLAIN SELECT count(*) {FROM_CAPTURES}")
    assert result.rows
    both = query.run(
        "SELECT (SELECT count(*) FROM captures WHERE model = 'house-prices') > 0, "
        "(SELECT count(*) FROM feedback) > 0"
    )
    assert both.rows == [[True, True]]


@pytest.mark.parametrize("name", ["..", ".", "columnar.parquet", "x.jsonl.gz.part"])
def test_an_object_named_like_a_path_step_or_the_caches_own_file_is_left_out_and_said(
    stored: tuple[Sent, Path], tmp_path: Path, name: str
) -> None:
    # Given a day with one good object and one whose name the local copy cannot hold
    query = engine(tmp_path)
    store = CaptureStore(BUCKET, aws.client("s3"))
    folder = f"captures/model={MODEL}/version=1/dt=2026-11-06/hour=01/"
    row = {"prediction_id": "p", "request_id": "r", "ts": 1, "prediction": 1.0}
    store.put_jsonl_gz(folder + "good.jsonl.gz", [row])
    store.put_jsonl_gz(folder + name, [row | {"prediction_id": "q"}])
    try:
        # When the day is queried
        sql = "SELECT count(*) FROM captures WHERE model = 'house-prices' AND dt = '2026-11-06'"
        result = query.run(sql)
    finally:
        for key in (folder + "good.jsonl.gz", folder + name):
            aws.client("s3").delete_object(Bucket=BUCKET, Key=key)
    # Then the good object answers, the other is left out with a note, nothing lands outside
    assert result.rows == [[1]]
    assert any("cannot hold" in note for note in result.notes)
    assert not [p for p in tmp_path.parent.iterdir() if p.name.endswith(".part")]
