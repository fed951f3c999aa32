"""``mlops query``: SQL over the ``captures`` and ``feedback`` tables (Athena; DuckDB locally)."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date
from pathlib import Path
from typing import Any

from mlops_cli.commands.stack_options import add_stack_options


def register(sub: Any) -> None:
    p = sub.add_parser(
        "query",
        help="run SQL over captured predictions and labels: Athena on a deployed stack, "
        "DuckDB on the local stack (tables captures and feedback)",
    )
    p.add_argument("sql", nargs="?", help="the SQL; - reads it from stdin")
    p.add_argument("--file", type=Path, help="read the SQL from this file")
    p.add_argument(
        "--output",
        choices=("table", "json", "csv"),
        default=None,
        help="how to print the rows (default table; --json is --output json)",
    )
    p.add_argument(
        "--since",
        type=_day,
        metavar="YYYY-MM-DD",
        help="local stack only: copy and read partitions from this day (dt) on",
    )
    p.add_argument(
        "--until", type=_day, metavar="YYYY-MM-DD", help="local stack only: up to this day"
    )
    add_stack_options(p)
    p.set_defaults(func=run)


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a day like 2026-11-01") from None


def run(args: argparse.Namespace) -> int:
    from mlops.errors import ConfigError
    from mlops_cli.emulator.target import resolve_target
    from mlops_cli.query.service import run_query

    if args.json and args.output not in (None, "json"):
        raise ConfigError(f"--json and --output {args.output}: choose one")
    output = "json" if args.json else (args.output or "table")
    sql = _sql(args)
    target = resolve_target(args.stack)
    with _Progress() as progress:
        result = run_query(
            target,
            sql,
            deployed=bool(args.stack),
            since=args.since,
            until=args.until,
            progress=progress,
        )
    for note in result.notes:
        print(f"note: {note}", file=sys.stderr)
    if output == "json":
        print(json.dumps(result.as_dict() | {"target": target.description}, allow_nan=False))
    elif output == "csv":
        sys.stdout.write(result.csv())
    else:
        _print_table(result)
    return 0


def _sql(args: argparse.Namespace) -> str:
    from mlops.errors import ConfigError

    if args.file is not None:
        if args.sql is not None:
            raise ConfigError("give the SQL as an argument or --file, not both")
        try:
            return str(args.file.read_text())
        except OSError as exc:
            raise ConfigError(f"cannot read {args.file}: {exc}") from exc
    if args.sql == "-":
        return sys.stdin.read()
    if args.sql is None:
        raise ConfigError('no SQL: mlops query "SELECT ..." (or --file PATH, or - for stdin)')
    return str(args.sql)


class _Progress:
    """A spinner on stderr while the query runs, when stderr is a terminal; silent otherwise."""

    def __enter__(self) -> Any:
        self._status = None
        if sys.stderr.isatty():
            from rich.console import Console

            self._status = Console(stderr=True).status("querying...")
            self._status.start()
        return self.update

    def update(self, message: str) -> None:
        if self._status is not None:
            self._status.update(message)

    def __exit__(self, *exc: object) -> None:
        if self._status is not None:
            self._status.stop()


def _print_table(result: Any) -> None:
    from rich import box
    from rich.console import Console
    from rich.table import Table

    from mlops_cli.query.result import display
    from mlops_cli.registry_view import _width

    console = Console(highlight=False, emoji=False, width=_width())
    numeric = {"bigint", "integer", "smallint", "tinyint", "double", "real"}
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    for name, sql_type in zip(result.columns, result.types, strict=True):
        table.add_column(name, justify="right" if sql_type in numeric else "left")
    for row in result.rows:
        table.add_row(*(display(v) for v in row))
    console.print(table)
    seconds = result.stats.get("seconds")
    scanned = result.stats.get("bytes_scanned", result.stats.get("bytes_in_scope"))
    console.print(
        f"{len(result.rows):,} rows ({result.engine}, {seconds} s"
        + (f", {scanned / 1e6:,.1f} MB read" if scanned is not None else "")
        + ")"
    )
