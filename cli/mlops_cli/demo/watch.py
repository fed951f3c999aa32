"""What ``mlops demo`` reads to know what the stack did: S3 and the registry, as an operator
would (``mlops status``, the reports), never the functions' internals.

- ``TrafficLedger``: how many predictions the logger has sketched and how many labels it has
  stored, so the evaluator is fired once the month's traffic is in S3.
- ``EvaluatorReports``: the drift reports (and rollout verdicts) of each evaluation.
- ``RolloutVerdicts``: an evaluation's verdict on a rollout, once the registry shows it.
- ``serves``: whether ``GET /health`` shows the registry's production and rollout served.
- ``RetrainAnswers``: the retrainer's and the gate's reports for one trigger.
- ``RegistryWatch``: versions, the production alias's moves and rollouts, as events.
"""

from __future__ import annotations

import gzip
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mlops.adapters.model_store import ModelStore
from mlops.adapters.registry import Registry, Rollout
from mlops.domain.layout import (
    DRIFT_REPORTS,
    FEEDBACK,
    RETRAIN_REPORTS,
    sketch_prefix,
)
from mlops.errors import MlopsError
from mlops_cli.retrain import final


def _keys(store: ModelStore, s3: Any, prefix: str) -> list[tuple[str, str]]:
    """Every (key, etag) under ``prefix``."""
    out: list[tuple[str, str]] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=store.bucket, Prefix=prefix):
        out.extend((o["Key"], o.get("ETag", "")) for o in page.get("Contents", []))
    return out


class TrafficLedger:
    """Predictions sketched and labels stored so far, read incrementally (each object once)."""

    def __init__(self, store: ModelStore, s3: Any, model: str) -> None:
        self._store, self._s3, self._model = store, s3, model
        self._seen: dict[str, int] = {}

    def _count(self, prefix: str, counter: Callable[[bytes], int], skip: str = "") -> int:
        total = 0
        for key, etag in _keys(self._store, self._s3, prefix):
            if skip and skip in key:
                continue
            marker = f"{key}#{etag}"
            if marker not in self._seen:
                body = self._s3.get_object(Bucket=self._store.bucket, Key=key)["Body"].read()
                self._seen[marker] = counter(body)
            total += self._seen[marker]
        return total

    def predictions(self) -> int:
        # The logger writes a batch's sketch after its capture rows: a counted row is stored.
        return self._count(
            sketch_prefix(self._model), lambda b: int(json.loads(b)["rows"]), "/rollup/"
        )

    def labels(self) -> int:
        return self._count(FEEDBACK, lambda b: gzip.decompress(b).count(b"\n"))

    def wait(self, predictions: int, labels: int, timeout: float) -> bool:
        """Until at least ``predictions`` and ``labels`` are stored; False on timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.predictions() >= predictions and self.labels() >= labels:
                return True
            time.sleep(0.3)
        return False


class EvaluatorReports:
    """Reports the evaluator writes under ``prefix``: drift (``reports/drift/<time>-v<v>.json``
    and ``.html``) or rollout verdicts (``reports/rollout/<time>-v<v>.json``)."""

    def __init__(self, store: ModelStore, s3: Any, prefix: str = DRIFT_REPORTS) -> None:
        self._store, self._s3, self._prefix = store, s3, prefix
        self._seen: set[str] = set()

    def all_keys(self) -> list[str]:
        return sorted(
            key
            for key, _ in _keys(self._store, self._s3, self._prefix)
            if "/state/" not in key and key.endswith((".json", ".html"))
        )

    def mark_seen(self) -> None:
        self._seen.update(k for k in self.all_keys() if k.endswith(".json"))

    def wait_new(self, timeout: float) -> tuple[str, dict[str, Any]] | None:
        """The next report not seen before (its key and document), or None on timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            fresh = [k for k in self.all_keys() if k.endswith(".json") and k not in self._seen]
            if fresh:
                key = fresh[0]
                self._seen.add(key)
                return key, self._store.get_json(key)
            time.sleep(0.25)
        return None

    def uri(self, key: str) -> str:
        return self._store.uri(key)

    def read(self, key: str) -> dict[str, Any]:
        doc: dict[str, Any] = self._store.get_json(key)
        return doc

    def download(self, key: str) -> bytes:
        body: bytes = self._s3.get_object(Bucket=self._store.bucket, Key=key)["Body"].read()
        return body


