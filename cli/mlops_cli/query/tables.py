"""A Glue table declaration, as DuckDB reads it: one definition drives Athena and the local engine.

The template declares the ``captures`` and ``feedback`` tables (columns with Hive types,
string partition keys with partition projection, the OpenX JSON SerDe over gzip JSON Lines).
Athena reads them from the Glue catalog; the local engine reads the very same declarations
from the local stack's Glue catalog (created from the template) and turns each into a DuckDB
view over the table's objects, so the two engines cannot disagree on a column's name or type.

Partition projection decides which partitions exist for Athena (``projection.<key>.range``,
``.digits``, ``.format``): a key outside it is invisible there, so it is invisible here too.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from mlops.errors import ConfigError

# The SerDes that read JSON Lines (gzip is recognised by the objects' .gz suffix in both engines).
JSON_SERDES = frozenset(
    {"org.openx.data.jsonserde.JsonSerDe", "org.apache.hive.hcatalog.data.JsonSerDe"}
)
_SCALARS = {
    "string": "VARCHAR",
    "varchar": "VARCHAR",
    "char": "VARCHAR",
    "tinyint": "TINYINT",
    "smallint": "SMALLINT",
    "int": "INTEGER",
    "integer": "INTEGER",
    "bigint": "BIGINT",
    "float": "FLOAT",
    "double": "DOUBLE",
    "boolean": "BOOLEAN",
    "date": "DATE",
    "timestamp": "TIMESTAMP",
    "binary": "BLOB",
}
_JAVA_DATE = {"yyyy": "%Y", "MM": "%m", "dd": "%d", "HH": "%H"}


@dataclass(frozen=True)
class Column:
    name: str
    hive_type: str

    @property
    def duckdb_type(self) -> str:
        return duckdb_type(self.hive_type)


@dataclass(frozen=True)
class Projection:
    """One partition key's projection: which values Athena enumerates for it."""

    kind: str  # integer | date | enum | injected
    low: int | date | None = None
    high: int | date | str | None = None  # "NOW": today
    digits: int | None = None
    date_format: str | None = None  # strftime spelling of projection.<key>.format
    values: tuple[str, ...] = ()

    def admits(self, value: str, today: date) -> bool:
        if self.kind == "injected":
            return True
        if self.kind == "enum":
            return value in self.values
        if self.kind == "integer":
            if not value.isascii() or not value.isdigit():
                return False
            if self.digits is not None and value != str(int(value)).zfill(self.digits):
                return False  # Athena looks for "07", never "7"
            return self._within(int(value))
        if self.kind == "date":
            day = parse_day(value, self.date_format or "%Y-%m-%d")
            return day is not None and self._within(day, today)
        return True

    def _within(self, value: Any, today: date | None = None) -> bool:
        high = today if self.high == "NOW" else self.high
        return (self.low is None or value >= self.low) and (high is None or value <= high)


@dataclass(frozen=True)
class TableSpec:
    """A Glue table: what both engines read."""

    name: str
    columns: tuple[Column, ...]
    partition_keys: tuple[Column, ...]
    location: str  # s3://bucket/prefix/
    location_template: str | None
    projections: Mapping[str, Projection]

    @property
    def bucket(self) -> str:
        return self.location.removeprefix("s3://").split("/", 1)[0]

    @property
    def prefix(self) -> str:
        parts = self.location.removeprefix("s3://").split("/", 1)
        return parts[1] if len(parts) > 1 else ""

    @property
    def date_key(self) -> str | None:
        """The partition key projected as a date (``dt``), which ``--since/--until`` bound."""
        return next((k for k, p in self.projections.items() if p.kind == "date"), None)

    @property
    def injected_keys(self) -> tuple[str, ...]:
        """Keys Athena cannot enumerate: a query must give each with ``=`` (or ``IN``)."""
        return tuple(k for k, p in self.projections.items() if p.kind == "injected")

    def partition_of(self, key: str) -> dict[str, str] | None:
        """The partition values of an object key, from the location template (or Hive-style
        ``name=value`` folders without one); None when the key is outside the layout."""
        relative = key[len(self.prefix) :] if key.startswith(self.prefix) else None
        if relative is None:
            return None
        if self.location_template:
            pattern = _template_pattern(self.location_template, self.location)
            match = pattern.match(key)
            return dict(match.groupdict()) if match else None
        folders = relative.split("/")[:-1]
        values = dict(f.split("=", 1) for f in folders if "=" in f)
        names = [c.name for c in self.partition_keys]
        return values if set(values) == set(names) else None

    def admits(self, partition: Mapping[str, str], today: date) -> bool:
        """Whether Athena's partition projection would read this partition at all."""
        return all(
            self.projections[k].admits(v, today)
            for k, v in partition.items()
            if k in self.projections
        )


def table_spec(table: Mapping[str, Any]) -> TableSpec:
    """A Glue ``GetTable`` answer (``Table``) as a TableSpec; refuses what DuckDB cannot read."""
    name = str(table["Name"])
    storage = table.get("StorageDescriptor") or {}
    serde = (storage.get("SerdeInfo") or {}).get("SerializationLibrary", "")
    if serde not in JSON_SERDES:
        raise ConfigError(
            f"table {name}: SerDe {serde or '(none)'} is not a JSON SerDe; the local engine "
            "reads JSON Lines tables only"
        )
    params = table.get("Parameters") or {}
    keys = tuple(Column(k["Name"], k["Type"]) for k in table.get("PartitionKeys", []))
    projections = (
        {k.name: _projection(name, k.name, params) for k in keys}
        if str(params.get("projection.enabled", "")).lower() == "true"
        else {}
    )
    columns = tuple(Column(c["Name"], c["Type"]) for c in storage.get("Columns", []))
    for column in columns + keys:
        duckdb_type(column.hive_type, where=f"table {name}, column {column.name}")
    location = str(storage.get("Location", ""))
    if not location.startswith("s3://"):
        raise ConfigError(f"table {name}: location {location!r} is not an s3:// URI")
    return TableSpec(
        name=name,
        columns=columns,
        partition_keys=keys,
        location=location if location.endswith("/") else location + "/",
        location_template=params.get("storage.location.template"),
        projections=projections,
    )


