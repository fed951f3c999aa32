"""The transactions of a rollout: start one, switch its mode or share, keep the evaluator's
verdict on it, end it (promoting the candidate or taking it off traffic). Each is conditioned
on what it was read as, and on the candidate's status, so a racing writer cannot bypass a rule."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from mlops.adapters.registry.aliases import _moved
from mlops.adapters.registry.items import (
    _alias_key,
    _now,
    _rollout_attributes,
    _rollout_item,
    _rollout_now,
    _status_condition,
    _status_problem,
    _strings,
    _version_key,
)
from mlops.adapters.registry.moves import AliasMoves
from mlops.adapters.registry.records import (
    PROMOTE,
    AliasChange,
    Rollout,
    canary_share,
    check_rollout,
)
from mlops.domain.names import ARCHIVED, CANARY, HELD, PRODUCTION, REJECTED, ROLLOUT_ALIAS
from mlops.domain.versions import parse_version
from mlops.errors import ConflictError


class RolloutMoves(AliasMoves):
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
        rollout = Rollout(
            model=model,
            version=version,
            production_version=production,
            mode=mode,
            percent=canary_share(mode, percent),
            rollout_id=rollout_id,
            started_at=_rollout_now(),
            actor=actor,
            reason=reason,
            forced=force,
        )
        self._transact(
            [
                (
                    {
                        "Put": {
                            "TableName": self.table,
                            "Item": _rollout_item(rollout),
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
                            "Key": _alias_key(model, PRODUCTION),
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
        started = _rollout_now()
        share = canary_share(mode, percent)
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
            step_started_at="",  # a switch starts the verdict, and any ramp, again
            steps=(),
        )
        written = _rollout_attributes(switched)
        self._transact(
            [
                (
                    {
                        "Update": {
                            "TableName": self.table,
                            "Key": _alias_key(model, ROLLOUT_ALIAS),
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
        held = "a canary" if mode == CANARY else None
        record = self._registered(model, version, force=force, doing="rolling it out", held=held)
        if record.status == PRODUCTION:
            raise ConflictError(f"v{version} of {model} is already in production")

    def _rollout_status_check(
        self, model: str, version: str, mode: str, force: bool
    ) -> tuple[dict[str, Any], str]:
        """The condition of ``_check_rollout_status``, for the write's transaction."""
        refused = [PRODUCTION]
        if not force:
            refused += [REJECTED, HELD] if mode == CANARY else [REJECTED]
        names = " or ".join("promoted" if s == PRODUCTION else s for s in reversed(refused))
        condition, values = _status_condition(refused)
        return (
            {
                "ConditionCheck": {
                    "TableName": self.table,
                    "Key": _version_key(model, version),
                    "ConditionExpression": condition,
                    "ExpressionAttributeNames": {"#status": "status"},
                    "ExpressionAttributeValues": values,
                }
            },
            f"version {version} of {model} was {names} meanwhile",
        )

    def step_rollout(self, rollout: Rollout, *, percent: float, actor: str, reason: str) -> Rollout:
        """Move active canary ``rollout`` up to ``percent`` of requests (a ramp's next step),
        in one conditional write: only while it is still the rollout read (same id) at the
        share it was read at, so two evaluators cannot both step it, and a rollout ended or
        switched meanwhile is left alone. The rollout id is kept: routing hashes it with the
        request, so a request the canary answered at 5 % it still answers at 25 %. The step
        gets its own clock (``step_started_at``: its bake and labels count from it) and no
        ``last_check``; the verdict's evidence still runs from ``started_at``."""
        check_rollout(rollout.mode, percent)
        if rollout.mode != CANARY or percent <= rollout.percent:
            raise ConflictError(
                f"the {rollout.describe} cannot step to {percent:g} %: only a canary steps, "
                "and only up"
            )
        now = _rollout_now()
        step = {
            "at": now,
            "actor": actor,
            "reason": reason,
            "from_percent": rollout.percent,
            "to_percent": float(percent),
        }
        stepped = replace(
            rollout,
            percent=float(percent),
            step_started_at=now,
            steps=(*rollout.steps, step),
            last_check={},
        )
        self._call(
            "update_item",
            TableName=self.table,
            Key=_alias_key(rollout.model, ROLLOUT_ALIAS),
            UpdateExpression="SET #percent = :percent, step_started_at = :now, "
            "steps = :steps, last_check = :check, updated_at = :now",
            ConditionExpression="rollout_id = :id AND #percent = :from",
            ExpressionAttributeNames={"#percent": "percent"},  # a reserved word
            ExpressionAttributeValues={
                ":percent": {"N": repr(float(percent))},
                ":from": {"N": repr(rollout.percent)},
                ":now": {"S": now},
                ":steps": {"S": json.dumps([dict(s) for s in stepped.steps])},
                ":check": {"S": "{}"},
                ":id": {"S": rollout.rollout_id},
            },
            conflict=f"rollout {rollout.rollout_id} of {rollout.model} ({rollout.describe}) "
            "ended, was switched or stepped since it was read: nothing was stepped",
        )
        return stepped

    def record_check(self, model: str, rollout_id: str, check: Mapping[str, Any]) -> None:
        """Keep the evaluator's latest verdict on the rollout (what ``mlops status`` shows);
        ``ConflictError`` if that rollout has ended."""
        self._call(
            "update_item",
            TableName=self.table,
            Key=_alias_key(model, ROLLOUT_ALIAS),
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
                    "Key": _alias_key(rollout.model, ROLLOUT_ALIAS),
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
                            "Key": _version_key(rollout.model, rollout.version),
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
