"""The registry's lifecycle against moto: statuses, lineage, transactional promotion and
rollback, the alias history, and what racing writers get."""

from __future__ import annotations

import functools
import itertools
import threading
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from moto.dynamodb.models import DynamoDBBackend

from mlops.adapters import aws
from mlops.adapters.registry import AliasChange, Registry, Rollout, VersionRecord
from mlops.domain.layout import version_prefix
from mlops.errors import ConflictError, InvalidInputError
from mlops.services import promotion
from tests.conftest import TABLE, moto_resources
from tests.integration.conftest import BeforeTransaction, BeforeWrite

_models = itertools.count(1)
LINEAGE = {
    "trigger": {"kind": "s3_upload", "key": "training-data/month-3.csv"},
    "data": [{"uri": "s3://data/training-data/month-3.csv", "rows": 4000, "role": "new"}],
    "champion": {"version": "1", "metrics": {"rmse": 41000.0}},
    "gate": {"metric": "rmse", "challenger": 39000.0, "champion": 41000.0, "passed": True},
    "timings": {"train_s": 2.5},
}


@pytest.fixture(scope="module")
def shared_moto() -> Iterator[None]:
    with moto_resources():
        yield


@pytest.fixture
def registry(shared_moto: None) -> Registry:
    """One moto backend for the module; each test works on its own model (``model``)."""
    return Registry(TABLE, aws.client("dynamodb"))


@pytest.fixture
def model(shared_moto: None) -> str:
    return f"registry-model-{next(_models)}"