def _projection(table: str, key: str, params: Mapping[str, str]) -> Projection:
    kind = params.get(f"projection.{key}.type", "")
    bounds = [b.strip() for b in params.get(f"projection.{key}.range", "").split(",") if b]
    if kind == "integer":
        digits = params.get(f"projection.{key}.digits")
        low, high = (int(bounds[0]), int(bounds[1])) if len(bounds) == 2 else (None, None)
        return Projection("integer", low, high, int(digits) if digits else None)
    if kind == "date":
        java = params.get(f"projection.{key}.format", "yyyy-MM-dd")
        fmt = java
        for token, strf in _JAVA_DATE.items():
            fmt = fmt.replace(token, strf)
        if "%" not in fmt:
            raise ConfigError(f"table {table}: projection.{key}.format {java!r} is not supported")
        low_day = parse_day(bounds[0], fmt) if bounds else None
        high_day: Any = None
        if len(bounds) == 2:
            # NOW (today, UTC) is the usual upper end; offsets like NOW+1DAY are not used here.
            high_day = "NOW" if bounds[1].upper() == "NOW" else parse_day(bounds[1], fmt)
        return Projection("date", low_day, high_day, date_format=fmt)
    if kind == "enum":
        values = tuple(v.strip() for v in params.get(f"projection.{key}.values", "").split(","))
        return Projection("enum", values=values)
    if kind == "injected":
        return Projection("injected")
    raise ConfigError(
        f"table {table}: partition key {key}: projection type {kind!r} is unknown locally"
    )


def parse_day(text: str, fmt: str) -> date | None:
    try:
        return datetime.strptime(text, fmt).date()
    except ValueError:
        return None


def _template_pattern(template: str, location: str) -> re.Pattern[str]:
    del location  # the template is absolute (s3://bucket/...): matched against the key part
    key_template = template.removeprefix("s3://").split("/", 1)[1]
    parts = re.split(r"\$\{(\w+)\}", key_template)
    regex = "".join(re.escape(p) if i % 2 == 0 else f"(?P<{p}>[^/]+)" for i, p in enumerate(parts))
    return re.compile(regex + r"[^/]+$")


# --- Hive types → DuckDB types ----------------------------------------------------------------


def duckdb_type(hive: str, *, where: str = "column") -> str:
    """DuckDB's spelling of a Hive/Glue type: scalars one to one, ``decimal(p,s)`` kept,
    ``array<T>`` → ``T[]``, ``map<K,V>`` → ``MAP(K, V)``, ``struct<a:T>`` → ``STRUCT("a" T)``."""
    parser = _TypeParser(hive.strip(), where)
    result = parser.parse()
    parser.expect_end()
    return result


class _TypeParser:
    def __init__(self, text: str, where: str) -> None:
        self.text, self.pos, self.where = text, 0, where

    def fail(self, problem: str) -> ConfigError:
        return ConfigError(f"{self.where}: type {self.text!r}: {problem}")

    def word(self) -> str:
        match = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*").match(self.text, self.pos)
        if not match:
            raise self.fail(f"expected a type name at {self.pos}")
        self.pos = match.end()
        return match.group(1)

    def take(self, char: str) -> bool:
        rest = self.text[self.pos :].lstrip()
        if rest.startswith(char):
            self.pos = len(self.text) - len(rest) + 1
            return True
        return False

    def need(self, char: str) -> None:
        if not self.take(char):
            raise self.fail(f"expected {char!r} at {self.pos}")

    def expect_end(self) -> None:
        if self.text[self.pos :].strip():
            raise self.fail(f"unexpected {self.text[self.pos :]!r}")

    def parse(self) -> str:
        name = self.word().lower()
        if name == "array":
            self.need("<")
            inner = self.parse()
            self.need(">")
            return f"{inner}[]"
        if name == "map":
            self.need("<")
            key = self.parse()
            self.need(",")
            value = self.parse()
            self.need(">")
            return f"MAP({key}, {value})"
        if name == "struct":
            self.need("<")
            fields = []
            while True:
                field = self.word()
                self.need(":")
                fields.append(f'"{field}" {self.parse()}')
                if not self.take(","):
                    break
            self.need(">")
            return f"STRUCT({', '.join(fields)})"
        if name == "decimal":
            args = self.numbers()
            return f"DECIMAL({','.join(args)})" if args else "DECIMAL(10,0)"  # Hive's default
        if name in ("varchar", "char"):
            self.numbers()  # a length: DuckDB's VARCHAR has none
        if name not in _SCALARS:
            raise self.fail(f"{name} has no DuckDB equivalent here")
        return _SCALARS[name]

    def numbers(self) -> list[str]:
        if not self.take("("):
            return []
        match = re.compile(r"\s*(\d+)\s*(?:,\s*(\d+)\s*)?").match(self.text, self.pos)
        if not match:
            raise self.fail("expected a number")
        self.pos = match.end()
        self.need(")")
        return [g for g in match.groups() if g is not None]
