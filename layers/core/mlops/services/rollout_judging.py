"""Judging a rollout on its evidence (DESIGN §6): both versions' serving digests since the
rollout began (one sketch roll-up an hour, ``domain.serving``) and their labeled predictions
(one labeled document an hour, folded as labels arrive: ``services.labels``), handed to
``domain.rollout.judge``; while the window still holds sketches from before serving digests or
labels for ids from before time-ordered ids, every capture instead (``sources.mode`` says
which). Cost per evaluation: O(hours since the rollout began + labels), never O(requests).
``services.rollout`` acts on the verdict.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from mlops.adapters.model_store import ModelStore
from mlops.adapters.registry import CANARY, Rollout
from mlops.adapters.sketch_store import SketchStore
from mlops.adapters.training_data import TrainingDataStore
from mlops.domain import serving
from mlops.domain.config import ModelConfig
from mlops.domain.labels import as_join_inputs
from mlops.domain.layout import version_prefix
from mlops.domain.rollout import judge, judge_rollout
from mlops.domain.rollout_policy import Ramp
from mlops.domain.serving import Serving
from mlops.domain.sketch import SketchPlan
from mlops.errors import NotFoundError
from mlops.services.labels import LabelFolder

# Per variant: every labeled row is kept (live quality), unlabeled ones up to this many, a
# uniform sample (error rate, latency, disagreement, PSI): memory stays bounded however long
# the bake and however busy the endpoint (~0.5 KB per kept row).
MAX_UNLABELED_ROWS = 100_000
_JUDGED_FIELDS = frozenset(
    {
        "prediction_id",
        "request_id",
        "ts",
        "version",
        "variant",
        "prediction",
        "probabilities",
        "latency_ms",
        "candidate_error",
        "candidate_version",
    }
)


class RolloutJudge:
    """Reads a rollout's evidence and returns the verdict document (``RolloutVerdict.as_dict``
    with its ``sources``)."""

    def __init__(
        self,
        *,
        model: str,
        store: ModelStore,
        traffic: TrainingDataStore | None,
        sketches: SketchStore | None,
        labels: LabelFolder | None,
    ) -> None:
        self._model = model
        self._store = store
        self._traffic = traffic
        self._sketches = sketches
        self._labels = labels

    def judge(
        self, rollout: Rollout, config: ModelConfig, started: datetime, now: datetime
    ) -> dict[str, Any]:
        """The verdict on the traffic since ``started``."""
        return self._judge(rollout, config, started, now)

    def _judge(
        self, rollout: Rollout, config: ModelConfig, started: datetime, now: datetime
    ) -> dict[str, Any]:
        why = "no sketch or label store given"
        if self._sketches is not None and self._labels is not None:
            judged, why = self._judge_digests(rollout, config, started, now)
            if judged is not None:
                return judged
        doc = self._judge_captures(rollout, config, started, now)
        doc["sources"]["mode"] = "captures"
        doc["sources"]["why"] = why
        return doc

    def _judge_digests(
        self, rollout: Rollout, config: ModelConfig, started: datetime, now: datetime
    ) -> tuple[dict[str, Any] | None, str]:
        """The verdict from the serving digests and labeled documents (None, and why, when
        the window cannot be judged so yet)."""
        assert self._sketches is not None
        assert self._labels is not None
        since_ms = int(started.timestamp() * 1000)
        first_hour = started.replace(minute=0, second=0, microsecond=0)
        until = now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
        digests: dict[str, Serving] = {}
        windows: dict[str, Any] = {}
        for role, version, variant in (
            ("candidate", rollout.version, rollout.mode),
            ("production", rollout.production_version, serving.PRODUCTION_VARIANT),
        ):
            try:
                prefix = version_prefix(self._model, version)
                baseline = self._store.get_json(prefix + "baseline.json")
            except NotFoundError:
                return None, f"v{version} has no baseline.json"
            window = self._sketches.window(
                self._model,
                version,
                first_hour,
                until,
                SketchPlan.from_baseline(baseline),
                max_unseen=config.drift.max_unseen_categories,
                now=now,
            )
            windows[role] = window.as_dict()
            if window.sketch is not None and window.sketch.serving is None:
                return None, f"v{version}'s sketches since the start predate serving digests"
            parts = window.sketch.serving if window.sketch is not None else None
            digests[role] = (parts or {}).get(variant, serving.EMPTY)
        span = max(1.0, (until - first_hour).total_seconds() / 3600)
        folded = self._labels.fold(first_hours=span)
        if folded.legacy:
            return None, "labels for prediction ids from before time-ordered ids"
        rows, documents = self._labels.rows(started, until)
        labeled: dict[str, list[dict[str, Any]]] = {"candidate": [], "production": []}
        for row in rows:
            if _ts(row) < since_ms:
                continue
            if str(row.get("version")) == rollout.version and row.get("variant") == rollout.mode:
                labeled["candidate"].append(row)
            elif str(row.get("version")) == rollout.production_version:
                labeled["production"].append(row)
        candidate_rows, candidate_feedback = as_join_inputs(labeled["candidate"])
        production_rows, production_feedback = as_join_inputs(labeled["production"])
        candidate, production = digests["candidate"], digests["production"]
        # The bake counts from the candidate's first answer (or its first failure that
        # production answered), stamped by the inference function's clock; an hour's digest
        # may hold rows from before the start (an earlier rollout of it): never before it.
        served = [candidate.first_ts] if candidate.first_ts is not None else []
        if production.failed_for(rollout.version) and production.first_failed_ts is not None:
            served.append(production.first_failed_ts)
        first = max(min(served), since_ms) / 1000 if served else started.timestamp()
        verdict = judge(
            **self._rules(rollout, config, now),
            production=production,
            candidate=candidate,
            candidate_version=rollout.version,
            labeled_production=production_rows,
            labeled_candidate=candidate_rows,
            feedback_rows=[*production_feedback, *candidate_feedback],
            elapsed_seconds=max(0.0, now.timestamp() - first),
        )
        doc = verdict.as_dict()
        doc["sources"] = windows | {
            "mode": "digests",
            "labels": {"folded": folded.as_dict(), "labeled_documents": documents},
        }
        return doc, ""

    def _judge_captures(
        self, rollout: Rollout, config: ModelConfig, started: datetime, now: datetime
    ) -> dict[str, Any]:
        """The verdict from every capture since the rollout began (O(requests)): only while
        the window holds sketches or labels from before digests and time-ordered ids."""
        if self._traffic is None:
            raise ValueError("evaluating a rollout needs the capture bucket (traffic=)")
        since_ms = int(started.timestamp() * 1000)
        # Only what the verdict reads is kept of each row, as it is read (the inputs are most
        # of a capture's size), and a bounded sample of the unlabeled rows.
        (candidate, feedback, read), (production, _, read_production) = (
            self._traffic.traffic(
                self._model,
                started,
                now,
                version=version,
                fields=_JUDGED_FIELDS,
                sample=MAX_UNLABELED_ROWS,
            )
            for version in (rollout.version, rollout.production_version)
        )
        candidate = [r for r in candidate if _ts(r) >= since_ms]
        production = [_attributed(r, rollout.version) for r in production if _ts(r) >= since_ms]
        # The bake counts from the candidate's first answer, stamped by the inference
        # function's clock: a rollout started from a laptop whose clock is behind cannot skip
        # it, and a candidate that took a while to load is not credited with the wait.
        served = [_ts(r) for r in candidate] + [
            _ts(r) for r in production if "candidate_error" in r
        ]
        # (A candidate that never answers is timed from the start: max_bake_hours ends it.)
        first = min(served) / 1000 if served else started.timestamp()
        elapsed = max(0.0, now.timestamp() - first)
        verdict = judge_rollout(
            **self._rules(rollout, config, now),
            production_rows=production,
            candidate_rows=candidate,
            feedback_rows=feedback,
            elapsed_seconds=elapsed,
        )
        doc = verdict.as_dict()
        doc["sources"] = {"candidate": read, "production": read_production}
        return doc

    def _rules(self, rollout: Rollout, config: ModelConfig, now: datetime) -> dict[str, Any]:
        """What either judge needs besides the traffic: the mode, the task and its classes
        (the candidate's manifest), the metric, the rules and where a ramp is."""
        manifest = self._store.get_json(
            version_prefix(self._model, rollout.version) + "manifest.json"
        )
        return {
            "mode": rollout.mode,
            "task": config.task,
            "classes": tuple(manifest.get("classes") or ()),
            "metric": config.promotion.metric_for(config.task),
            "greater_is_better": config.promotion.greater_is_better(config.task),
            "label_delay_ms": int(config.drift.label_delay_hours * 3_600_000),
            "config": config.rollout,
            "ramp": ramp(rollout, config, now),
        }


def ramp(rollout: Rollout, config: ModelConfig, now: datetime) -> Ramp | None:
    """Where a canary stands on ``canary_steps`` (None: no ramp configured, or a shadow)."""
    steps = config.rollout.canary_steps
    if rollout.mode != CANARY or not steps:
        return None
    since = min(datetime.fromisoformat(rollout.step_since), now)
    return Ramp(
        steps=steps,
        percent=rollout.percent,
        started_ms=int(since.timestamp() * 1000),
        elapsed_seconds=max(0.0, (now - since).total_seconds()),
    )


def _ts(row: Mapping[str, Any]) -> int:
    ts = row.get("ts")
    return ts if isinstance(ts, int) and not isinstance(ts, bool) else 0


def _attributed(row: dict[str, Any], version: str) -> dict[str, Any]:
    """A production row's ``candidate_error`` counts against this rollout only if it names this
    candidate: a superseded candidate may fail in a container that has not re-read the
    registry yet, and its errors are not its successor's. (Rows written before captures named
    the candidate are counted.)"""
    named = row.get("candidate_version")
    if "candidate_error" in row and named is not None and named != version:
        return {k: v for k, v in row.items() if k not in ("candidate_error", "candidate_version")}
    return row