class RolloutVerdicts:
    """The evaluator's verdict on a rollout, once the evaluation is done with it.

    The evaluator writes its rollout report *before* it acts (promotes or rolls back, then
    rewrites the report with ``acted``) or records the verdict as the rollout's last check.
    A report that has just appeared is therefore not the end of the evaluation: read then,
    the registry still shows the rollout, the inference function soon serves something else,
    and the demo waited for a state that would never come (issue 23: a 60 s refresh wait,
    then a 60 s wait for a verdict at the next evaluation). Done means: the report says it
    acted, or the registry's rollout names the report as its last check."""

    ENDED_GRACE_S = 5.0  # a rollout ended by someone else: the report will not say it acted

    def __init__(self, reports: EvaluatorReports, registry: Registry, model: str) -> None:
        self._reports, self._registry, self._model = reports, registry, model

    def wait(self, rollout: Rollout, timeout: float) -> dict[str, Any] | None:
        """The final report on ``rollout`` of the evaluation under way; None on timeout."""
        deadline = time.monotonic() + timeout
        found = self._reports.wait_new(timeout)
        if found is None:
            return None
        key, doc = found
        uri = self._reports.uri(key)
        ended: float | None = None
        while True:
            if doc.get("acted"):
                return doc
            active = self._registry.get_rollout(self._model)
            if active is not None and active.rollout_id == rollout.rollout_id:
                if dict(active.last_check).get("report") == uri:
                    return doc
            else:
                ended = ended if ended is not None else time.monotonic()
                if time.monotonic() - ended > self.ENDED_GRACE_S:
                    return doc
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.2)
            doc = self._reports.read(key)


def serves(health: Any, production: str | None, rollout: Rollout | None) -> bool:
    """Whether a ``GET /health`` answer serves ``production`` and ``rollout``'s candidate
    loaded (or no rollout)."""
    if not isinstance(health, dict) or str(health.get("model_version")) != str(production):
        return False
    live = health.get("rollout")
    if rollout is None:
        return live is None
    return (
        isinstance(live, dict)
        and str(live.get("version")) == rollout.version
        and bool(live.get("loaded"))
    )


def trigger_of(doc: dict[str, Any]) -> dict[str, Any]:
    """The trigger a retrain report answers (data and rejection reports carry it at the top,
    the gate's decision in its lineage)."""
    trigger = doc.get("trigger") or (doc.get("lineage") or {}).get("trigger") or {}
    return dict(trigger) if isinstance(trigger, dict) else {}


