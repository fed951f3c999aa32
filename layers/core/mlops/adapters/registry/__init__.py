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

The package holds one idea a module: ``records`` (what the registry hands out), ``items``
(keys and attribute codecs), ``table`` (calls, pages, transactions), ``versions``, ``aliases``
(reads and history), ``moves`` (alias transactions) and ``rollouts`` (rollout transactions).
"""

from __future__ import annotations

# This module is the registry's public face: callers import from ``mlops.adapters.registry``.
from mlops.adapters.registry.records import (
    AliasChange,
    Rollout,
    VersionRecord,
    check_rollout,
    phase,
)
from mlops.adapters.registry.rollouts import RolloutMoves
from mlops.domain.names import (  # callers name the statuses from the registry too
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
    "AliasChange",
    "Registry",
    "Rollout",
    "VersionRecord",
    "check_rollout",
    "phase",
]


class Registry(RolloutMoves):
    """The model registry on one DynamoDB table: its versions (``VersionItems``), what its
    aliases say (``AliasReads``), the transactions that move them (``AliasMoves``) and those
    of a rollout (``RolloutMoves``), each part built on the one before it."""
