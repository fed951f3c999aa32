"""What makes ``mlops demo --seed`` replay one history (issue 23): rollout ids derived from a
seed (the canary's split of requests is salted with them), the demo waiting for the evaluator
to be done with a verdict, and its check of what the inference function serves."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from mlops.adapters.registry import Rollout
from mlops.services.rollout import _rollout_id
from mlops.settings import rollout_id_seed
from mlops_cli.demo.watch import RolloutVerdicts, serves


@pytest.fixture
def seed(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    rollout_id_seed.cache_clear()
    yield monkeypatch
    rollout_id_seed.cache_clear()


def test_without_a_seed_every_rollout_draws_a_new_id(seed: pytest.MonkeyPatch) -> None:
    seed.delenv("ROLLOUT_ID_SEED", raising=False)
    assert _rollout_id("2", "canary:30:1") != _rollout_id("2", "canary:30:1")


def test_a_seed_derives_the_same_id_for_the_same_rollout(seed: pytest.MonkeyPatch) -> None:
    seed.setenv("ROLLOUT_ID_SEED", "mlops-demo-11")
    first = _rollout_id("2", "canary:30:1")
    assert first.startswith("r2-")
    assert _rollout_id("2", "canary:30:1") == first
    assert _rollout_id("3", "canary:30:2") != first  # another version
    assert _rollout_id("2", f"{first}:canary:50") != first  # a switch gets a new id
    rollout_id_seed.cache_clear()
    seed.setenv("ROLLOUT_ID_SEED", "mlops-demo-12")
    assert _rollout_id("2", "canary:30:1") != first  # another seed, another split


def rollout(rollout_id: str = "r2-abc", last_check: dict[str, Any] | None = None) -> Rollout:
    return Rollout(
        model="house-prices",
        version="2",
        production_version="1",
        mode="canary",
        percent=30.0,
        rollout_id=rollout_id,
        started_at="2026-12-07T10:00:00+00:00",
        actor="gate",
        reason="passed",
        last_check=last_check or {},
    )


class Reports:
    """The rollout report as the evaluator writes it: first before acting, then again."""

    def __init__(self, docs: list[dict[str, Any]]) -> None:
        self.docs = docs
        self.reads = 0

    def wait_new(self, timeout: float) -> tuple[str, dict[str, Any]] | None:
        return "reports/rollout/t-v2.json", self.docs[0]

    def uri(self, key: str) -> str:
        return f"s3://artifacts/{key}"

    def read(self, key: str) -> dict[str, Any]:
        self.reads += 1
        return self.docs[min(self.reads, len(self.docs) - 1)]


class Registry:
    def __init__(self, states: list[Rollout | None]) -> None:
        self.states = states
        self.calls = 0

    def get_rollout(self, model: str) -> Rollout | None:
        self.calls += 1
        return self.states[min(self.calls - 1, len(self.states) - 1)]


def test_a_verdict_is_not_done_until_the_evaluator_has_acted_on_it() -> None:
    # Given the report written before the promotion, and the registry still showing the rollout
    reports = Reports(
        [{"decision": "promote", "acted": False}, {"decision": "promote", "acted": True}]
    )
    registry = Registry([rollout()])
    # When the demo waits for the verdict
    doc = RolloutVerdicts(reports, registry, "house-prices").wait(rollout(), timeout=30)
    # Then it reads the report again until it says the evaluator acted
    assert doc == {"decision": "promote", "acted": True}
    assert reports.reads == 1


def test_a_verdict_to_wait_is_done_once_the_registry_records_it() -> None:
    uri = "s3://artifacts/reports/rollout/t-v2.json"
    reports = Reports([{"decision": "wait", "acted": False}])
    registry = Registry([rollout(), rollout(last_check={"report": uri, "decision": "wait"})])
    doc = RolloutVerdicts(reports, registry, "house-prices").wait(rollout(), timeout=30)
    assert doc == {"decision": "wait", "acted": False}
    assert registry.calls == 2


def test_serving_is_production_and_the_rollouts_candidate_loaded() -> None:
    candidate = rollout()
    loaded = {"version": "2", "loaded": True}
    assert serves({"model_version": "1"}, "1", None)
    assert not serves({"model_version": "1", "rollout": loaded}, "1", None)  # not ended yet
    assert serves({"model_version": "1", "rollout": loaded}, "1", candidate)
    assert not serves({"model_version": "1", "rollout": loaded | {"loaded": False}}, "1", candidate)
    assert not serves({"model_version": "1"}, "2", None)  # the promotion not picked up yet
    assert not serves({"status": "unavailable"}, "1", None)
