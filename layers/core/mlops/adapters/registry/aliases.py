"""What the registry's aliases say: where each points (with the active rollout, in the query
inference makes), each alias's history, and the version a rollback returns to."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from mlops.adapters.registry.items import (
    _alias_key,
    _history_entry,
    _history_prefix,
    _HistoryEntry,
    _rollout,
)
from mlops.adapters.registry.records import ROLLBACK, AliasChange, Rollout
from mlops.adapters.registry.versions import VersionItems
from mlops.domain.names import REJECTED, ROLLOUT_ALIAS
from mlops.errors import ConflictError, InvalidInputError, Problem

_ALIAS_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}", re.ASCII)
_HISTORY_PAGE = 50


@dataclass(frozen=True)
class _AliasState:
    version: str | None
    changes: int | None  # None: no item, or one written before aliases counted their moves


class AliasReads(VersionItems):
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
        item = self._get_item(_alias_key(model, ROLLOUT_ALIAS))
        return _rollout(model, item) if item and "mode" in item else None

    def get_alias(self, model: str, alias: str) -> str | None:
        return self._alias_state(model, alias).version

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
        items = self._query(model, _history_prefix(alias), newest_first=True, page=_HISTORY_PAGE)
        for item in items:
            yield _history_entry(item)

    def _alias_state(self, model: str, alias: str) -> _AliasState:
        item = self._get_item(_alias_key(model, alias))
        if not item:
            return _AliasState(None, None)
        changes = item.get("changes", {}).get("N")
        return _AliasState(str(item["version"]["S"]), int(changes) if changes else None)


def _check_alias(alias: str) -> None:
    if not _ALIAS_NAME.fullmatch(alias):
        raise InvalidInputError(
            f"{alias!r} is not an alias name",
            [Problem("alias", "expected letters, digits, - or _ (at most 64)")],
        )


def _moved(model: str, alias: str, expected: str | None, actual: str | None) -> str:
    now = f", it points at {actual}" if actual else ""
    return f"alias {alias} of {model} moved since it was read (expected {expected}{now})"
