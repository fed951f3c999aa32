"""The model registry in DynamoDB: versions with a status and lineage, aliases, alias history.

One table, ``pk = model#<name>``; the sort key says what an item is:

``version#<10-digit version>``
    A registered version: ``version``, ``created_at``, ``manifest_key``, ``model_sha256``,
    ``metrics`` (JSON), ``status`` (``candidate`` | ``production`` | ``archived`` |
    ``rejected`` | ``held``; the legacy ``registered`` reads as ``candidate``), ``reasons`` (a
    list of strings: why it was rejected, held, archived or rolled back) and ``lineage``
    (JSON: what the gate knew when it registered the version, e.g. ``trigger``, ``data``
    ``{"objects": [...], "rows": n}``, challenger and champion metrics on the shared holdout,
    parity, timings).
``alias#<alias>``
    The version the alias points at (``version``), ``updated_at``, ``previous_version`` and
    ``changes``: how many times it has moved, the sequence number of its latest history item.
``history#<alias>#<10-digit sequence>``
    One move of the alias: ``alias``, ``from_version`` (NULL for the first), ``to_version``,
    ``actor``, ``reason``, ``at`` (ISO UTC), ``kind`` (``promote`` | ``rollback``),
    ``sequence`` and, for a rollback, ``unwinds`` (how many promotions it undid).
``counter``
    The next version number.
``alias#candidate`` with ``mode``
    An active rollout (DESIGN §6): the candidate ``version``, ``mode`` (``shadow`` |
    ``canary``), ``percent`` (the canary's share of requests), ``rollout_id``,
    ``production_version`` (the champion it is compared with), ``started_at``, ``actor``,
    ``reason``, ``last_check`` (JSON: the evaluator's latest verdict), ``forced`` (started or
    switched with force: a rejected version, or a held one's canary) and ``switches`` (JSON:
    each earlier mode and share it ran in, who switched it, when and why). The inference
    function reads it with the aliases, in the same query. Ending the rollout deletes it in
    the transaction that promotes the candidate, or that rejects it (a rollback).

A ``held`` version (DESIGN §6: its labels disagree with the world) is never promoted directly
nor put before users on its own evidence: it may run as a shadow, which the evaluator promotes
once live labels clear it; a canary or a direct promotion of it needs force. Every such rule is
checked when read and again as a condition of the write, so a racing writer cannot bypass it.

An alias moves in one ``TransactWriteItems``: the alias (conditional on the version and change
count it was read with, so of two racing moves exactly one wins), its history item, and for
``production`` the statuses of the version it names (``production``) and of the one it leaves
(``archived``). The history is ordered by the alias's own sequence, not by clocks: a laptop
whose clock is five minutes off cannot reorder it, and rollback depends on that order.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from mlops.domain.names import (  # re-exported: callers name them from the registry too
    ARCHIVED,
    CANARY,
    CANDIDATE,
    HELD,
    PRODUCTION,
    REJECTED,
    ROLLOUT_ALIAS,
    ROLLOUT_MODES,
    SHADOW,
    STATUSES,
)
from mlops.domain.versions import parse_version
from mlops.errors import ConflictError, InvalidInputError, Problem, StorageError

__all__ = [
    "ARCHIVED",
    "CANARY",
    "CANDIDATE",
    "HELD",
    "PRODUCTION",
    "REJECTED",
    "ROLLOUT_ALIAS",
    "ROLLOUT_MODES",
    "SHADOW",
    "STATUSES",
]

# Written before statuses had a lifecycle; read (and accepted on write) as a candidate.
_LEGACY_STATUSES = {"registered": CANDIDATE}
# ``production`` comes only from a promotion, which moves the alias in the same transaction.
_WRITABLE_STATUSES = (CANDIDATE, ARCHIVED, REJECTED, HELD)

PROMOTE = "promote"
ROLLBACK = "rollback"
MIN_CANARY_PERCENT = 0.01  # one request in 10,000: below it a canary never answers
_ALIAS_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}", re.ASCII)
_HISTORY_PAGE = 50


@dataclass(frozen=True)
class VersionRecord:
    model: str
    version: str
    created_at: str
    manifest_key: str
    model_sha256: str
    metrics: Mapping[str, float]
    status: str
    reasons: tuple[str, ...] = ()
    lineage: Mapping[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: plain dicts and lists, whatever mappings the record was built with."""
        return {f.name: getattr(self, f.name) for f in fields(self)} | {
            "metrics": dict(self.metrics),
            "reasons": list(self.reasons),
            "lineage": dict(self.lineage),
        }


