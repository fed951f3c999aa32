"""The transactions that move an alias: a promotion, a rollback, the unchecked move of older
callers. Each writes the alias (conditional on what it was read as), its history item and, for
production, the statuses of the versions it moves to and leaves, or nothing at all."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mlops.adapters.registry.aliases import AliasReads, _check_alias, _moved
from mlops.adapters.registry.items import (
    _alias_key,
    _history_item,
    _now,
    _optional,
    _status_condition,
    _strings,
    _version_key,
)
from mlops.adapters.registry.records import PROMOTE, ROLLBACK, AliasChange, VersionRecord
from mlops.domain.names import ARCHIVED, HELD, PRODUCTION, REJECTED, ROLLOUT_ALIAS
from mlops.domain.versions import parse_version
from mlops.errors import ConflictError


class AliasMoves(AliasReads):
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
        self._registered(model, version, force=force, doing="promoting it", held="promoting it")
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

    def _registered(
        self, model: str, version: str, *, force: bool, doing: str, held: str | None
    ) -> VersionRecord:
        """Registered ``version``'s record; without ``force``, ``ConflictError`` if it was
        rejected (``doing`` it needs force) or is held and ``held`` names what needs force
        (None: a held version may, as a shadow)."""
        record = self.get_version(model, version)
        if record is None:
            raise ConflictError(f"version {version} of {model} is not registered")
        if record.status == REJECTED and not force:
            raise ConflictError(
                f"version {version} of {model} was rejected{_because(record.reasons)}: "
                f"{doing} needs force"
            )
        if record.status == HELD and held is not None and not force:
            raise ConflictError(
                f"version {version} of {model} is held{_because(record.reasons)}: it may run "
                f"only as a shadow until live labels clear it; {held} needs force"
            )
        return record

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
        operations: list[tuple[dict[str, Any], str]] = [
            (
                {
                    "Update": {
                        "TableName": self.table,
                        "Key": _alias_key(model, alias),
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
                        "Item": _history_item(model, change, sequence, unwinds),
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
        condition, values = _status_condition(refuse)
        refused = {REJECTED: "was rejected", HELD: "is held"}
        problem = " or ".join(
            [f"version {version} of {model} is not registered", *(refused[s] for s in refuse)]
        )
        operation: dict[str, Any] = {
            "TableName": self.table,
            "Key": _version_key(model, version),
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
                    "Key": _version_key(model, version),
                    "UpdateExpression": expression,
                    "ConditionExpression": "attribute_exists(sk)",
                    "ExpressionAttributeNames": {"#status": "status"},
                    "ExpressionAttributeValues": values,
                }
            },
            f"version {version} of {model} is no longer registered",
        )


def _because(reasons: tuple[str, ...]) -> str:
    return f" ({'; '.join(reasons)})" if reasons else ""
