"""How the registry reads on a terminal: ``mlops status``'s tables and an alias move's line."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlops.adapters.registry import AliasChange, Rollout, VersionRecord


def print_change(change: AliasChange, as_json: bool) -> None:
    if as_json:
        print(json.dumps(change.as_dict()))
        return
    before = f"v{change.from_version}" if change.from_version else "none"
    why = f": {json.dumps(change.reason, ensure_ascii=False)}" if change.reason else ""
    print(
        f"{change.alias}: {before} -> v{change.to_version} ({change.kind} by {change.actor}{why})"
    )


# Headline metrics, in order of preference: the first two a version has are shown.
_HEADLINE_METRICS = ("rmse", "r2", "mae", "mape", "accuracy", "f1_macro", "roc_auc", "log_loss")
PIPED_WIDTH = 200
_WIDE = 110  # below this many columns the table drops its trigger column and times


def _width() -> int | None:
    """A terminal's own width; piped, ``COLUMNS`` or wide enough not to wrap (a pipe is read by
    a program or a file viewer, not a window: rich's default of 80 columns would fold rows)."""
    if os.environ.get("COLUMNS", "").isdigit() or sys.stdout.isatty():
        return None  # rich reads COLUMNS, then the terminal
    return PIPED_WIDTH


def print_status(
    model: str,
    description: str,
    versions: list[VersionRecord],
    *,
    aliases: dict[str, str],
    history: list[AliasChange],
    limit: int,
    rollout: Rollout | None = None,
) -> None:
    """The registry as two tables sized to the terminal (80 columns when not a TTY, as in CI).

    Narrower than ``_WIDE`` columns, the trigger and creation time are left out, aliases sit
    under the version, and multi-part cells stack their parts, so nothing is cut mid-word.
    """
    from rich import box
    from rich.console import Console
    from rich.table import Table

    console = Console(highlight=False, emoji=False, width=_width())
    wide = console.width >= _WIDE
    separator = " " if wide else "\n"  # between the parts of a cell
    console.print(f"Model {model} ({description})")
    by_version: dict[str, list[str]] = {}
    for alias, version in sorted(aliases.items()):
        by_version.setdefault(version, []).append(alias)
    newest = sorted(versions, key=lambda v: int(v.version), reverse=True)
    shown = [v for i, v in enumerate(newest) if i < max(limit, 0) or v.version in by_version]
    if not versions:
        console.print("No versions registered yet: `mlops train --data FILE`")
    else:
        table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
        table.add_column("version", no_wrap=True)
        table.add_column("status", no_wrap=True)
        if wide:
            table.add_column("created (UTC)", no_wrap=True)
        table.add_column("metrics", no_wrap=not wide)
        table.add_column("data", overflow="fold")
        if wide:
            table.add_column("trigger")
        table.add_column("reasons", ratio=1, min_width=16)
        if wide:
            table.add_column("aliases")
        for v in shown:
            marks = ", ".join(by_version.get(v.version, []))
            cells = [
                f"v{v.version}" + (f"\n{marks}" if marks and not wide else ""),
                v.status,
                *([_when(v.created_at)] if wide else []),
                separator.join(_headline(v.metrics)) or "-",
                separator.join(_data_summary(v.lineage)) or "-",
                *([_trigger(v.lineage)] if wide else []),
                _short("; ".join(v.reasons), 160 if wide else 80) or "-",
                *([marks] if wide else []),
            ]
            row = [_escape(cell) for cell in cells]
            row[1] = f"[{_status_style(v.status)}]{row[1]}[/]"
            table.add_row(*row)
        console.print(table)
        if len(shown) < len(versions):
            console.print(
                f"... and {len(versions) - len(shown)} older versions "
                "(--versions N, or --json for all)"
            )
    if rollout is not None:
        console.print(_escape(_rollout_line(rollout)))
    console.print("Recent alias changes")
    if not history:
        console.print("  none yet")
        return
    moves = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    moves.add_column("when (UTC)", no_wrap=True)
    moves.add_column("alias", no_wrap=True)
    moves.add_column("change", no_wrap=True)
    moves.add_column("by", overflow="fold")
    moves.add_column("reason", ratio=1, min_width=16)
    for change in history:
        before = f"v{change.from_version}" if change.from_version else "none"
        kind = "" if change.kind == "promote" else f"{separator}({change.kind})"
        moves.add_row(
            _when(change.at).replace(" ", separator),
            change.alias,
            f"{before} -> v{change.to_version}{kind}",
            _escape(_short_actor(change.actor)),
            _escape(change.reason or "-"),
        )
    console.print(moves)


