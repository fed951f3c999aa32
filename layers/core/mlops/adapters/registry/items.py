"""How the registry's items are keyed and encoded: keys, timestamps, the status rules of a
write, and each item's attributes to and from its record (the layout is in the package's
docstring). Every part of the registry spells an attribute through these."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from mlops.adapters.registry.records import AliasChange, Rollout, VersionRecord
from mlops.domain.names import ARCHIVED, CANDIDATE, HELD, PRODUCTION, REJECTED, ROLLOUT_ALIAS
from mlops.domain.versions import parse_version
from mlops.errors import InvalidInputError, Problem

# Written before statuses had a lifecycle; read (and accepted on write) as a candidate.
_LEGACY_STATUSES = {"registered": CANDIDATE}
# ``production`` comes only from a promotion, which moves the alias in the same transaction.
_WRITABLE_STATUSES = (CANDIDATE, ARCHIVED, REJECTED, HELD)


@dataclass(frozen=True)
class _HistoryEntry:
    change: AliasChange
    sequence: int
    unwinds: int


def _pk(model: str) -> dict[str, str]:
    return {"S": f"model#{model}"}


def _version_sk(version: str) -> dict[str, str]:
    return {"S": f"version#{int(parse_version(version)):010d}"}


def _version_key(model: str, version: str) -> dict[str, Any]:
    return {"pk": _pk(model), "sk": _version_sk(version)}


def _alias_key(model: str, alias: str) -> dict[str, Any]:
    return {"pk": _pk(model), "sk": {"S": f"alias#{alias}"}}


def _history_prefix(alias: str) -> str:
    return f"history#{alias}#"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _rollout_now() -> str:
    """When a rollout starts or switches. Milliseconds: captures are, and the evaluator reads
    traffic from this instant."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _optional(value: str | None) -> dict[str, Any]:
    return {"S": value} if value is not None else {"NULL": True}


def _strings(values: tuple[str, ...] | list[str]) -> dict[str, Any]:
    return {"L": [{"S": v} for v in values]}


def _status_condition(refused: tuple[str, ...] | list[str]) -> tuple[str, dict[str, Any]]:
    """The condition that a version item exists and has none of the statuses ``refused``, and
    its values (the item's ``status`` is named ``#status``)."""
    condition = " AND ".join(["attribute_exists(sk)", *(f"#status <> :{s}" for s in refused)])
    return condition, {f":{s}": {"S": s} for s in refused}


def _status_to_write(status: str) -> str:
    status = _LEGACY_STATUSES.get(status, status)
    if status not in _WRITABLE_STATUSES:
        raise _status_problem(status)
    return status


def _status_problem(status: str) -> InvalidInputError:
    allowed = ", ".join(_WRITABLE_STATUSES)
    hint = " (a version becomes production only by promotion)" if status == PRODUCTION else ""
    return InvalidInputError(
        f"{status!r} cannot be written as a version's status{hint}",
        [Problem("status", f"expected one of {allowed}, got {status!r}")],
    )


def _version_item(record: VersionRecord) -> dict[str, Any]:
    status = _status_to_write(record.status)
    return {
        "pk": _pk(record.model),
        "sk": _version_sk(record.version),
        "version": {"S": record.version},
        "created_at": {"S": record.created_at},
        "manifest_key": {"S": record.manifest_key},
        "model_sha256": {"S": record.model_sha256},
        "metrics": {"S": json.dumps(dict(record.metrics))},
        "status": {"S": status},
        "reasons": _strings(record.reasons),
        "lineage": {"S": json.dumps(dict(record.lineage), default=str)},
    }


def _record(model: str, item: Mapping[str, Any]) -> VersionRecord:
    status = item["status"]["S"]
    lineage = item.get("lineage", {}).get("S")
    return VersionRecord(
        model=model,
        version=item["version"]["S"],
        created_at=item["created_at"]["S"],
        manifest_key=item["manifest_key"]["S"],
        model_sha256=item["model_sha256"]["S"],
        metrics=json.loads(item["metrics"]["S"]),
        status=_LEGACY_STATUSES.get(status, status),
        reasons=tuple(value["S"] for value in item.get("reasons", {}).get("L", [])),
        lineage=json.loads(lineage) if lineage else {},
    )