@pytest.fixture
def serial_dynamodb(monkeypatch: pytest.MonkeyPatch) -> None:
    """DynamoDB applies each write and each transaction atomically; moto's backend does not
    under threads (a cancelled transaction even restores a copy of the whole table, undoing
    another thread's write). One lock around its operations gives moto DynamoDB's isolation,
    so what a race test exercises is the registry's conditions, not moto's thread safety."""
    lock = threading.RLock()

    def locked(method: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(method)
        def call(*args: Any, **kwargs: Any) -> Any:
            with lock:
                return method(*args, **kwargs)

        return call

    for name in ("get_item", "query", "put_item", "update_item", "transact_write_items"):
        monkeypatch.setattr(DynamoDBBackend, name, locked(getattr(DynamoDBBackend, name)))


def record(
    model: str,
    version: str,
    status: str = "candidate",
    reasons: tuple[str, ...] = (),
    lineage: dict[str, Any] | None = None,
) -> VersionRecord:
    return VersionRecord(
        model=model,
        version=version,
        created_at="2025-01-01T00:00:00+00:00",
        manifest_key=version_prefix(model, version) + "manifest.json",
        model_sha256="a" * 64,
        metrics={"rmse": 40000.0 + int(version)},
        status=status,
        reasons=reasons,
        lineage=lineage or {},
    )


def register(registry: Registry, model: str, *versions: str, status: str = "candidate") -> None:
    for version in versions:
        registry.put_version(record(model, version, status))


def promote(registry: Registry, model: str, version: str, **kwargs: Any) -> AliasChange:
    kwargs.setdefault("actor", "alice")
    kwargs.setdefault("reason", f"ship v{version}")
    return promotion.promote(registry, model, version, **kwargs)


def rollback(registry: Registry, model: str, reason: str = "canary regressed") -> AliasChange:
    return promotion.rollback(registry, model, actor="bob", reason=reason)


def statuses(registry: Registry, model: str) -> dict[str, str]:
    return {r.version: r.status for r in registry.list_versions(model)}


def items(model: str) -> list[dict[str, Any]]:
    response = aws.client("dynamodb").query(
        TableName=TABLE,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": f"model#{model}"}},
        ConsistentRead=True,
    )
    return list(response["Items"])


# ------------------------------------------------------------------------- versions, statuses


def test_a_version_round_trips_with_its_reasons_and_lineage(registry: Registry, model: str) -> None:
    registry.put_version(record(model, "1", reasons=("beat v0 by 5%",), lineage=LINEAGE))
    stored = registry.get_version(model, "1")
    assert stored == record(model, "1", reasons=("beat v0 by 5%",), lineage=LINEAGE)


def test_a_legacy_registered_version_reads_as_a_candidate(registry: Registry, model: str) -> None:
    # Given an item written before statuses, reasons and lineage existed
    aws.client("dynamodb").put_item(
        TableName=TABLE,
        Item={
            "pk": {"S": f"model#{model}"},
            "sk": {"S": "version#0000000001"},
            "version": {"S": "1"},
            "created_at": {"S": "2024-06-01T00:00:00+00:00"},
            "manifest_key": {"S": "models/m/1/manifest.json"},
            "model_sha256": {"S": "b" * 64},
            "metrics": {"S": '{"rmse": 1.0}'},
            "status": {"S": "registered"},
        },
    )
    stored = registry.get_version(model, "1")
    assert stored is not None
    assert (stored.status, stored.reasons, dict(stored.lineage)) == ("candidate", (), {})
    # And it promotes like any candidate
    promote(registry, model, "1")
    assert statuses(registry, model) == {"1": "production"}


def test_registering_as_registered_stores_a_candidate(registry: Registry, model: str) -> None:
    registry.put_version(record(model, "1", status="registered"))
    assert statuses(registry, model) == {"1": "candidate"}


@pytest.mark.parametrize("status", ["production", "ok", ""])
def test_a_version_cannot_be_registered_in_production_or_an_unknown_status(
    registry: Registry, model: str, status: str
) -> None:
    with pytest.raises(InvalidInputError, match="status"):
        registry.put_version(record(model, "1", status=status))
    assert items(model) == []


def test_set_status_replaces_the_reasons_of_a_registered_version(
    registry: Registry, model: str
) -> None:
    registry.put_version(record(model, "1", reasons=("passed the gate",)))
    registry.set_status(model, "1", "rejected", ("passed the gate", "canary regressed"))
    stored = registry.get_version(model, "1")
    assert stored is not None
    assert (stored.status, stored.reasons) == ("rejected", ("passed the gate", "canary regressed"))
    # Without reasons, the status changes and the reasons stay
    registry.set_status(model, "1", "archived")
    assert registry.get_version(model, "1") == record(
        model, "1", "archived", ("passed the gate", "canary regressed")
    )


def test_set_status_of_an_unregistered_version_conflicts_and_writes_nothing(
    registry: Registry, model: str
) -> None:
    with pytest.raises(ConflictError, match="not registered"):
        registry.set_status(model, "3", "rejected", ("bad",))
    assert items(model) == []


def test_set_status_never_makes_or_unmakes_production(registry: Registry, model: str) -> None:
    register(registry, model, "1", "2")
    promote(registry, model, "1")
    with pytest.raises(InvalidInputError, match="only by promotion"):
        registry.set_status(model, "2", "production")
    with pytest.raises(ConflictError, match="in production"):
        registry.set_status(model, "1", "rejected", ("no",))
    assert statuses(registry, model) == {"1": "production", "2": "candidate"}


# ------------------------------------------------------------------------------- promotion


def test_promotion_moves_the_alias_the_statuses_and_the_history_together(
    registry: Registry, model: str
) -> None:
    # Given two candidates
    register(registry, model, "1", "2")
    # When v1 then v2 are promoted
    first = promote(registry, model, "1")
    second = promote(registry, model, "2", reason="better rmse")
    # Then production names v2, v2 is in production and v1 archived
    assert registry.aliases(model) == {"production": "2"}
    assert statuses(registry, model) == {"1": "archived", "2": "production"}
    # And the history has both moves, newest first, with who and why
    assert registry.history(model) == [second, first]
    assert second == AliasChange(
        "production", "1", "2", "alice", "better rmse", second.at, "promote"
    )
    assert first.from_version is None
    assert datetime.fromisoformat(second.at).utcoffset() == timedelta(0)


def test_a_stale_expected_version_conflicts_and_changes_nothing(
    registry: Registry, model: str
) -> None:
    # Given production moved v1 -> v2, and a promoter that still believes it is on v1
    register(registry, model, "1", "2", "3")
    promote(registry, model, "1")
    promote(registry, model, "2")
    before = items(model)
    # When it promotes v3 expecting v1
    with pytest.raises(ConflictError, match="expected 1, it points at 2"):
        registry.promote(model, "3", expected="1", actor="carol", reason="stale")
    # Then the alias, every status and the history are as they were
    assert items(model) == before


def test_a_move_that_loses_the_race_inside_the_transaction_writes_nothing(
    registry: Registry, model: str
) -> None:
    # Given production on v1, and a promoter of v3 that reads it, then gets overtaken by
    # a promotion of v2 between its reads and its transaction
    register(registry, model, "1", "2", "3")
    promote(registry, model, "1")
    client = aws.client("dynamodb")
    racer = Registry(
        TABLE, BeforeTransaction(client, lambda: promote(registry, model, "2", actor="dave"))
    )
    # When its transaction arrives
    with pytest.raises(ConflictError, match=r"alias production of \S+ moved since it was read"):
        racer.promote(model, "3", expected="1", actor="carol", reason="late")
    # Then the cancelled transaction wrote nothing: the winner's state stands
    assert registry.aliases(model) == {"production": "2"}
    assert statuses(registry, model) == {"1": "archived", "2": "production", "3": "candidate"}
    assert [c.actor for c in registry.history(model)] == ["dave", "alice"]


def test_an_alias_that_went_away_and_came_back_still_fails_a_stale_move(
    registry: Registry, model: str
) -> None:
    # Given a promoter that read production on v1; meanwhile v2 was promoted and rolled back
    register(registry, model, "1", "2", "3")
    promote(registry, model, "1")

    def promote_and_roll_back() -> None:
        promote(registry, model, "2")
        rollback(registry, model)

    racer = Registry(TABLE, BeforeTransaction(aws.client("dynamodb"), promote_and_roll_back))
    # When its move arrives, production is on v1 again, but not the v1 it read
    with pytest.raises(ConflictError, match="moved since it was read"):
        racer.promote(model, "3", expected="1", actor="carol", reason="late")
    assert registry.aliases(model) == {"production": "1"}
    assert len(registry.history(model)) == 3


def test_two_racing_promotions_have_exactly_one_winner(
    registry: Registry, model: str, serial_dynamodb: None
) -> None:
    # Given production on v1 and two promoters that both read it
    register(registry, model, "1", "2", "3")
    promote(registry, model, "1")
    barrier = threading.Barrier(2)
    outcomes: dict[str, AliasChange | ConflictError] = {}

    def promote_from_v1(version: str) -> None:
        barrier.wait()
        try:
            outcomes[version] = registry.promote(
                model, version, expected="1", actor=f"promoter-{version}", reason="race"
            )
        except ConflictError as exc:
            outcomes[version] = exc

    threads = [threading.Thread(target=promote_from_v1, args=(v,)) for v in ("2", "3")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    # Then exactly one won, and the registry shows that one move and no other
    winners = [v for v, outcome in outcomes.items() if isinstance(outcome, AliasChange)]
    losers = [v for v, outcome in outcomes.items() if isinstance(outcome, ConflictError)]
    assert len(winners) == 1, outcomes
    assert len(losers) == 1, outcomes
    (winner,), (loser,) = winners, losers
    assert registry.aliases(model) == {"production": winner}
    assert statuses(registry, model) == {"1": "archived", winner: "production", loser: "candidate"}
    assert [(c.from_version, c.to_version) for c in registry.history(model)] == [
        ("1", winner),
        (None, "1"),
    ]


def test_racing_registrations_get_distinct_versions(
    registry: Registry, model: str, serial_dynamodb: None
) -> None:
    # Given 8 writers that allocate a version and register it at the same moment
    barrier = threading.Barrier(8)
    allocated: list[str] = []
    errors: list[BaseException] = []

    def register_one() -> None:
        barrier.wait()
        try:
            version = registry.next_version(model)
            registry.put_version(record(model, version))
            allocated.append(version)
        except Exception as exc:  # collected, and asserted on below
            errors.append(exc)

    threads = [threading.Thread(target=register_one) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    # Then each got its own version and every one is registered
    assert errors == []
    assert sorted(allocated, key=int) == [str(v) for v in range(1, 9)]
    assert [r.version for r in registry.list_versions(model)] == [str(v) for v in range(1, 9)]
    # And registering an existing version again conflicts and keeps the first
    with pytest.raises(ConflictError, match=f"version 3 of {model} is already registered"):
        registry.put_version(record(model, "3", status="rejected"))
    assert statuses(registry, model)["3"] == "candidate"


def test_a_rejected_version_is_refused_unless_forced_with_a_reason(
    registry: Registry, model: str
) -> None:
    # Given production on v1 and v2 rejected by the gate
    register(registry, model, "1")
    registry.put_version(record(model, "2", "rejected", ("rmse 12% worse than v1",)))
    promote(registry, model, "1")
    before = items(model)
    # When it is promoted without force, it is refused, saying why it was rejected
    with pytest.raises(ConflictError, match=r"rejected \(rmse 12% worse than v1\)"):
        promote(registry, model, "2")
    with pytest.raises(ConflictError, match="rejected"):
        registry.promote(model, "2", expected="1", actor="alice", reason="")
    # And forcing without a reason is refused too
    with pytest.raises(InvalidInputError, match="needs a reason"):
        promote(registry, model, "2", force=True, reason=" ")
    assert items(model) == before
    # With force and a reason it serves, and the history says why
    change = promote(registry, model, "2", force=True, reason="hotfix: v1 mislabels lofts")
    assert registry.aliases(model) == {"production": "2"}
    assert statuses(registry, model) == {"1": "archived", "2": "production"}
    assert registry.history(model, limit=1) == [change]


def test_a_version_rejected_while_being_promoted_is_not_promoted(
    registry: Registry, model: str
) -> None:
    # Given a promoter that read v2 as a candidate, and the gate rejecting v2 just then
    register(registry, model, "1", "2")
    promote(registry, model, "1")
    racer = Registry(
        TABLE,
        BeforeTransaction(
            aws.client("dynamodb"), lambda: registry.set_status(model, "2", "rejected", ("x",))
        ),
    )
    with pytest.raises(ConflictError, match=r"version 2 of \S+ is not registered or was rejected"):
        racer.promote(model, "2", expected="1", actor="alice", reason="ship")
    assert registry.aliases(model) == {"production": "1"}
    assert statuses(registry, model) == {"1": "production", "2": "rejected"}


def test_promoting_an_unregistered_version_or_the_current_one_conflicts(
    registry: Registry, model: str
) -> None:
    register(registry, model, "1")
    with pytest.raises(ConflictError, match=f"version 9 of {model} is not registered"):
        promote(registry, model, "9")
    promote(registry, model, "1")
    with pytest.raises(ConflictError, match="already points at v1"):
        promote(registry, model, "1")
    assert len(registry.history(model)) == 1


def test_another_alias_moves_without_touching_statuses(registry: Registry, model: str) -> None:
    register(registry, model, "1", "2")
    promote(registry, model, "1")
    change = promote(registry, model, "2", alias="candidate")
    assert registry.aliases(model) == {"production": "1", "candidate": "2"}
    assert statuses(registry, model) == {"1": "production", "2": "candidate"}
    assert registry.history(model, alias="candidate") == [change]


@pytest.mark.parametrize("alias", ["", "prod#1", "a b", "x" * 65])
def test_an_alias_name_is_letters_digits_dashes_underscores(
    registry: Registry, model: str, alias: str
) -> None:
    register(registry, model, "1")
    with pytest.raises(InvalidInputError, match="alias name"):
        promote(registry, model, "1", alias=alias)


def test_the_unchecked_move_records_history_and_keeps_statuses_in_step(
    registry: Registry, model: str
) -> None:
    # The training service's move_alias: statuses follow for registered versions, and an
    # unregistered one (tests of the serving path point production at a missing version)
    # moves the alias alone
    register(registry, model, "1", "2")
    registry.move_alias(model, "production", "1", expected=None)
    registry.move_alias(model, "production", "2", expected="1")
    registry.move_alias(model, "production", "7", expected="2")
    assert statuses(registry, model) == {"1": "archived", "2": "archived"}
    assert [(c.to_version, c.actor) for c in registry.history(model)] == [
        ("7", "unknown"),
        ("2", "unknown"),
        ("1", "unknown"),
    ]


# -------------------------------------------------------------------------------- rollback


def test_rollback_walks_back_one_promotion_at_a_time(registry: Registry, model: str) -> None:
    # Given production promoted v1 -> v2 -> v3
    register(registry, model, "1", "2", "3")
    for version in ("1", "2", "3"):
        promote(registry, model, version)
    # When it is rolled back twice
    first = rollback(registry, model, "canary regressed")
    assert (first.from_version, first.to_version, first.kind) == ("3", "2", "rollback")
    assert statuses(registry, model) == {"1": "archived", "2": "production", "3": "archived"}
    second = rollback(registry, model, "still bad")
    # Then it is back on v1, and each version rolled back from says why
    assert (second.from_version, second.to_version) == ("2", "1")
    assert registry.aliases(model) == {"production": "1"}
    assert statuses(registry, model) == {"1": "production", "2": "archived", "3": "archived"}
    v3, v2 = registry.get_version(model, "3"), registry.get_version(model, "2")
    assert v3 is not None
    assert v2 is not None
    assert v3.reasons == ("rolled back: canary regressed",)
    assert v2.reasons == ("rolled back: still bad",)
    assert registry.history(model, limit=2) == [second, first]
    # And a third has nowhere to go: nothing changes
    before = items(model)
    with pytest.raises(ConflictError, match="nothing to roll back to"):
        rollback(registry, model)
    assert items(model) == before


def test_rollback_after_a_promotion_undoes_that_promotion_first(
    registry: Registry, model: str
) -> None:
    # v1 -> v2 -> v3, rollback (v2), v4, rollback (v2), rollback (v1)
    register(registry, model, "1", "2", "3", "4")
    for version in ("1", "2", "3"):
        promote(registry, model, version)
    assert rollback(registry, model).to_version == "2"
    promote(registry, model, "4")
    assert rollback(registry, model).to_version == "2"
    assert rollback(registry, model).to_version == "1"
    assert registry.aliases(model) == {"production": "1"}


def test_rollback_never_targets_a_rejected_version(registry: Registry, model: str) -> None:
    # Given v1 -> v2 -> v3, and v2 rejected after it left production
    register(registry, model, "1", "2", "3")
    for version in ("1", "2", "3"):
        promote(registry, model, version)
    registry.set_status(model, "2", "rejected", ("labels showed it was biased",))
    # When production is rolled back, it goes past v2 to v1
    change = rollback(registry, model)
    assert (change.from_version, change.to_version) == ("3", "1")
    assert statuses(registry, model) == {"1": "production", "2": "rejected", "3": "archived"}
    # And a further rollback knows both promotions were undone
    with pytest.raises(ConflictError, match="nothing to roll back to"):
        rollback(registry, model)


def test_rollback_past_only_rejected_versions_conflicts(registry: Registry, model: str) -> None:
    register(registry, model, "1", "2")
    promote(registry, model, "1")
    promote(registry, model, "2")
    registry.set_status(model, "1", "rejected", ("leaked the target",))
    with pytest.raises(ConflictError, match=r"passing v1: rejected"):
        rollback(registry, model)
    assert registry.aliases(model) == {"production": "2"}


def test_rollback_without_history_conflicts_and_says_so(registry: Registry, model: str) -> None:
    # No alias at all
    with pytest.raises(ConflictError, match="is not set: nothing to roll back"):
        rollback(registry, model)
    # Only a first promotion: nothing before it
    register(registry, model, "1")
    promote(registry, model, "1")
    with pytest.raises(ConflictError, match="nothing to roll back to"):
        rollback(registry, model)
    assert registry.aliases(model) == {"production": "1"}


def test_rollback_of_an_alias_moved_outside_the_registry_conflicts(
    registry: Registry, model: str
) -> None:
    # Given an alias item written before the registry kept history
    register(registry, model, "1", "2")
    aws.client("dynamodb").put_item(
        TableName=TABLE,
        Item={
            "pk": {"S": f"model#{model}"},
            "sk": {"S": "alias#production"},
            "version": {"S": "2"},
            "previous_version": {"S": "1"},
        },
    )
    with pytest.raises(ConflictError, match="nothing to roll back to"):
        rollback(registry, model)
    # A promotion from it works (the legacy item has no change count) and starts the history
    promote(registry, model, "1", reason="back to v1")
    assert registry.aliases(model) == {"production": "1"}
    assert [c.to_version for c in registry.history(model)] == ["1"]


# --------------------------------------------------------------------------------- history


def test_history_is_newest_first_past_ten_entries(registry: Registry, model: str) -> None:
    # Given 12 promotions: a string-sorted key would put the 10th before the 9th
    versions = [str(v) for v in range(1, 13)]
    register(registry, model, *versions)
    for version in versions:
        promote(registry, model, version)
    newest_first = versions[::-1]
    assert [c.to_version for c in registry.history(model)] == newest_first
    assert [c.to_version for c in registry.history(model, limit=5)] == newest_first[:5]
    # The same across query pages of 2 items
    paged = Registry(TABLE, aws.client("dynamodb"), page_size=2)
    assert [c.to_version for c in paged.history(model, limit=11)] == newest_first[:11]
    assert registry.history(model, limit=0) == []


def test_history_of_every_alias_merges_them_newest_first(registry: Registry, model: str) -> None:
    register(registry, model, "1", "2", "3")
    promote(registry, model, "1")
    promote(registry, model, "2", alias="candidate")
    promote(registry, model, "3", alias="candidate")
    changes = registry.history(model)
    assert len(changes) == 3
    assert [c.at for c in changes] == sorted((c.at for c in changes), reverse=True)
    assert {(c.alias, c.to_version) for c in changes} == {
        ("production", "1"),
        ("candidate", "2"),
        ("candidate", "3"),
    }
    assert [c.to_version for c in registry.history(model, alias="candidate")] == ["3", "2"]
    assert registry.history(model, alias="shadow") == []


# ----------------------------------------------------- racing writers: every repeated check
# Each write below checks the registry when it reads it, then repeats the check as its
# DynamoDB condition. A competing write slipped between the read and the write (``BeforeWrite``,
# ``BeforeTransaction``) finds the in-process check already passed: only the condition can
# refuse it, and a refused write leaves nothing half-written. (Covered elsewhere: a promotion
# racing a promotion, or a rejection or hold of its target, above and in
# test_rollout_held.py; a switch racing the end or supersede of its rollout, or a hold, in
# test_rollout_held.py; a second rollout, a verdict or an end of an ended rollout: those
# writes read nothing first, the tests in test_rollout.py call them stale.)


def racing(competitor: Callable[[], object], *, before: str = "transaction") -> Registry:
    """A registry whose first write of kind ``before`` (``transaction`` or ``update``) is
    preceded by ``competitor``, run through the plain registry."""
    kind = BeforeTransaction if before == "transaction" else BeforeWrite
    return Registry(TABLE, kind(aws.client("dynamodb"), competitor))


def start_rollout(registry: Registry, model: str, version: str, **kwargs: Any) -> Rollout:
    kwargs = {"mode": "canary", "percent": 10.0, "rollout_id": f"r{version}"} | kwargs
    return registry.start_rollout(model, version, actor="gate", reason="passed", **kwargs)


def test_set_status_racing_a_promotion_of_its_version_is_refused(
    registry: Registry, model: str
) -> None:
    # Pins: set_status's condition ``#status <> :production`` (without it the gate's late
    # "rejected" lands on the version production now serves, and rollback walks past it).
    # Given a writer that read v2 as a candidate, and v2 promoted just before its update
    register(registry, model, "1", "2")
    promote(registry, model, "1")
    racer = racing(lambda: promote(registry, model, "2"), before="update")
    with pytest.raises(ConflictError, match=r"version 2 of \S+ was promoted while its status"):
        racer.set_status(model, "2", "rejected", ("late verdict",))
    # Then v2 serves as production, its status and reasons untouched
    assert registry.aliases(model) == {"production": "2"}
    assert registry.get_version(model, "2") == record(model, "2", "production")


@pytest.mark.parametrize("write", ["set_status", "promote to it", "promote from it"])
def test_a_write_to_a_version_deleted_by_hand_meanwhile_creates_no_stub(
    registry: Registry, model: str, write: str
) -> None:
    # Pins: ``attribute_exists(sk)`` on set_status, on a promotion's target and on the
    # version production leaves (without it an update creates a version item holding only a
    # status: every later read of it fails, `mlops versions` included).
    register(registry, model, "1", "2")
    promote(registry, model, "1")
    gone = "1" if write == "promote from it" else "2"

    def delete() -> None:
        aws.client("dynamodb").delete_item(
            TableName=TABLE,
            Key={"pk": {"S": f"model#{model}"}, "sk": {"S": f"version#{int(gone):010d}"}},
        )

    if write == "set_status":
        late = functools.partial(racing(delete, before="update").set_status, model, "2", "archived")
    else:
        late = functools.partial(
            racing(delete).promote, model, "2", expected="1", actor="alice", reason="ship"
        )
    with pytest.raises(ConflictError):
        late()
    assert registry.get_version(model, gone) is None
    assert registry.aliases(model) == {"production": "1"}
    assert len(registry.history(model)) == 1


def test_a_candidate_registered_by_a_racing_gate_is_registered_once(
    registry: Registry, model: str
) -> None:
    # Pins: the ``candidate#<id>`` item's condition. The gate checks
    # ``version_for_candidate`` first; a retried invocation running beside the first passes
    # that check too, and only the condition keeps one candidate from two versions.
    racer = racing(lambda: registry.put_version(record(model, "2"), candidate_id="c-1"))
    with pytest.raises(ConflictError, match=f"candidate c-1 of {model} is already registered"):
        racer.put_version(record(model, "3"), candidate_id="c-1")
    # Then the candidate names the winner's version, and the loser's version was not written
    assert registry.version_for_candidate(model, "c-1") == "2"
    assert [r.version for r in registry.list_versions(model)] == ["2"]


def test_the_first_move_of_an_alias_racing_another_first_move_is_refused(
    registry: Registry, model: str
) -> None:
    # Pins: ``attribute_not_exists(#version)``, the condition of a move from an unset alias
    # (the training service's first registration, through move_alias).
    register(registry, model, "1", "2")
    racer = racing(lambda: registry.move_alias(model, "production", "1", expected=None))
    with pytest.raises(ConflictError, match=r"alias production of \S+ moved since it was read"):
        racer.move_alias(model, "production", "2", expected=None)
    assert registry.aliases(model) == {"production": "1"}
    assert statuses(registry, model) == {"1": "production", "2": "candidate"}
    assert [c.to_version for c in registry.history(model)] == ["1"]


def test_a_move_racing_an_alias_rewritten_outside_the_registry_is_refused(
    registry: Registry, model: str
) -> None:
    # Pins: ``#version = :expected`` in a move's alias condition. A move through the registry
    # also writes the next history item, whose own condition refuses a second mover; an
    # alias rewritten by hand (`aws dynamodb update-item`) writes none, and only the alias
    # condition stops a promoter that read the alias before it.
    register(registry, model, "1", "2", "3")
    promote(registry, model, "1")

    def rewrite_by_hand() -> None:
        aws.client("dynamodb").update_item(
            TableName=TABLE,
            Key={"pk": {"S": f"model#{model}"}, "sk": {"S": "alias#production"}},
            UpdateExpression="SET #version = :v",
            ExpressionAttributeNames={"#version": "version"},
            ExpressionAttributeValues={":v": {"S": "2"}},
        )

    with pytest.raises(ConflictError, match=r"alias production of \S+ moved since it was read"):
        racing(rewrite_by_hand).promote(model, "3", expected="1", actor="carol", reason="late")
    assert registry.aliases(model) == {"production": "2"}
    assert statuses(registry, model)["3"] == "candidate"
    assert len(registry.history(model)) == 1


def test_a_rollback_whose_target_is_rejected_meanwhile_is_refused(
    registry: Registry, model: str
) -> None:
    # Pins: a rollback's ``#status <> :rejected`` on its target (it walked the history past
    # rejected versions when it read; one rejected after that must not serve).
    register(registry, model, "1", "2", "3")
    for version in ("1", "2", "3"):
        promote(registry, model, version)
    racer = racing(lambda: registry.set_status(model, "2", "rejected", ("biased",)))
    with pytest.raises(ConflictError, match=r"version 2 of \S+ is not registered or was rejected"):
        racer.rollback(model, actor="bob", reason="canary regressed")
    assert registry.aliases(model) == {"production": "3"}
    assert statuses(registry, model) == {"1": "archived", "2": "rejected", "3": "production"}
    assert len(registry.history(model)) == 3


def test_moving_a_legacy_candidate_alias_racing_a_rollout_start_is_refused(
    registry: Registry, model: str
) -> None:
    # Pins: ``attribute_not_exists(#mode)`` on moves of the ``candidate`` alias. A candidate
    # alias written before aliases counted their moves carries no ``changes``; a rollout of
    # the same version replaces it with no ``changes`` either, so the version and change
    # count it was read with still match: only the mode condition keeps the move from
    # rewriting the running rollout's version.
    register(registry, model, "1", "2", "3")
    promote(registry, model, "1")
    aws.client("dynamodb").put_item(
        TableName=TABLE,
        Item={
            "pk": {"S": f"model#{model}"},
            "sk": {"S": "alias#candidate"},
            "version": {"S": "2"},
        },
    )
    racer = racing(lambda: start_rollout(registry, model, "2"))
    with pytest.raises(ConflictError, match=r"alias candidate of \S+ moved since it was read"):
        racer.promote(model, "3", expected="2", actor="alice", reason="try v3", alias="candidate")
    rollout = registry.get_rollout(model)
    assert rollout is not None
    assert (rollout.version, rollout.rollout_id) == ("2", "r2")
    assert registry.history(model, alias="candidate") == []


def test_a_rollout_start_racing_a_production_move_is_refused(
    registry: Registry, model: str
) -> None:
    # Pins: start_rollout's check that production still names the version it read (the
    # rollout would compare the candidate with a champion no longer serving).
    register(registry, model, "1", "2", "3")
    promote(registry, model, "1")
    racer = racing(lambda: promote(registry, model, "3"))
    with pytest.raises(ConflictError, match=r"alias production of \S+ moved since it was read"):
        start_rollout(racer, model, "2")
    assert registry.get_rollout(model) is None
    assert registry.aliases(model) == {"production": "3"}
    assert statuses(registry, model) == {"1": "archived", "2": "candidate", "3": "production"}


def test_a_rollout_start_against_a_champion_no_longer_in_production_is_refused(
    registry: Registry, model: str
) -> None:
    # Pins: ``against`` (the gate's champion): a candidate judged against v1 is not rolled
    # out against v3, a version it was never compared with.
    register(registry, model, "1", "2", "3")
    promote(registry, model, "1")
    promote(registry, model, "3")
    with pytest.raises(ConflictError, match="expected 1, it points at 3"):
        start_rollout(registry, model, "2", against="1")
    assert registry.get_rollout(model) is None
    assert start_rollout(registry, model, "2", against="3").production_version == "3"


def test_a_shadow_start_racing_a_rejection_of_its_version_is_refused(
    registry: Registry, model: str
) -> None:
    # Pins: ``#status <> :rejected`` in start_rollout's status check (a shadow's list; the
    # canary's hold is pinned in test_rollout_held.py).
    register(registry, model, "1", "2")
    promote(registry, model, "1")
    racer = racing(lambda: registry.set_status(model, "2", "rejected", ("leaked target",)))
    with pytest.raises(ConflictError, match=r"version 2 of \S+ was rejected or promoted meanwhile"):
        start_rollout(racer, model, "2", mode="shadow", percent=0.0)
    assert registry.get_rollout(model) is None
    assert statuses(registry, model) == {"1": "production", "2": "rejected"}


@pytest.mark.parametrize("meanwhile", ["rejected", "production"])
def test_a_switch_racing_a_rejection_or_promotion_of_its_version_is_refused(
    registry: Registry, model: str, meanwhile: str
) -> None:
    # Pins: ``#status <> :rejected`` and ``#status <> :production`` in switch_rollout's status
    # check (a promotion through the registry alone leaves the rollout item in place).
    register(registry, model, "1", "2")
    promote(registry, model, "1")
    shadow = start_rollout(registry, model, "2", mode="shadow", percent=0.0)

    def competitor() -> None:
        if meanwhile == "rejected":
            registry.set_status(model, "2", "rejected", ("leaked target",))
        else:
            registry.promote(model, "2", expected="1", actor="ops", reason="ship it now")

    with pytest.raises(ConflictError, match=r"version 2 of \S+ was held or rejected or promoted"):
        racing(competitor).switch_rollout(
            shadow, mode="canary", percent=30.0, rollout_id="r2-canary", actor="ops", reason="ok"
        )
    assert registry.get_rollout(model) == shadow
    assert statuses(registry, model)["2"] == meanwhile


def test_a_rollouts_promotion_racing_a_production_move_is_refused(
    registry: Registry, model: str
) -> None:
    # Pins: the alias condition of finish_rollout(promote=True) (it read production on the
    # rollout's champion, v1; v3 since replaced it and must not be archived by a verdict
    # that compared the candidate with v1).
    register(registry, model, "1", "2", "3")
    promote(registry, model, "1")
    rollout = start_rollout(registry, model, "2")
    racer = racing(lambda: registry.promote(model, "3", expected="1", actor="ops", reason="hot"))
    with pytest.raises(ConflictError, match=r"alias production of \S+ moved since it was read"):
        racer.finish_rollout(rollout, promote=True, actor="evaluator", reason="canary passed")
    assert registry.aliases(model)["production"] == "3"
    assert statuses(registry, model) == {"1": "archived", "2": "candidate", "3": "production"}
    assert registry.get_rollout(model) == rollout
    assert [c.to_version for c in registry.history(model, alias="production")] == ["3", "1"]


def test_a_rollouts_promotion_racing_a_rejection_of_its_candidate_is_refused(
    registry: Registry, model: str
) -> None:
    # Pins: ``#status <> :rejected`` on the target of an unforced rollout's promotion.
    register(registry, model, "1", "2")
    promote(registry, model, "1")
    rollout = start_rollout(registry, model, "2")
    racer = racing(lambda: registry.set_status(model, "2", "rejected", ("leaked target",)))
    with pytest.raises(ConflictError, match=r"version 2 of \S+ is not registered or was rejected"):
        racer.finish_rollout(rollout, promote=True, actor="evaluator", reason="canary passed")
    assert registry.aliases(model)["production"] == "1"
    assert statuses(registry, model) == {"1": "production", "2": "rejected"}
    assert registry.get_rollout(model) == rollout


def test_a_rollouts_rollback_racing_a_promotion_of_its_candidate_is_refused(
    registry: Registry, model: str
) -> None:
    # Pins: ``#status <> :production`` on the candidate a rollback rejects (without it the
    # version production serves becomes "rejected", and the rollout item is deleted).
    register(registry, model, "1", "2")
    promote(registry, model, "1")
    rollout = start_rollout(registry, model, "2")
    racer = racing(lambda: registry.promote(model, "2", expected="1", actor="ops", reason="now"))
    with pytest.raises(ConflictError, match=r"version 2 of \S+ is in production"):
        racer.finish_rollout(rollout, promote=False, actor="evaluator", reason="too slow")
    assert statuses(registry, model) == {"1": "archived", "2": "production"}
    assert registry.get_version(model, "2") == record(model, "2", "production")
    assert registry.get_rollout(model) == rollout
