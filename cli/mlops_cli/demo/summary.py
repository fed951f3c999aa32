"""The end of a run: the month table and the closing lines on the console, and the
``--json`` line."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table


def month_table(summary: Mapping[str, Any]) -> Table:
    """The run, a row per month: who served, both models' live RMSE, drift share, events."""
    table = Table(
        title="The market moved; the system kept up",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
    )
    table.add_column("month", justify="right", no_wrap=True)
    table.add_column("serving", ratio=2, min_width=14)
    table.add_column("live RMSE system", justify="right", max_width=9)
    table.add_column("RMSE never retrained", justify="right", max_width=10)
    table.add_column("drift share", justify="right", max_width=12)
    table.add_column("events", ratio=3)
    for month in summary["months"]:
        drift = month.get("drift") or {}
        share = drift.get("drift_share")
        share_text = "n/a" if share is None else f"{share:.0%}"
        if drift.get("quality_breach"):
            share_text += " +quality"
        flagged = drift.get("dataset_drift") or drift.get("quality_breach")
        table.add_row(
            str(month["month"]),
            escape(month["serving"]),
            _money(month["rmse_system"]),
            _money(month["rmse_static"]),
            f"[red]{share_text}[/]" if flagged else share_text,
            escape(", ".join(month["events"])),
        )
    return table


def _money(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.0f}"


def print_summary(console: Console, summary: Mapping[str, Any]) -> None:
    """The month table, then the last month's errors, the moves and the report's path."""
    console.print()
    console.print(month_table(summary))
    last = summary["months"][-1]["month"]
    console.print(
        f"System RMSE in month {last}: {_money(summary['rmse_system_last_month'])} vs "
        f"{_money(summary['rmse_static_last_month'])} never retrained "
        f"(v1 on month 0: {_money(summary['rmse_v1_month0'])}); "
        f"{summary['versions_promoted']} promoted, {summary['rollbacks']} rolled back, "
        f"{summary['seconds']} s."
    )
    gave_up = summary.get("gave_up") or []
    if gave_up:
        waits = "; ".join(
            f"month {w['month'] if w['month'] is not None else 'setup'}: {w['wait']} "
            f"({w['seconds']:.0f} s)"
            for w in gave_up
        )
        console.print(
            f"[bold magenta]{len(gave_up)} wait(s) gave up[/] (a stall: the figures after it "
            f"may not be the seed's): {escape(waits)}"
        )
    console.print(f"Report: {summary['report_path']}")


def json_summary(summary: Mapping[str, Any]) -> str:
    """The ``--json`` line: the contract keys, and the months without their bulky details."""
    months = [
        {k: v for k, v in m.items() if k not in ("drift", "mid_month_drift")}
        | {
            "drift_share": (m.get("drift") or {}).get("drift_share"),
            "dataset_drift": (m.get("drift") or {}).get("dataset_drift"),
            "quality_breach": (m.get("drift") or {}).get("quality_breach"),
            "retrain_requested": (m.get("drift") or {}).get("retrain_requested"),
        }
        for m in summary["months"]
    ]
    bulky = ("events", "drift_reports", "rollout_reports", "months")
    keep = {k: v for k, v in summary.items() if k not in bulky}
    return json.dumps({"months": months, **keep})
