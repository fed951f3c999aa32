"""Glue table declarations as the local query engine reads them: types, projection, layout."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from mlops.errors import ConfigError
from mlops_cli.emulator.template import Resolver, load_template, parameter_defaults
from mlops_cli.query.tables import duckdb_type, table_spec
from tests.conftest import ROOT

TODAY = date(2026, 12, 7)


def template_tables() -> dict[str, dict[str, Any]]:
    """The template's tables as Glue's GetTable answers them (TableInput plus Name)."""
    template = load_template(ROOT / "template.yaml")
    resolver = Resolver(
        parameter_defaults(template),
        template.get("Conditions", {}),
        refs={"ArtifactsBucket": "bucket", "CaptureDatabase": "db"},
    )
    return {
        r["Properties"]["TableInput"]["Name"]: resolver.resolve(r["Properties"]["TableInput"])
        for r in template["Resources"].values()
        if r["Type"] == "AWS::Glue::Table"
    }


@pytest.mark.parametrize(
    ("hive", "duck"),
    [
        ("string", "VARCHAR"),
        ("varchar(20)", "VARCHAR"),
        ("bigint", "BIGINT"),
        ("int", "INTEGER"),
        ("double", "DOUBLE"),
        ("float", "FLOAT"),
        ("boolean", "BOOLEAN"),
        ("timestamp", "TIMESTAMP"),
        ("date", "DATE"),
        ("decimal(12,2)", "DECIMAL(12,2)"),
        ("decimal", "DECIMAL(10,0)"),
        ("array<double>", "DOUBLE[]"),
        ("map<string,double>", "MAP(VARCHAR, DOUBLE)"),
        (
            "struct<a:int, b:array<struct<c:string>>>",
            'STRUCT("a" INTEGER, "b" STRUCT("c" VARCHAR)[])',
        ),
    ],
)
def test_hive_types_map_to_duckdb_one_to_one(hive: str, duck: str) -> None:
    assert duckdb_type(hive) == duck


@pytest.mark.parametrize("bad", ["uniontype<int,string>", "array<int", "map<string>", "int extra"])
def test_a_type_duckdb_cannot_hold_is_refused_with_its_column(bad: str) -> None:
    with pytest.raises(ConfigError, match="table t, column c"):
        duckdb_type(bad, where="table t, column c")


def test_the_template_tables_read_as_declared() -> None:
    tables = template_tables()
    captures = table_spec(tables["captures"])
    assert [c.name for c in captures.partition_keys] == ["model", "version", "dt", "hour"]
    assert captures.location == "s3://bucket/captures/"
    assert (captures.bucket, captures.prefix) == ("bucket", "captures/")
    assert captures.date_key == "dt"
    assert captures.injected_keys == ("model",)
    assert {c.name: c.duckdb_type for c in captures.columns}["ts"] == "BIGINT"
    feedback = table_spec(tables["feedback"])
    assert [c.name for c in feedback.partition_keys] == ["dt", "hour"]
    assert feedback.injected_keys == ()


def test_object_keys_give_their_partitions_from_the_location_template() -> None:
    captures = table_spec(template_tables()["captures"])
    key = "captures/model=house-prices/version=3/dt=2026-11-02/hour=07/abc.jsonl.gz"
    assert captures.partition_of(key) == {
        "model": "house-prices",
        "version": "3",
        "dt": "2026-11-02",
        "hour": "07",
    }
    assert captures.partition_of("captures/model=m/version=3/stray.jsonl.gz") is None
    assert captures.partition_of("captures/model=m/version=3/dt=2026-11-02/hour=07/") is None


@pytest.mark.parametrize(
    ("version", "dt", "hour", "admitted"),
    [
        ("1", "2026-11-02", "00", True),
        ("100000", "2026-11-02", "23", True),  # the range's ends
        ("100001", "2026-11-02", "23", False),  # one past
        ("0", "2026-11-02", "23", False),
        ("1", "2026-11-02", "24", False),
        ("1", "2026-11-02", "7", False),  # Athena looks for "07"
        ("1", "2024-01-01", "00", True),  # the date range's first day
        ("1", "2023-12-31", "00", False),
        ("1", TODAY.isoformat(), "00", True),  # NOW
        ("1", "2026-12-08", "00", False),  # tomorrow
        ("1", "2026-13-01", "00", False),
        ("v1", "2026-11-02", "00", False),
    ],
)
def test_partitions_outside_projection_are_invisible_as_on_athena(
    version: str, dt: str, hour: str, admitted: bool
) -> None:
    captures = table_spec(template_tables()["captures"])
    partition = {"model": "any", "version": version, "dt": dt, "hour": hour}
    assert captures.admits(partition, TODAY) is admitted


def test_a_table_that_is_not_json_is_refused_by_name() -> None:
    table = template_tables()["feedback"]
    table["StorageDescriptor"]["SerdeInfo"]["SerializationLibrary"] = (
        "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
    )
    with pytest.raises(ConfigError, match=r"table feedback: SerDe .*Parquet.* JSON Lines"):
        table_spec(table)