@dataclass(frozen=True)
class AliasChange:
    """One move of an alias, as the history records it."""

    alias: str
    from_version: str | None
    to_version: str
    actor: str
    reason: str
    at: str
    kind: str  # promote | rollback

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Rollout:
    """A candidate being proven on live traffic before it takes production."""

    model: str
    version: str
    production_version: str
    mode: str  # shadow | canary
    percent: float  # the canary's share of requests (0 for a shadow)
    rollout_id: str
    started_at: str
    actor: str
    reason: str
    last_check: Mapping[str, Any] = field(default_factory=dict)
    forced: bool = False  # started or switched with force (a rejected or held version)
    # Each earlier mode and share, newest last: {"at", "actor", "reason", "from_mode",
    # "from_percent", "from_rollout_id", "from_started_at", "to_mode", "to_percent"}.
    switches: tuple[Mapping[str, Any], ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)} | {
            "last_check": dict(self.last_check),
            "switches": [dict(s) for s in self.switches],
        }

    @property
    def phase(self) -> str:
        """``shadow`` or ``canary 30 %``: what users see of the candidate."""
        return phase(self.mode, self.percent)

    @property
    def describe(self) -> str:
        share = f" {self.percent:g}%" if self.mode == CANARY else ""
        return f"{self.mode}{share} of v{self.version} against v{self.production_version}"

    def runs_as(self, mode: str, percent: float) -> bool:
        """Whether starting ``mode`` at ``percent`` asks for what this rollout already does."""
        return self.mode == mode and (mode == SHADOW or self.percent == float(percent))


@dataclass(frozen=True)
class _AliasState:
    version: str | None
    changes: int | None  # None: no item, or one written before aliases counted their moves


@dataclass(frozen=True)
class _HistoryEntry:
    change: AliasChange
    sequence: int
    unwinds: int


def _pk(model: str) -> dict[str, str]:
    return {"S": f"model#{model}"}


def _version_sk(version: str) -> dict[str, str]:
    return {"S": f"version#{int(parse_version(version)):010d}"}


def _history_prefix(alias: str) -> str:
    return f"history#{alias}#"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _optional(value: str | None) -> dict[str, Any]:
    return {"S": value} if value is not None else {"NULL": True}


def _strings(values: tuple[str, ...] | list[str]) -> dict[str, Any]:
    return {"L": [{"S": v} for v in values]}