class RetrainAnswers:
    """The retrain reports, read once each; ``wait`` finds the final one for a trigger."""

    def __init__(self, store: ModelStore, s3: Any) -> None:
        self._store, self._s3 = store, s3
        self._docs: dict[str, dict[str, Any]] = {}

    def _refresh(self) -> None:
        for key, _ in _keys(self._store, self._s3, RETRAIN_REPORTS):
            if key.endswith(".json") and key not in self._docs:
                try:
                    self._docs[key] = self._store.get_json(key)
                except (MlopsError, ValueError):  # unreadable now: next time
                    continue

    def wait(
        self, matches: Callable[[dict[str, Any]], bool], timeout: float
    ) -> dict[str, Any] | None:
        """The final report (a decision, or a rejection) for the trigger ``matches`` names."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._refresh()
            for doc in self._docs.values():
                if matches(doc) and final(doc):
                    return doc
            time.sleep(0.3)
        return None


def describe_answer(doc: dict[str, Any]) -> str:
    """One line for a final retrain report."""
    kind = doc.get("kind")
    if kind == "training_data":
        return f"data rejected: {(doc.get('report') or {}).get('summary', '')}"
    if kind == "retrain_rejected":
        return f"nothing trained: {doc.get('reason')}"
    version, status = doc.get("version"), doc.get("status")
    reasons = [str(r) for r in doc.get("reasons") or []]
    why = reasons[-1] if reasons else ""
    if status == "rejected":
        return f"v{version} rejected by the gate: {why}" if version else f"rejected: {why}"
    if status == "held":
        return f"v{version} held by the gate: {why}"
    return f"v{version} judged by the gate: {why}"


@dataclass(frozen=True)
class Event:
    kind: str  # trained | rejected | canary | promoted | rolled_back
    text: str
    version: str
    short: str  # for a table cell


class RegistryWatch:
    """Turns the registry's state into events: new versions, rollouts, production moves."""

    def __init__(self, registry: Registry, model: str) -> None:
        self._registry, self._model = registry, model
        self._versions: dict[str, str] = {}
        self._history = 0
        self._rollout: Rollout | None = None
        self.production: str | None = None
        self.rollout: Rollout | None = None
        self.promotions = 0
        self.rollbacks = 0

    def poll(self) -> list[Event]:
        events: list[Event] = []
        records = {r.version: r for r in self._registry.list_versions(self._model)}
        aliases, rollout = self._registry.serving(self._model)
        history = list(reversed(self._registry.history(self._model, "production", limit=1000)))
        for version, record in sorted(records.items(), key=lambda kv: int(kv[0])):
            if version in self._versions:
                continue
            self._versions[version] = record.status
            reason = record.reasons[-1] if record.reasons else ""
            if record.status == "rejected":
                text = f"v{version} rejected by the gate: {reason}"
                events.append(Event("rejected", text, version, f"v{version} rejected"))
            elif record.status == "held" or any(
                r.startswith(("held:", "inconclusive:")) for r in record.reasons
            ):
                verdict = next(
                    r for r in record.reasons if r.startswith(("held:", "inconclusive:"))
                )
                text = f"v{version} trained, not passed: {verdict}"
                events.append(Event("trained", text, version, f"v{version} trained"))
            else:
                text = f"v{version} trained and passed the gate"
                events.append(Event("trained", text, version, f"v{version} trained"))
        # A rollout switched to another mode or share gets a new id: the same candidate, on.
        switched = _switched(self._rollout, rollout)
        if switched:
            assert rollout is not None
            assert self._rollout is not None
            events.append(
                Event(
                    "canary",
                    f"rollout of v{rollout.version} switched: {self._rollout.phase} → "
                    f"{rollout.phase} (against v{rollout.production_version})",
                    rollout.version,
                    rollout.phase,
                )
            )
        elif rollout is not None and (
            self._rollout is None or self._rollout.rollout_id != rollout.rollout_id
        ):
            canary = rollout.mode == "canary"
            share = f" answers {rollout.percent:g}% of requests" if canary else ""
            events.append(
                Event(
                    "canary",
                    f"{rollout.mode} started: v{rollout.version}{share} "
                    f"(against v{rollout.production_version})",
                    rollout.version,
                    f"{rollout.mode} {rollout.percent:g}%" if canary else rollout.mode,
                )
            )
        for change in history[self._history :]:
            if change.from_version is None:
                continue  # the first model: not a promotion
            if change.kind == "rollback":
                self.rollbacks += 1
                events.append(
                    Event(
                        "rolled_back",
                        f"production rolled back to v{change.to_version} (from "
                        f"v{change.from_version})",
                        change.to_version,
                        f"rolled back to v{change.to_version}",
                    )
                )
            else:
                self.promotions += 1
                events.append(
                    Event(
                        "promoted",
                        f"v{change.to_version} promoted to production (was v{change.from_version})",
                        change.to_version,
                        f"v{change.to_version} promoted",
                    )
                )
        self._history = len(history)
        ended = self._rollout
        if (
            ended is not None
            and not switched
            and (rollout is None or rollout.rollout_id != ended.rollout_id)
        ):
            last = records.get(ended.version)
            if aliases.get("production") != ended.version and last is not None:
                self.rollbacks += 1
                why = next((r for r in reversed(last.reasons) if r.startswith("rolled back")), "")
                events.append(
                    Event(
                        "rolled_back",
                        f"{ended.mode} v{ended.version} rolled back"
                        + (f": {why.removeprefix('rolled back: ')}" if why else ""),
                        ended.version,
                        f"v{ended.version} rolled back",
                    )
                )
        self._rollout = rollout
        self.rollout = rollout
        self.production = aliases.get("production")
        return events


def _switched(before: Rollout | None, now: Rollout | None) -> bool:
    """Whether ``now`` is ``before`` switched to another mode or share (not a new rollout)."""
    if before is None or now is None or not now.switches:
        return False
    return now.version == before.version and any(
        s.get("from_rollout_id") == before.rollout_id for s in now.switches
    )
