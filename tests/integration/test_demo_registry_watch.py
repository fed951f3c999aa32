"""What ``mlops demo`` reports comes from the registry, as ``mlops status`` reads it: new
versions, a canary starting, its promotion or its rollback, and production's moves, each once."""

from __future__ import annotations

from mlops.adapters.registry import Registry, VersionRecord
from mlops_cli.demo.watch import RegistryWatch

MODEL = "house-prices"


def register(registry: Registry, version: str, status: str = "candidate") -> None:
    registry.put_version(
        VersionRecord(
            model=MODEL,
            version=version,
            created_at="2026-11-29T00:00:00+00:00",
            manifest_key=f"models/{MODEL}/{version}/manifest.json",
            model_sha256="0" * 64,
            metrics={"rmse": 1.0},
            status=status,
            reasons=("rmse 1.0 vs production 2.0: not 1% better",) if status == "rejected" else (),
        )
    )


def kinds(watch: RegistryWatch) -> list[tuple[str, str]]:
    return [(e.kind, e.short) for e in watch.poll()]


def test_versions_canaries_promotions_and_rollbacks_become_events_once(
    registry: Registry,
) -> None:
    # Given v1 in production (the first model is not a promotion)
    watch = RegistryWatch(registry, MODEL)
    register(registry, "1")
    registry.promote(MODEL, "1", expected=None, actor="gate", reason="first model")
    assert kinds(watch) == [("trained", "v1 trained")]
    assert watch.production == "1"
    assert kinds(watch) == []  # nothing new, nothing said

    # When a challenger is rejected, and another starts a canary that is then promoted
    register(registry, "2", status="rejected")
    register(registry, "3")
    rollout = registry.start_rollout(
        MODEL, "3", mode="canary", percent=30, rollout_id="r3", actor="gate", reason="passed"
    )
    assert kinds(watch) == [
        ("rejected", "v2 rejected"),
        ("trained", "v3 trained"),
        ("canary", "canary 30%"),
    ]
    assert watch.rollout is not None
    registry.finish_rollout(rollout, promote=True, actor="evaluator", reason="better")
    assert kinds(watch) == [("promoted", "v3 promoted")]
    assert (watch.production, watch.rollout, watch.promotions) == ("3", None, 1)

    # When the next canary is rolled back, and then production itself
    register(registry, "4")
    rollout = registry.start_rollout(
        MODEL, "4", mode="canary", percent=30, rollout_id="r4", actor="gate", reason="passed"
    )
    watch.poll()
    registry.finish_rollout(rollout, promote=False, actor="evaluator", reason="worse")
    events = watch.poll()
    assert [(e.kind, e.short) for e in events] == [("rolled_back", "v4 rolled back")]
    assert "worse" in events[0].text
    registry.rollback(MODEL, actor="operator", reason="drill")
    assert kinds(watch) == [("rolled_back", "rolled back to v1")]
    assert (watch.production, watch.promotions, watch.rollbacks) == ("1", 1, 2)


def test_a_switched_rollout_is_one_event_not_a_rollback(registry: Registry) -> None:
    # Given a shadow of v2 the watch has seen
    watch = RegistryWatch(registry, MODEL)
    register(registry, "1")
    registry.promote(MODEL, "1", expected=None, actor="gate", reason="first model")
    register(registry, "2")
    shadow = registry.start_rollout(
        MODEL, "2", mode="shadow", percent=0, rollout_id="r2", actor="gate", reason="passed"
    )
    watch.poll()
    # When an operator switches it to a canary (a new rollout id, the same candidate)
    registry.switch_rollout(
        shadow, mode="canary", percent=30, rollout_id="r2b", actor="ops", reason="looks fine"
    )
    events = watch.poll()
    # Then the demo says it was switched, and counts no rollback
    assert [(e.kind, e.short) for e in events] == [("canary", "canary 30 %")]
    assert "switched: shadow → canary 30 %" in events[0].text
    assert watch.rollbacks == 0