class Registry:
    def __init__(self, table: str, dynamodb: Any, *, page_size: int | None = None) -> None:
        """``page_size`` caps items per query page (DynamoDB pages at 1 MB by itself)."""
        self.table = table
        self._db = dynamodb
        self._page_size = page_size

    # ------------------------------------------------------------------------------ versions

    def next_version(self, model: str) -> str:
        """Allocate the next version number atomically (1, 2, 3, ...)."""
        response = self._call(
            "update_item",
            TableName=self.table,
            Key={"pk": _pk(model), "sk": {"S": "counter"}},
            UpdateExpression="ADD next_version :one",
            ExpressionAttributeValues={":one": {"N": "1"}},
            ReturnValues="UPDATED_NEW",
        )
        return str(response["Attributes"]["next_version"]["N"])

    def put_version(self, record: VersionRecord, *, candidate_id: str | None = None) -> None:
        """Register a version once; a second registration of it is a ``ConflictError``.

        With ``candidate_id`` the version and a ``candidate#<id>`` item naming it are written in
        one transaction, so a staged candidate is registered at most once: a retried gate finds
        its version (``version_for_candidate``) instead of registering another."""
        item = self._version_item(record)
        if candidate_id is None:
            self._call(
                "put_item",
                TableName=self.table,
                Item=item,
                ConditionExpression="attribute_not_exists(sk)",
                conflict=f"version {record.version} of {record.model} is already registered",
            )
            return
        self._transact(
            [
                (
                    {
                        "Put": {
                            "TableName": self.table,
                            "Item": item,
                            "ConditionExpression": "attribute_not_exists(sk)",
                        }
                    },
                    f"version {record.version} of {record.model} is already registered",
                ),
                (
                    {
                        "Put": {
                            "TableName": self.table,
                            "Item": {
                                "pk": _pk(record.model),
                                "sk": {"S": f"candidate#{candidate_id}"},
                                "version": {"S": record.version},
                            },
                            "ConditionExpression": "attribute_not_exists(sk)",
                        }
                    },
                    f"candidate {candidate_id} of {record.model} is already registered",
                ),
            ]
        )

    def version_for_candidate(self, model: str, candidate_id: str) -> str | None:
        """The version a staged candidate was registered as, if it was."""
        response = self._call(
            "get_item",
            TableName=self.table,
            Key={"pk": _pk(model), "sk": {"S": f"candidate#{candidate_id}"}},
            ConsistentRead=True,
        )
        item = response.get("Item")
        return str(item["version"]["S"]) if item else None

    def _version_item(self, record: VersionRecord) -> dict[str, Any]:
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

    def get_version(self, model: str, version: str) -> VersionRecord | None:
        response = self._call(
            "get_item",
            TableName=self.table,
            Key={"pk": _pk(model), "sk": _version_sk(version)},
            ConsistentRead=True,
        )
        item = response.get("Item")
        return _record(model, item) if item else None

    def list_versions(self, model: str) -> list[VersionRecord]:
        items = self._query(model, "version#")
        return [_record(model, item) for item in items]

    def set_status(
        self, model: str, version: str, status: str, reasons: tuple[str, ...] = ()
    ) -> None:
        """Set a registered version's status; ``reasons``, when given, replace its reasons
        (pass them all: the gate's and the new one).

        ``production`` is refused (only a promotion, which moves the alias in the same
        transaction, sets it), and so is changing the version production points at: move
        production off it first (promote another version, or roll back).
        """
        version = parse_version(version)
        if status not in _WRITABLE_STATUSES:
            raise _status_problem(status)
        record = self.get_version(model, version)
        if record is None:
            raise ConflictError(f"version {version} of {model} is not registered")
        if record.status == PRODUCTION:
            raise ConflictError(
                f"version {version} of {model} is in production: promote another version "
                "or roll back before changing its status"
            )
        expression = "SET #status = :status, updated_at = :now"
        values: dict[str, Any] = {
            ":status": {"S": status},
            ":now": {"S": _now()},
            ":production": {"S": PRODUCTION},
        }
        if reasons:
            expression += ", reasons = :reasons"
            values[":reasons"] = _strings(tuple(reasons))
        self._call(
            "update_item",
            TableName=self.table,
            Key={"pk": _pk(model), "sk": _version_sk(version)},
            UpdateExpression=expression,
            # Guards the read above: the version was promoted in between.
            ConditionExpression="attribute_exists(sk) AND #status <> :production",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues=values,
            conflict=f"version {version} of {model} was promoted while its status was being set",
        )

    # ------------------------------------------------------------------------------- aliases

    def aliases(self, model: str) -> dict[str, str]:
        """Every alias of ``model`` and the version it points at."""
        return self.serving(model)[0]

    def serving(self, model: str) -> tuple[dict[str, str], Rollout | None]:
        """The aliases and the active rollout, if any, in one query: what inference serves."""
        aliases: dict[str, str] = {}
        rollout = None
        for item in self._query(model, "alias#"):
            name = item["sk"]["S"].removeprefix("alias#")
            aliases[name] = item["version"]["S"]
            if name == ROLLOUT_ALIAS and "mode" in item:
                rollout = _rollout(model, item)
        return aliases, rollout

    def get_rollout(self, model: str) -> Rollout | None:
        response = self._call(
            "get_item",
            TableName=self.table,
            Key={"pk": _pk(model), "sk": {"S": f"alias#{ROLLOUT_ALIAS}"}},
            ConsistentRead=True,
        )
        item = response.get("Item")
        return _rollout(model, item) if item and "mode" in item else None

    def start_rollout(
        self,
        model: str,
        version: str,
        *,
        mode: str,
        percent: float,
        rollout_id: str,
        actor: str,
        reason: str,
        force: bool = False,
        against: str | None = None,
    ) -> Rollout:
        """Start proving registered ``version`` against the current production version (with
        ``against``: only if production is that version, the one the candidate was judged
        against).

        One transaction: the rollout item (only if no rollout is active), a check that
        production still points where it was read and that ``version`` is registered, not in
        production and, unless ``force``, neither rejected nor (for a canary) held.
        ``ConflictError`` names what failed."""
        version = parse_version(version)
        check_rollout(mode, percent)
        production = self._alias_state(model, PRODUCTION).version
        if production is None:
            raise ConflictError(f"{model} has no production version to roll out against")
        if against is not None and production != against:
            raise ConflictError(_moved(model, PRODUCTION, against, production))
        if production == version:
            raise ConflictError(f"v{version} of {model} is already in production")
        self._check_rollout_status(model, version, mode, force)
        # Milliseconds: captures are, and the evaluator reads traffic from this instant.
        started = datetime.now(UTC).isoformat(timespec="milliseconds")
        rollout = Rollout(
            model=model,
            version=version,
            production_version=production,
            mode=mode,
            percent=float(percent) if mode == CANARY else 0.0,
            rollout_id=rollout_id,
            started_at=started,
            actor=actor,
            reason=reason,
            forced=force,
        )
        item = {
            "pk": _pk(model),
            "sk": {"S": f"alias#{ROLLOUT_ALIAS}"},
            "version": {"S": version},
            "production_version": {"S": production},
            "mode": {"S": mode},
            "percent": {"N": repr(rollout.percent)},
            "rollout_id": {"S": rollout_id},
            "started_at": {"S": started},
            "updated_at": {"S": started},
            "actor": {"S": actor},
            "reason": {"S": reason},
            "last_check": {"S": "{}"},
            "forced": {"BOOL": force},
        }
        self._transact(
            [
                (
                    {
                        "Put": {
                            "TableName": self.table,
                            "Item": item,
                            # A plain candidate alias (set by hand, before rollouts) is replaced.
                            "ConditionExpression": "attribute_not_exists(sk) OR "
                            "attribute_not_exists(#mode)",
                            "ExpressionAttributeNames": {"#mode": "mode"},
                        }
                    },
                    f"a rollout of {model} is already in progress: it must end "
                    "(promoted or rolled back) before another starts",
                ),
                (
                    {
                        "ConditionCheck": {
                            "TableName": self.table,
                            "Key": {"pk": _pk(model), "sk": {"S": f"alias#{PRODUCTION}"}},
                            "ConditionExpression": "#version = :production",
                            "ExpressionAttributeNames": {"#version": "version"},
                            "ExpressionAttributeValues": {":production": {"S": production}},
                        }
                    },
                    _moved(model, PRODUCTION, production, None),
                ),
                self._rollout_status_check(model, version, mode, force),
            ]
        )
        return rollout

    def switch_rollout(
        self,
        rollout: Rollout,
        *,
        mode: str,
        percent: float,
        rollout_id: str,
        actor: str,
        reason: str,
        force: bool = False,
    ) -> Rollout:
        """Run active ``rollout`` in another mode or share from now on, in one transaction.

        Its verdict starts again: a new ``rollout_id`` (an evaluation of the earlier mode that
        is still running can no longer act on it) and ``started_at`` (the bake, the request
        count and the evaluator's window start from the switch), no ``last_check``. The earlier
        mode, who switched and why are appended to ``switches``. The transaction is
        conditioned on ``rollout`` still being the active one (not promoted, rolled back or
        superseded since it was read) and on its version's status as for a start."""
        check_rollout(mode, percent)
        model, version = rollout.model, rollout.version
        self._check_rollout_status(model, version, mode, force)
        started = datetime.now(UTC).isoformat(timespec="milliseconds")
        share = float(percent) if mode == CANARY else 0.0
        switch = {
            "at": started,
            "actor": actor,
            "reason": reason,
            "from_mode": rollout.mode,
            "from_percent": rollout.percent,
            "from_rollout_id": rollout.rollout_id,
            "from_started_at": rollout.started_at,
            "to_mode": mode,
            "to_percent": share,
        }
        switched = replace(
            rollout,
            mode=mode,
            percent=share,
            rollout_id=rollout_id,
            started_at=started,
            actor=actor,
            reason=reason,
            last_check={},
            forced=rollout.forced or force,
            switches=(*rollout.switches, switch),
        )
        written = {
            "mode": {"S": mode},
            "percent": {"N": repr(share)},
            "rollout_id": {"S": rollout_id},
            "started_at": {"S": started},
            "updated_at": {"S": started},
            "actor": {"S": actor},
            "reason": {"S": reason},
            "last_check": {"S": "{}"},
            "forced": {"BOOL": switched.forced},
            "switches": {"S": json.dumps([dict(s) for s in switched.switches])},
        }
        self._transact(
            [
                (
                    {
                        "Update": {
                            "TableName": self.table,
                            "Key": {"pk": _pk(model), "sk": {"S": f"alias#{ROLLOUT_ALIAS}"}},
                            # Every name aliased: PERCENT is a reserved word, among others.
                            "UpdateExpression": "SET "
                            + ", ".join(f"#{name} = :{name}" for name in written),
                            "ConditionExpression": "#rollout_id = :id AND #version = :version",
                            "ExpressionAttributeNames": {f"#{name}": name for name in written}
                            | {"#version": "version"},
                            "ExpressionAttributeValues": {
                                f":{name}": value for name, value in written.items()
                            }
                            | {":id": {"S": rollout.rollout_id}, ":version": {"S": version}},
                        }
                    },
                    f"rollout {rollout.rollout_id} of {model} ({rollout.describe}) ended or was "
                    "superseded since it was read: nothing was switched",
                ),
                self._rollout_status_check(model, version, mode, force),
            ]
        )
        return switched

    def _check_rollout_status(self, model: str, version: str, mode: str, force: bool) -> None:
        """``ConflictError`` unless registered ``version`` may run as ``mode`` now: never
        while in production; a rejected one only with force; a held one as a shadow, or with
        force as a canary."""
        record = self.get_version(model, version)
        if record is None:
            raise ConflictError(f"version {version} of {model} is not registered")
        if record.status == PRODUCTION:
            raise ConflictError(f"v{version} of {model} is already in production")
        if record.status == REJECTED and not force:
            raise ConflictError(
                f"version {version} of {model} was rejected{_because(record.reasons)}: "
                "rolling it out needs force"
            )
        if record.status == HELD and mode == CANARY and not force:
            raise ConflictError(
                f"version {version} of {model} is held{_because(record.reasons)}: it may run "
                "only as a shadow until live labels clear it; a canary needs force"
            )

    def _rollout_status_check(
        self, model: str, version: str, mode: str, force: bool
    ) -> tuple[dict[str, Any], str]:
        """The condition of ``_check_rollout_status``, for the write's transaction."""
        refused = [PRODUCTION]
        if not force:
            refused += [REJECTED, HELD] if mode == CANARY else [REJECTED]
        names = " or ".join("promoted" if s == PRODUCTION else s for s in reversed(refused))
        return (
            {
                "ConditionCheck": {
                    "TableName": self.table,
                    "Key": {"pk": _pk(model), "sk": _version_sk(version)},
                    "ConditionExpression": " AND ".join(
                        ["attribute_exists(sk)", *(f"#status <> :{s}" for s in refused)]
                    ),
                    "ExpressionAttributeNames": {"#status": "status"},
                    "ExpressionAttributeValues": {f":{s}": {"S": s} for s in refused},
                }
            },
            f"version {version} of {model} was {names} meanwhile",
        )

    def record_check(self, model: str, rollout_id: str, check: Mapping[str, Any]) -> None:
        """Keep the evaluator's latest verdict on the rollout (what ``mlops status`` shows);
        ``ConflictError`` if that rollout has ended."""
        self._call(
            "update_item",
            TableName=self.table,
            Key={"pk": _pk(model), "sk": {"S": f"alias#{ROLLOUT_ALIAS}"}},
            UpdateExpression="SET last_check = :check, updated_at = :now",
            ConditionExpression="rollout_id = :id",
            ExpressionAttributeValues={
                ":check": {"S": json.dumps(dict(check), default=str)},
                ":now": {"S": _now()},
                ":id": {"S": rollout_id},
            },
            conflict=f"rollout {rollout_id} of {model} is no longer active",
        )

    def finish_rollout(
        self,
        rollout: Rollout,
        *,
        promote: bool,
        actor: str,
        reason: str,
        status: str = REJECTED,
        force: bool = False,
    ) -> AliasChange | None:
        """End ``rollout`` in one transaction, conditioned on it still being the active one.

        ``promote``: production moves to the candidate (if it still points at the version the
        rollout compared with), history item and statuses as for any promotion. A held
        candidate is promoted (its rollout's verdict is the live evidence it waited for); a
        rejected one only if the rollout was forced, or with ``force``. Otherwise the
        candidate is taken off traffic and gets ``status`` (``rejected`` after a failed
        rollout, ``archived`` when superseded) with ``rolled back: <reason>`` in its reasons;
        production is untouched."""
        end = (
            {
                "Delete": {
                    "TableName": self.table,
                    "Key": {"pk": _pk(rollout.model), "sk": {"S": f"alias#{ROLLOUT_ALIAS}"}},
                    "ConditionExpression": "rollout_id = :id",
                    "ExpressionAttributeValues": {":id": {"S": rollout.rollout_id}},
                }
            },
            f"rollout {rollout.rollout_id} of {rollout.model} is no longer active",
        )
        if promote:
            return self._move(
                rollout.model,
                PRODUCTION,
                rollout.version,
                rollout.production_version,
                actor=actor,
                reason=reason,
                kind=PROMOTE,
                target_must_exist=True,
                refuse=() if force or rollout.forced else (REJECTED,),
                extra=[end],
            )
        if status not in (REJECTED, ARCHIVED):
            raise _status_problem(status)
        self._transact(
            [
                end,
                (
                    {
                        "Update": {
                            "TableName": self.table,
                            "Key": {"pk": _pk(rollout.model), "sk": _version_sk(rollout.version)},
                            "UpdateExpression": "SET #status = :status, updated_at = :now, "
                            "reasons = list_append(if_not_exists(reasons, :none), :reason)",
                            "ConditionExpression": "attribute_exists(sk) AND "
                            "#status <> :production",
                            "ExpressionAttributeNames": {"#status": "status"},
                            "ExpressionAttributeValues": {
                                ":status": {"S": status},
                                ":now": {"S": _now()},
                                ":none": {"L": []},
                                ":reason": _strings([f"rolled back: {reason}"]),
                                ":production": {"S": PRODUCTION},
                            },
                        }
                    },
                    f"version {rollout.version} of {rollout.model} is in production",
                ),
            ]
        )
        return None

    def get_alias(self, model: str, alias: str) -> str | None:
        return self._alias_state(model, alias).version

    def promote(
        self,
        model: str,
        version: str,
        *,
        expected: str | None,
        actor: str,
        reason: str,
        alias: str = PRODUCTION,
        force: bool = False,
    ) -> AliasChange:
        """Point ``alias`` at registered ``version`` if it still points at ``expected``.

        One transaction: the alias, a ``promote`` history item and, for ``production``, the
        version's status (→ ``production``) and the previous version's (→ ``archived``). A
        ``rejected`` or ``held`` version is refused unless ``force`` (a held one is promoted
        by its shadow's verdict: ``finish_rollout``). Any condition that no longer holds (the
        alias moved, the version is not registered, was rejected or held) is a
        ``ConflictError`` naming it, and nothing is written.
        """
        version = parse_version(version)
        record = self.get_version(model, version)
        if record is None:
            raise ConflictError(f"version {version} of {model} is not registered")
        if record.status == REJECTED and not force:
            raise ConflictError(
                f"version {version} of {model} was rejected{_because(record.reasons)}: "
                "promoting it needs force"
            )
        if record.status == HELD and not force:
            raise ConflictError(
                f"version {version} of {model} is held{_because(record.reasons)}: it may run "
                "only as a shadow until live labels clear it; promoting it needs force"
            )
        return self._move(
            model,
            alias,
            version,
            expected,
            actor=actor,
            reason=reason,
            kind=PROMOTE,
            target_must_exist=True,
            refuse=() if force else (REJECTED, HELD),
        )

    def rollback(
        self,
        model: str,
        *,
        actor: str,
        reason: str,
        alias: str = PRODUCTION,
        check: Callable[[str], None] | None = None,
    ) -> AliasChange:
        """Move ``alias`` back to the version it pointed at before its current version was
        promoted; a second rollback goes one promotion further back (v1 → v2 → v3, rollback:
        v2, rollback: v1). Rejected or unregistered versions are walked past, never targeted.

        For ``production`` the version rolled back from becomes ``archived`` with
        ``rolled back: <reason>`` appended to its reasons. Nothing to roll back to is a
        ``ConflictError``.
        """
        _check_alias(alias)
        current = self._alias_state(model, alias).version
        if current is None:
            raise ConflictError(f"alias {alias} of {model} is not set: nothing to roll back")
        target, unwinds = self._rollback_target(model, alias, current)
        if check is not None:
            check(target)  # e.g. the target's artifacts still match the registry
        return self._move(
            model,
            alias,
            target,
            current,
            actor=actor,
            reason=reason,
            kind=ROLLBACK,
            target_must_exist=True,
            refuse=(REJECTED,),
            unwinds=unwinds,
            leaving_reason=f"rolled back: {reason}" if reason else f"rolled back by {actor}",
        )

    def history(self, model: str, alias: str | None = None, limit: int = 20) -> list[AliasChange]:
        """The latest ``limit`` moves of ``alias`` (or of every alias), newest first."""
        if limit <= 0:
            return []
        names = [alias] if alias is not None else sorted(self.aliases(model))
        entries: list[_HistoryEntry] = []
        for name in names:
            _check_alias(name)
            for count, entry in enumerate(self._history_entries(model, name)):
                if count == limit:
                    break
                entries.append(entry)
        entries.sort(key=lambda e: (e.change.at, e.sequence), reverse=True)
        return [e.change for e in entries[:limit]]

    def move_alias(
        self,
        model: str,
        alias: str,
        version: str,
        expected: str | None,
        *,
        actor: str = "unknown",
        reason: str = "",
    ) -> None:
        """Point ``alias`` at ``version`` if it still points at ``expected`` (None: unset).

        The unchecked move, kept for callers from before versions had statuses: the version
        need not be registered and may be rejected. It still writes a history item, and keeps
        the statuses of registered versions in step when the alias is ``production``. New
        code promotes with ``promote``.
        """
        self._move(
            model,
            alias,
            parse_version(version),
            expected,
            actor=actor,
            reason=reason,
            kind=PROMOTE,
            target_must_exist=False,
            refuse=(),
        )

    # ------------------------------------------------------------------------------ internals

    def _move(
        self,
        model: str,
        alias: str,
        to: str,
        expected: str | None,
        *,
        actor: str,
        reason: str,
        kind: str,
        target_must_exist: bool,
        refuse: tuple[str, ...],
        unwinds: int | None = None,
        leaving_reason: str | None = None,
        extra: list[tuple[dict[str, Any], str]] | None = None,
    ) -> AliasChange:
        _check_alias(alias)
        if expected is not None:
            expected = parse_version(expected, field="expected")
        state = self._alias_state(model, alias)
        if state.version != expected:
            raise ConflictError(_moved(model, alias, expected, state.version))
        if to == expected:
            raise ConflictError(f"alias {alias} of {model} already points at v{to}")
        if alias == ROLLOUT_ALIAS and self.get_rollout(model) is not None:
            raise ConflictError(
                f"alias {alias} of {model} names an active rollout: end it (`mlops rollback`) "
                "or start another with `mlops promote VERSION --rollout ...`"
            )
        at = _now()
        sequence = (state.changes or 0) + 1
        change = AliasChange(alias, expected, to, actor, reason, at, kind)
        key = {"pk": _pk(model), "sk": {"S": f"alias#{alias}"}}

        alias_values: dict[str, Any] = {
            ":to": {"S": to},
            ":at": {"S": at},
            ":from": _optional(expected),
            ":sequence": {"N": str(sequence)},
        }
        names = {"#version": "version"}
        if expected is None:
            alias_condition = "attribute_not_exists(#version)"
        else:
            alias_values[":expected"] = {"S": expected}
            alias_condition = "#version = :expected AND " + (
                "attribute_not_exists(changes)" if state.changes is None else "changes = :changes"
            )
            if state.changes is not None:
                alias_values[":changes"] = {"N": str(state.changes)}
        if alias == ROLLOUT_ALIAS:  # a rollout started since the check above
            alias_condition = f"({alias_condition}) AND attribute_not_exists(#mode)"
            names["#mode"] = "mode"
        history_item: dict[str, Any] = {
            "pk": _pk(model),
            "sk": {"S": f"{_history_prefix(alias)}{sequence:010d}"},
            "alias": {"S": alias},
            "from_version": _optional(expected),
            "to_version": {"S": to},
            "actor": {"S": actor},
            "reason": {"S": reason},
            "at": {"S": at},
            "kind": {"S": kind},
            "sequence": {"N": str(sequence)},
        }
        if unwinds is not None:
            history_item["unwinds"] = {"N": str(unwinds)}
        operations: list[tuple[dict[str, Any], str]] = [
            (
                {
                    "Update": {
                        "TableName": self.table,
                        "Key": key,
                        "UpdateExpression": "SET #version = :to, updated_at = :at, "
                        "previous_version = :from, changes = :sequence",
                        "ConditionExpression": alias_condition,
                        "ExpressionAttributeNames": names,
                        "ExpressionAttributeValues": alias_values,
                    }
                },
                _moved(model, alias, expected, None),
            ),
            (
                {
                    "Put": {
                        "TableName": self.table,
                        "Item": history_item,
                        "ConditionExpression": "attribute_not_exists(sk)",
                    }
                },
                f"history item {sequence} of alias {alias} of {model} already exists "
                "(a concurrent move)",
            ),
        ]
        target_exists = target_must_exist or self.get_version(model, to) is not None
        if target_exists:
            operations.append(self._target_operation(model, alias, to, at, refuse=refuse))
        if (
            alias == PRODUCTION
            and expected is not None
            and self.get_version(model, expected) is not None
        ):
            operations.append(self._archive_operation(model, expected, at, leaving_reason))
        self._transact(operations + (extra or []))
        return change

    def _target_operation(
        self, model: str, alias: str, version: str, at: str, *, refuse: tuple[str, ...]
    ) -> tuple[dict[str, Any], str]:
        """The version an alias moves to: registered, and in none of the statuses ``refuse``
        names; for production its status becomes production."""
        condition = " AND ".join(["attribute_exists(sk)", *(f"#status <> :{s}" for s in refuse)])
        values: dict[str, Any] = {f":{s}": {"S": s} for s in refuse}
        refused = {REJECTED: "was rejected", HELD: "is held"}
        problem = " or ".join(
            [f"version {version} of {model} is not registered", *(refused[s] for s in refuse)]
        )
        operation: dict[str, Any] = {
            "TableName": self.table,
            "Key": {"pk": _pk(model), "sk": _version_sk(version)},
            "ConditionExpression": condition,
        }
        if alias == PRODUCTION:
            values |= {":production": {"S": PRODUCTION}, ":at": {"S": at}}
            operation |= {
                "UpdateExpression": "SET #status = :production, updated_at = :at",
                "ExpressionAttributeNames": {"#status": "status"},
                "ExpressionAttributeValues": values,
            }
            return {"Update": operation}, problem
        if values:
            operation |= {
                "ExpressionAttributeNames": {"#status": "status"},
                "ExpressionAttributeValues": values,
            }
        return {"ConditionCheck": operation}, problem

    def _archive_operation(
        self, model: str, version: str, at: str, reason: str | None
    ) -> tuple[dict[str, Any], str]:
        """The version production leaves: archived, with ``reason`` appended if given."""
        expression = "SET #status = :archived, updated_at = :at"
        values: dict[str, Any] = {":archived": {"S": ARCHIVED}, ":at": {"S": at}}
        if reason:
            expression += ", reasons = list_append(if_not_exists(reasons, :none), :reason)"
            values |= {":none": {"L": []}, ":reason": _strings([reason])}
        return (
            {
                "Update": {
                    "TableName": self.table,
                    "Key": {"pk": _pk(model), "sk": _version_sk(version)},
                    "UpdateExpression": expression,
                    "ConditionExpression": "attribute_exists(sk)",
                    "ExpressionAttributeNames": {"#status": "status"},
                    "ExpressionAttributeValues": values,
                }
            },
            f"version {version} of {model} is no longer registered",
        )

    def _rollback_target(self, model: str, alias: str, current: str) -> tuple[str, int]:
        """The version to roll back to, and how many promotions that undoes.

        The history read newest first is a stack: a promotion pushed the version it left, a
        rollback popped ``unwinds`` promotions. Skipping what rollbacks already undid, the
        next promotion is the one that made ``current`` current; its ``from_version`` is the
        target, unless that version is rejected (or unregistered): then the walk goes on to
        the promotion that made *it* current.
        """
        position, skip, unwinds, passed = current, 0, 0, []
        for entry in self._history_entries(model, alias):
            if entry.change.kind == ROLLBACK:
                skip += entry.unwinds
                continue
            if skip:
                skip -= 1
                continue
            if entry.change.to_version != position:
                raise ConflictError(
                    f"the history of alias {alias} of {model} does not say how it came to "
                    f"v{position} (it was moved outside the registry): promote the version "
                    "you want instead"
                )
            unwinds += 1
            previous = entry.change.from_version
            if previous is None:
                break
            record = self.get_version(model, previous)
            if record is not None and record.status != REJECTED:
                return previous, unwinds
            passed.append(f"v{previous}")
            position = previous
        skipped = f" (passing {', '.join(passed)}: rejected or unregistered)" if passed else ""
        raise ConflictError(
            f"nothing to roll back to: no earlier version of {alias} of {model} than "
            f"v{current} in its history{skipped}"
        )

    def _history_entries(self, model: str, alias: str) -> Iterator[_HistoryEntry]:
        """The alias's history items, newest first, one query page at a time."""
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :prefix)",
            "ExpressionAttributeValues": {
                ":pk": _pk(model),
                ":prefix": {"S": _history_prefix(alias)},
            },
            "ConsistentRead": True,
            "ScanIndexForward": False,
            "Limit": self._page_size or _HISTORY_PAGE,
        }
        while True:
            response = self._call("query", **kwargs)
            for item in response.get("Items", []):
                yield _history_entry(item)
            if "LastEvaluatedKey" not in response:
                return
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def _alias_state(self, model: str, alias: str) -> _AliasState:
        response = self._call(
            "get_item",
            TableName=self.table,
            Key={"pk": _pk(model), "sk": {"S": f"alias#{alias}"}},
            ConsistentRead=True,
        )
        item = response.get("Item")
        if not item:
            return _AliasState(None, None)
        changes = item.get("changes", {}).get("N")
        return _AliasState(str(item["version"]["S"]), int(changes) if changes else None)

    def _transact(self, operations: list[tuple[dict[str, Any], str]]) -> None:
        """Write ``operations`` (each with what its condition failing means) atomically.

        botocore gives the call a ClientRequestToken and reuses it on retry, so a retry after
        a lost response is not mistaken for a conflict.
        """
        try:
            self._db.transact_write_items(TransactItems=[op for op, _ in operations])
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code")
            if code != "TransactionCanceledException":
                raise StorageError(f"registry transaction on {self.table} failed: {exc}") from exc
            codes = [r.get("Code", "None") for r in exc.response.get("CancellationReasons", [])]
            failed = [
                meaning
                for (_, meaning), reason in zip(operations, codes, strict=False)
                if reason == "ConditionalCheckFailed"
            ]
            if failed:
                raise ConflictError("; ".join(failed)) from exc
            if "TransactionConflict" in codes:
                raise ConflictError(
                    "another write to the same registry items was in progress: read the "
                    "registry again and retry"
                ) from exc
            raise StorageError(
                f"registry transaction on {self.table} was cancelled ({', '.join(codes)})"
            ) from exc
        except BotoCoreError as exc:
            raise StorageError(f"registry transaction on {self.table} failed: {exc}") from exc

    def _query(self, model: str, prefix: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :prefix)",
            "ExpressionAttributeValues": {":pk": _pk(model), ":prefix": {"S": prefix}},
            "ConsistentRead": True,
        }
        if self._page_size is not None:
            kwargs["Limit"] = self._page_size
        while True:
            response = self._call("query", **kwargs)
            items.extend(response.get("Items", []))
            if "LastEvaluatedKey" not in response:
                return items
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def _call(self, operation: str, conflict: str | None = None, **kwargs: Any) -> Any:
        try:
            return getattr(self._db, operation)(**kwargs)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code")
            if conflict and code == "ConditionalCheckFailedException":
                raise ConflictError(conflict) from exc
            raise StorageError(f"registry {operation} on {self.table} failed: {exc}") from exc
        except BotoCoreError as exc:
            raise StorageError(f"registry {operation} on {self.table} failed: {exc}") from exc