def _rollout_item(rollout: Rollout) -> dict[str, Any]:
    """The rollout item a start writes."""
    return (
        _alias_key(rollout.model, ROLLOUT_ALIAS)
        | {
            "version": {"S": rollout.version},
            "production_version": {"S": rollout.production_version},
        }
        | _rollout_attributes(rollout)
    )


def _rollout_attributes(rollout: Rollout) -> dict[str, Any]:
    """What a start writes and a switch rewrites: the mode and share, the verdict's identity
    and clock, who and why; ``switches`` once there are any."""
    attributes = {
        "mode": {"S": rollout.mode},
        "percent": {"N": repr(rollout.percent)},
        "rollout_id": {"S": rollout.rollout_id},
        "started_at": {"S": rollout.started_at},
        "updated_at": {"S": rollout.started_at},
        "actor": {"S": rollout.actor},
        "reason": {"S": rollout.reason},
        "last_check": {"S": json.dumps(dict(rollout.last_check), default=str)},
        "forced": {"BOOL": rollout.forced},
    }
    if rollout.switches:
        attributes["switches"] = {"S": json.dumps([dict(s) for s in rollout.switches])}
    # Always written, so a switch starts its ramp afresh
    attributes["steps"] = {"S": json.dumps([dict(s) for s in rollout.steps])}
    attributes["step_started_at"] = {"S": rollout.step_since}
    return attributes


def _rollout(model: str, item: Mapping[str, Any]) -> Rollout:
    check = item.get("last_check", {}).get("S")
    switches = item.get("switches", {}).get("S")
    steps = item.get("steps", {}).get("S")
    return Rollout(
        model=model,
        version=item["version"]["S"],
        production_version=item["production_version"]["S"],
        mode=item["mode"]["S"],
        percent=float(item["percent"]["N"]),
        rollout_id=item["rollout_id"]["S"],
        started_at=item["started_at"]["S"],
        actor=item.get("actor", {}).get("S", ""),
        reason=item.get("reason", {}).get("S", ""),
        last_check=json.loads(check) if check else {},
        forced=bool(item.get("forced", {}).get("BOOL", False)),
        switches=tuple(json.loads(switches)) if switches else (),
        # "" when the share began with the rollout (what a start or a switch writes)
        step_started_at=_later_step(item),
        steps=tuple(json.loads(steps)) if steps else (),
    )


def _later_step(item: Mapping[str, Any]) -> str:
    step = item.get("step_started_at", {}).get("S", "")
    return "" if step == item["started_at"]["S"] else step


def _history_item(
    model: str, change: AliasChange, sequence: int, unwinds: int | None
) -> dict[str, Any]:
    """The history item of ``change``, the alias's ``sequence``-th move."""
    item: dict[str, Any] = {
        "pk": _pk(model),
        "sk": {"S": f"{_history_prefix(change.alias)}{sequence:010d}"},
        "alias": {"S": change.alias},
        "from_version": _optional(change.from_version),
        "to_version": {"S": change.to_version},
        "actor": {"S": change.actor},
        "reason": {"S": change.reason},
        "at": {"S": change.at},
        "kind": {"S": change.kind},
        "sequence": {"N": str(sequence)},
    }
    if unwinds is not None:
        item["unwinds"] = {"N": str(unwinds)}
    return item


def _history_entry(item: Mapping[str, Any]) -> _HistoryEntry:
    previous = item["from_version"]
    change = AliasChange(
        alias=item["alias"]["S"],
        from_version=None if previous.get("NULL") else previous["S"],
        to_version=item["to_version"]["S"],
        actor=item["actor"]["S"],
        reason=item["reason"]["S"],
        at=item["at"]["S"],
        kind=item["kind"]["S"],
    )
    unwinds = int(item["unwinds"]["N"]) if "unwinds" in item else 1
    return _HistoryEntry(change, int(item["sequence"]["N"]), unwinds)
