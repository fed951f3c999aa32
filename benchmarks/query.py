"""`mlops query` on the local stack: a day of captures, docs/query.md's three queries.

    .venv/bin/python benchmarks/query.py [--json] [--rows N] [--label-share F] [--repeat N]

Setup: a moto server (the local stack's) with the template's Glue tables (resolved as the local
stack resolves them) and ``--rows`` predictions (default 1,000,000) spread over the 24 hours of
one day, stored by the real ``PredictionLoggerService`` in its real format (gzip JSON Lines,
one object per delivery and hour) from deliveries of 10 requests of 100 instances; 5 % of the
instances are in a location training never saw; ``--label-share`` of them (default 10 %) get a
label the next day, stored the same way.

Measured, with the engine ``mlops query`` runs locally (``LocalQueryEngine``): the first query
(copies every object out of S3 into the cache and converts each partition to Parquet, then
runs: what the first query of a day costs), then each of the three queries ``--repeat`` times
on the warm cache (medians). Then, for the record, the same queries straight over the cached
gzip JSON Lines (what the engine did before its Parquet copy, and what Athena reads), and the
captures' size as gzip JSON, as Parquet, and in the columns the RMSE query reads (what Athena
would scan if the captures were compacted to Parquet in S3).

Without --json: a table on stdout, progress on stderr. With --json: one JSON object, the only
line on stdout: rows, labels, objects, stored_mb, setup_s, first_query_s, fetch (objects, mb,
sync_s, convert_s, partitions), ``queries`` (name → warm median s, rows returned, query_s),
``direct`` (json_queries: name → median s straight over the gzip JSON; captures_gzip_json_mb,
captures_parquet_mb, captures_parquet_rmse_columns_mb), answer (the RMSE rows), cpu_count,
load_avg.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
for path in (ROOT, ROOT / "layers" / "core", ROOT / "cli", ROOT / "benchmarks"):
    sys.path.insert(0, str(path))

from monitoring_scale import moto_server, silenced  # noqa: E402

MODEL = "house-prices"
BUCKET = "query-benchmark"
DATABASE = "query_benchmark"
DAY = date(2026, 11, 2)
TRAINED = ("downtown", "riverside", "uptown", "suburbs", "countryside")
QUERIES = ("rmse_per_version_day", "label_coverage", "top_unseen_categories")
ENVIRONMENT = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "POWERTOOLS_SERVICE_NAME": "query-benchmark",
    "POWERTOOLS_METRICS_DISABLED": "true",
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_LOG_LEVEL": "WARNING",
}


def progress(message: str) -> None:
    print(f"[query] {message}", file=sys.stderr, flush=True)


def doc_queries() -> list[str]:
    return re.findall(r"```sql\n(.*?)```", (ROOT / "docs" / "query.md").read_text(), re.DOTALL)


def create_tables() -> None:
    import boto3

    from mlops_cli.emulator.template import Resolver, load_template, parameter_defaults

    boto3.client("s3").create_bucket(Bucket=BUCKET)
    template = load_template(ROOT / "template.yaml")
    resolver = Resolver(
        parameter_defaults(template),
        template.get("Conditions", {}),
        refs={"ArtifactsBucket": BUCKET, "CaptureDatabase": DATABASE},
    )
    glue = boto3.client("glue")
    glue.create_database(DatabaseInput={"Name": DATABASE})
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::Glue::Table":
            props = resolver.resolve(resource["Properties"])
            glue.create_table(DatabaseName=DATABASE, TableInput=props["TableInput"])


def store_day(rows: int, label_share: float) -> tuple[int, int]:
    """``rows`` predictions over the day and their labels, through the real logger."""
    import numpy as np

    from mlops.adapters import aws
    from mlops.adapters.capture_store import CaptureStore
    from mlops.adapters.model_store import ModelStore
    from mlops.domain import capture
    from mlops.domain.ids import uuid7s
    from mlops.domain.synthetic import conditions_for_month, generate
    from mlops.services.prediction_logger import LogEvent, PredictionLoggerService
    from mlops_cli.emulator.sources.logs import log_event_id

    aws.client.cache_clear()
    s3 = aws.client("s3")
    logger = PredictionLoggerService(
        CaptureStore(BUCKET, s3), ModelStore(BUCKET, s3), model_name=MODEL
    )
    pool = generate(10_000, conditions_for_month(0), seed=1)
    names = [n for n in pool if n != "price"]
    houses = [
        {n: pool[n][i].item() if hasattr(pool[n][i], "item") else pool[n][i] for n in names}
        for i in range(10_000)
    ]
    prices = [float(p) for p in pool["price"]]
    rng = np.random.default_rng(7)
    start = int(datetime(DAY.year, DAY.month, DAY.day, tzinfo=UTC).timestamp() * 1000)
    per_request, per_delivery = 100, 10
    step = 86_400_000 * per_request * per_delivery // max(rows, 1)
    labels: list[dict[str, Any]] = []
    stored = 0
    with silenced():
        while stored < rows:
            ts = start + (stored // (per_request * per_delivery)) * step
            lines: list[str] = []
            for _ in range(per_delivery):
                count = min(per_request, rows - stored)
                if count <= 0:
                    break
                picks = rng.integers(0, 10_000, count)
                unseen = rng.random(count) < 0.05
                instances = [
                    houses[p] | ({"location": "harbor"} if u else {})
                    for p, u in zip(picks, unseen, strict=True)
                ]
                ids = uuid7s(ts, count)
                predicted = [prices[p] * float(rng.normal(1, 0.05)) for p in picks]
                lines += capture.capture_lines(
                    model=MODEL,
                    version="1" if stored < rows // 2 else "2",
                    alias="production",
                    variant=None,
                    request_id=str(uuid.uuid4()),
                    timestamp_ms=ts,
                    latency_ms=0.3,
                    instances=instances,
                    prediction_ids=ids,
                    predictions=predicted,
                    probabilities=None,
                )
                chosen = rng.random(count) < label_share
                labels += [
                    {"prediction_id": pid, "actual": prices[p]}
                    for pid, p, c in zip(ids, picks, chosen, strict=True)
                    if c
                ]
                stored += count
            logger.store_batch([LogEvent(log_event_id(ts), ts, line) for line in lines])
            if stored % 100_000 < per_request * per_delivery:
                progress(f"  {stored:,} predictions stored")
        next_day = start + 86_400_000 + 3_600_000
        for first in range(0, len(labels), 1000):
            lines = capture.feedback_line(
                model=MODEL, timestamp_ms=next_day, items=labels[first : first + 1000]
            )
            logger.store_batch([LogEvent(log_event_id(next_day), next_day, ln) for ln in lines])
    return stored, len(labels)


def stored_objects() -> tuple[int, int]:
    import boto3

    count = size = 0
    for page in boto3.client("s3").get_paginator("list_objects_v2").paginate(Bucket=BUCKET):
        for obj in page.get("Contents", []):
            if obj["Key"].startswith(("captures/", "feedback/")):
                count, size = count + 1, size + obj["Size"]
    return count, size


def timed(run: Any, repeat: int) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def json_figures(engine: Any, sqls: list[str], repeat: int) -> dict[str, Any]:
    """The same queries straight over the cached gzip JSON Lines, as the engine read them
    before its Parquet copy (and as Athena reads them), and what the Parquet copy holds."""
    import duckdb

    from mlops_cli.query.columnar import PARQUET
    from mlops_cli.query.duckdb_engine import _MACROS, json_reader, literal, quote, view_sql

    root = engine.cache / DATABASE
    connection = duckdb.connect()
    connection.execute(f"CREATE SCHEMA {quote(DATABASE)}")
    for table in engine.tables():
        files = sorted((root / table.name).rglob("*.jsonl.gz"))
        connection.execute(view_sql(DATABASE, table, json_reader(table, files, partitions=True)))
    for macro in _MACROS:
        connection.execute(macro)
    connection.execute(f"SET search_path = {literal(DATABASE + ',main')}")
    queries = {}
    for name, sql in zip(QUERIES, sqls, strict=True):
        seconds, _ = timed(lambda s=sql: connection.execute(s).fetchall(), repeat)
        queries[name] = round(seconds, 3)
    # What Athena would scan of Parquet: only the columns a query names (compressed bytes).
    parquet = sorted((root / "captures").rglob(PARQUET))
    paths = ", ".join(literal(str(p)) for p in parquet)
    sizes = dict(
        connection.execute(
            f"SELECT path_in_schema, sum(total_compressed_size) "
            f"FROM parquet_metadata([{paths}]) GROUP BY 1"
        ).fetchall()
    )
    gz = sum(p.stat().st_size for p in (root / "captures").rglob("*.jsonl.gz"))
    rmse_columns = ("prediction_id", "version", "dt", "prediction", "source")
    return {
        "json_queries": queries,
        "captures_gzip_json_mb": round(gz / 1e6, 1),
        "captures_parquet_mb": round(sum(p.stat().st_size for p in parquet) / 1e6, 1),
        "captures_parquet_rmse_columns_mb": round(
            sum(sizes.get(c, 0) for c in rmse_columns) / 1e6, 1
        ),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print only one JSON object")
    parser.add_argument("--rows", type=int, default=1_000_000, help="predictions in the day")
    parser.add_argument("--label-share", type=float, default=0.1)
    parser.add_argument("--repeat", type=int, default=3, help="runs a warm query, median")
    args = parser.parse_args()
    sqls = doc_queries()
    with moto_server() as endpoint:
        os.environ.update(ENVIRONMENT | {"AWS_ENDPOINT_URL": endpoint})
        os.environ.pop("AWS_PROFILE", None)
        started = time.perf_counter()
        create_tables()
        progress(f"storing {args.rows:,} predictions through the logger")
        rows, labels = store_day(args.rows, args.label_share)
        setup_s = time.perf_counter() - started
        objects, size = stored_objects()
        progress(f"stored {objects:,} objects ({size / 1e6:.1f} MB) in {setup_s:.0f} s")

        from mlops.adapters import aws
        from mlops_cli.query.duckdb_engine import LocalQueryEngine

        cache = Path(tempfile.mkdtemp(prefix="query-cache-"))
        engine = LocalQueryEngine(
            glue=aws.client("glue"),
            s3=aws.client("s3"),
            database=DATABASE,
            cache=cache,
            today=lambda: DAY + timedelta(days=30),
        )
        started = time.perf_counter()
        first = engine.run(sqls[0])
        first_s = time.perf_counter() - started
        fetched = {
            "objects": first.stats["objects_fetched"],
            "mb": round(first.stats["bytes_fetched"] / 1e6, 1),
            "sync_s": first.stats["sync_seconds"],
            "convert_s": first.stats["convert_seconds"],
            "partitions": first.stats["partitions_converted"],
        }
        progress(f"first query (copies the day): {first_s:.1f} s")
        queries: dict[str, Any] = {}
        for name, sql in zip(QUERIES, sqls, strict=True):
            seconds, result = timed(lambda s=sql: engine.run(s), args.repeat)
            queries[name] = {
                "s": round(seconds, 3),
                "rows": len(result.rows),
                "query_s": result.stats["query_seconds"],
            }
            progress(f"{name}: {seconds:.2f} s")
        checks = {"rmse_rows": first.rows}
        progress("the same queries straight over the gzip JSON, for the record")
        direct = json_figures(engine, sqls, args.repeat)
    figures = {
        "rows": rows,
        "labels": labels,
        "objects": objects,
        "stored_mb": round(size / 1e6, 1),
        "setup_s": round(setup_s, 1),
        "first_query_s": round(first_s, 2),
        "fetch": fetched,
        "queries": queries,
        "direct": direct,
        "answer": checks["rmse_rows"],
        "cpu_count": os.cpu_count(),
        "load_avg": [round(x, 2) for x in os.getloadavg()],
    }
    if args.json:
        print(json.dumps(figures))
        return 0
    print(f"{'measurement':<52} {'value':>24}")
    table = [
        ("predictions in the day / labels", f"{rows:,} / {labels:,}"),
        ("objects (captures + feedback), stored", f"{objects:,}, {size / 1e6:.1f} MB"),
        ("first query: copy, convert, RMSE", f"{first_s:.2f} s"),
        ("  of which copying the objects out of S3", f"{fetched['sync_s']:.2f} s"),
        (
            f"  of which converting {fetched['partitions']} partitions to Parquet",
            f"{fetched['convert_s']:.2f} s",
        ),
        *[
            (f"warm {name} (median of {args.repeat})", f"{q['s']:.2f} s")
            for name, q in queries.items()
        ],
        *[
            (f"same {name}, straight over gzip JSON", f"{s:.2f} s")
            for name, s in direct["json_queries"].items()
        ],
        (
            "captures: gzip JSON / Parquet / the RMSE query's columns",
            f"{direct['captures_gzip_json_mb']} / {direct['captures_parquet_mb']} / "
            f"{direct['captures_parquet_rmse_columns_mb']} MB",
        ),
    ]
    for label, value in table:
        print(f"{label:<52} {value:>24}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