def check_rollout(mode: str, percent: float) -> None:
    """``InvalidInputError`` unless ``mode`` is a rollout mode and a canary's share is usable."""
    if mode not in ROLLOUT_MODES:
        raise InvalidInputError(
            f"{mode!r} is not a rollout mode",
            [Problem("mode", f"expected one of {', '.join(ROLLOUT_MODES)}")],
        )
    if mode == CANARY and not MIN_CANARY_PERCENT <= percent <= 100:
        raise InvalidInputError(
            f"a canary's share must be from {MIN_CANARY_PERCENT} to 100 percent, got {percent}",
            [Problem("percent", f"expected a number from {MIN_CANARY_PERCENT} to 100")],
        )


def phase(mode: str, percent: float) -> str:
    """``shadow``, or ``canary 30 %``: how a rollout puts its candidate before users."""
    return f"{mode} {percent:g} %" if mode == CANARY else mode


def _moved(model: str, alias: str, expected: str | None, actual: str | None) -> str:
    now = f", it points at {actual}" if actual else ""
    return f"alias {alias} of {model} moved since it was read (expected {expected}{now})"


def _because(reasons: tuple[str, ...]) -> str:
    return f" ({'; '.join(reasons)})" if reasons else ""


def _check_alias(alias: str) -> None:
    if not _ALIAS_NAME.fullmatch(alias):
        raise InvalidInputError(
            f"{alias!r} is not an alias name",
            [Problem("alias", "expected letters, digits, - or _ (at most 64)")],
        )


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


def _rollout(model: str, item: Mapping[str, Any]) -> Rollout:
    check = item.get("last_check", {}).get("S")
    switches = item.get("switches", {}).get("S")
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
    )


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