def _status_style(status: str) -> str:
    from mlops.adapters.registry import CANDIDATE, HELD, PRODUCTION, REJECTED

    styles = {PRODUCTION: "bold green", CANDIDATE: "cyan", REJECTED: "red", HELD: "yellow"}
    return styles.get(status, "dim")


def _rollout_line(rollout: Rollout) -> str:
    check = rollout.last_check or {}
    verdict = (
        f"{check.get('decision', '?')} at {_when(str(check.get('at', '')))}: "
        + "; ".join(str(r) for r in check.get("reasons", [])[:3])
        if check
        else "not evaluated yet"
    )
    forced = " (forced)" if rollout.forced else ""
    switched = ""
    if rollout.switches:
        last = rollout.switches[-1]
        switched = (
            f"; switched from {last.get('from_mode', '?')} by "
            f"{_short_actor(str(last.get('actor', '?')))}: {last.get('reason') or '-'}"
        )
    return (
        f"Rollout: {rollout.describe}{forced}, since {_when(rollout.started_at)} UTC "
        f"({rollout.rollout_id}){switched}; latest verdict: {verdict}"
    )


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


def _when(iso: str) -> str:
    """``2025-03-01 14:02`` in UTC; the stored text when it is not ISO 8601."""
    from datetime import UTC, datetime

    try:
        moment = datetime.fromisoformat(iso)
    except ValueError:
        return iso
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%d %H:%M")


def _headline(metrics: Mapping[str, float]) -> list[str]:
    names = [m for m in _HEADLINE_METRICS if m in metrics] or list(metrics)
    return [f"{name} {_number(metrics[name])}" for name in names[:2]]


def _number(value: float) -> str:
    try:
        return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.3g}"
    except (TypeError, ValueError):  # a metric stored as null or text
        return str(value)


def _data_summary(lineage: Mapping[str, Any]) -> list[str]:
    """Rows, and the name of the object a version was trained on (``+N``: and N others),
    from its lineage's ``data``: a list of ``{"uri", "rows", "role"}`` or one of them."""
    data = lineage.get("data")
    listed = data if isinstance(data, list) else [data]
    sources = [s for s in listed if isinstance(s, Mapping)]
    if not sources:
        return []
    rows = [s["rows"] for s in sources if isinstance(s.get("rows"), int)]
    main = next((s for s in sources if s.get("role") == "new"), sources[0])
    name = str(main.get("uri") or main.get("key") or "").rstrip("/").rsplit("/", 1)[-1]
    more = f"+{len(sources) - 1}" if len(sources) > 1 else ""
    parts = [f"{sum(rows):,} rows"] if rows else []
    return [*parts, " ".join(part for part in (name, more) if part)]


def _trigger(lineage: Mapping[str, Any]) -> str:
    trigger = lineage.get("trigger")
    if isinstance(trigger, Mapping):
        trigger = trigger.get("kind")
    names = {"s3_upload": "upload", "retrain_request": "retrain request"}
    return names.get(str(trigger), str(trigger)) if trigger else "-"


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3].rstrip() + "..."


def _short_actor(actor: str) -> str:
    """``Admin/alice`` for an assumed role's ARN, ``alice`` for a user's; else as it is."""
    if not actor.startswith("arn:"):
        return actor
    kind, _, name = actor.rsplit(":", 1)[-1].partition("/")
    return name if kind in ("assumed-role", "user", "role") and name else actor
