"""Fold newly arrived labels into per-hour labeled documents; read a window of them.

Each evaluation first folds: it lists the feedback hours it has not closed, reads only the
feedback objects it has not folded (O(labels that arrived since the last run)), groups their
labels by the capture hour their time-ordered prediction ids name, reads those capture hours
once, and rewrites their labeled documents. Live quality then reads one document per hour of
its window. A label whose capture is not stored yet waits in the state for
``pending_hours``; a label whose id is not time-ordered (a UUIDv4 from before, or an id this
stack never issued) cannot be placed and is counted, so the caller can say so.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from mlops.adapters.aws import client
from mlops.adapters.label_store import LabelStore, columns_as_rows
from mlops.adapters.training_data import TrainingDataStore
from mlops.domain import quality
from mlops.domain.config import ModelConfig
from mlops.domain.labeled_traffic import LabeledTraffic, join
from mlops.domain.labels import (
    Label,
    as_join_inputs,
    capture_hour,
    fold,
    hour_of_ms,
    latest_labels,
)
from mlops.domain.layout import FEEDBACK
from mlops.errors import ConflictError
from mlops.observability import logger
from mlops.settings import drift_settings

CLOSE_AFTER_HOURS = 26  # a feedback hour is listed again until then (late deliveries)
MAX_PENDING = 100_000
KEEP_INDEX = timedelta(days=45)  # the documents index keeps this many days of hours
READERS = 8


@dataclass
class FoldSummary:
    feedback_objects: int = 0
    labels: int = 0
    joined: int = 0
    added: int = 0
    updated: int = 0
    pending: int = 0
    expired: int = 0  # no capture found within pending_hours (never issued, or lost)
    unplaceable: int = 0  # ids that are not time-ordered
    legacy: bool = False  # such ids were seen within first_hours: read windows the old way too
    dropped: int = 0  # over an hour's row cap
    evaluation: int = 0  # labels of evaluation predictions, left out of the documents
    capture_hours: int = 0
    hours_written: list[str] = field(default_factory=list)
    capture_objects: int = 0
    corrupt_objects: int = 0
    conflicts: int = 0
    problems: list[dict[str, str]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _Run:
    folded: FoldSummary | None = None
    columns: dict[str, dict[str, list[Any]]] = field(default_factory=dict)


class LabelFolder:
    def __init__(
        self,
        model: str,
        traffic: TrainingDataStore,
        labels: LabelStore,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        pending_hours: float = 3.0,
    ) -> None:
        self._model = model
        self._traffic = traffic
        self._labels = labels
        self._clock = clock
        self._pending_hours = pending_hours
        self._documents: set[str] | None = None  # hours with a labeled document, once known
        self._run: _Run | None = None  # inside ``run()``: what this run folded and read

    @contextmanager
    def run(self) -> Iterator[None]:
        """One evaluation run (an invocation of the drift evaluator): its first fold is the
        run's fold, and the labeled documents read are kept until it ends, so the drift
        evaluation and the rollout judge after it fold once and read each hour once. Outside
        a run nothing is kept: a warm container never serves a document another run wrote."""
        self._run = _Run()
        try:
            yield
        finally:
            self._run = None

    def fold(self, *, first_hours: float) -> FoldSummary:
        """Fold the labels that arrived since the last fold (on the first, the last
        ``first_hours`` of feedback); inside a ``run()``, once."""
        if self._run is not None and self._run.folded is not None:
            return self._run.folded
        now = self._clock()
        summary = FoldSummary()
        state, etag = self._labels.state(self._model)
        # From where the last fold left off; never further back than a first fold would go.
        since = _hour(now - timedelta(hours=first_hours))
        if isinstance(state.get("since"), str) and state["since"] > since:
            since = state["since"]
        folded, new_keys = self._unfolded(state, since, now)
        rows, read = self._traffic.rows_of(new_keys)
        summary.feedback_objects = read["objects_read"]
        summary.corrupt_objects = read["corrupt_objects"]
        summary.problems.extend(read["problems"])
        arrived = latest_labels(rows, self._model)
        summary.labels = len(arrived)
        waiting = _pending(state.get("pending"))
        for pid, label in arrived.items():
            if pid not in waiting or label.ts >= waiting[pid].ts:
                waiting[pid] = label
        groups: dict[str, dict[str, Label]] = {}
        for pid, label in waiting.items():
            placed = capture_hour(pid)
            if placed is None:
                summary.unplaceable += 1
                continue
            groups.setdefault(placed, {})[pid] = label
        still: dict[str, Label] = {}
        recent = _hour(now - timedelta(hours=self._pending_hours))
        prefixes = self._traffic.version_prefixes(self._model)
        for hour, group in sorted(groups.items()):
            joined = self._fold_hour(hour, group, prefixes, summary)
            for pid, label in group.items():
                if pid in joined:
                    continue
                if hour >= recent and len(still) < MAX_PENDING:
                    still[pid] = label
                else:
                    summary.expired += 1
        summary.pending = len(still)
        closed = _hour(now - timedelta(hours=CLOSE_AFTER_HOURS))
        legacy_until = str(state.get("legacy_until") or "")
        if summary.unplaceable:
            legacy_until = (now + timedelta(hours=first_hours)).isoformat(timespec="seconds")
        summary.legacy = legacy_until > now.isoformat(timespec="seconds")
        written = sorted(set(_strings(state.get("documents"))) | set(summary.hours_written))
        documents = [h for h in written if h >= _hour(now - KEEP_INDEX)]
        doc: dict[str, Any] = {
            "schema": 1,
            "since": max(closed, since),
            "folded": {h: keys for h, keys in folded.items() if h >= closed},
            "pending": {pid: [label.ts, label.actual] for pid, label in still.items()},
            "documents": documents,
            "folded_at": now.isoformat(timespec="seconds"),
            "legacy_until": legacy_until,
        }
        self._save_state(doc, etag, summary)
        self._documents = set(documents) | set(_strings(doc["documents"]))
        logger.info(
            "labels folded", **{k: v for k, v in summary.as_dict().items() if k != "problems"}
        )
        if self._run is not None:
            self._run.folded = summary
        return summary

    def _save_state(self, doc: dict[str, Any], etag: str | None, summary: FoldSummary) -> None:
        """Write the state; if another fold wrote it meanwhile, merge what both folded (the
        documents index above all: an hour missing from it would never be read) and retry."""
        for _ in range(3):
            try:
                self._labels.put_state(self._model, doc, etag)
                return
            except ConflictError:
                summary.conflicts += 1
                theirs, etag = self._labels.state(self._model)
                doc["documents"] = sorted(
                    set(doc["documents"]) | set(_strings(theirs.get("documents")))
                )
                for hour, keys in (theirs.get("folded") or {}).items():
                    if isinstance(keys, list) and hour in doc["folded"]:
                        doc["folded"][hour] = sorted(set(doc["folded"][hour]) | set(keys))
        raise ConflictError("the label state kept changing while it was written")

    def _hours_to_read(self, since: datetime, until: datetime) -> list[str]:
        """The window's hours that have a labeled document (all of them when the state has no
        index: written before it)."""
        hours = _window_hours(since, until)
        if self._documents is None:
            state, _ = self._labels.state(self._model)
            if isinstance(state.get("documents"), list):
                self._documents = set(_strings(state["documents"]))
        if self._documents is None:
            return hours
        return [h for h in hours if h in self._documents]

    def labeled_traffic(
        self, config: ModelConfig, since: datetime, until: datetime
    ) -> LabeledTraffic:
        """Labeled predictions of ``[since, until)`` as training rows (``labeled_traffic.join``):
        labels folded first, then one labeled document per hour read; O(labels + hours). While
        ids from before time-ordered ids are about, the old read (every capture) instead."""
        summary = self.fold(first_hours=(until - since).total_seconds() / 3600)
        if summary.legacy:
            return self._traffic.labeled_traffic(config.name, since, until, config)
        rows, documents = self.rows(since, until, with_inputs=True)
        captures, feedback = as_join_inputs(rows)
        traffic = join(captures, feedback, config)
        return replace(
            traffic,
            objects_read=documents + summary.feedback_objects + summary.capture_objects,
            corrupt_objects=summary.corrupt_objects,
        )

    def _unfolded(
        self, state: dict[str, Any], since: str, now: datetime
    ) -> tuple[dict[str, list[str]], list[str]]:
        """Every feedback object of the open hours (what the state will record as folded),
        and those not folded yet."""
        folded: dict[str, list[str]] = {
            h: list(keys)
            for h, keys in (state.get("folded") or {}).items()
            if isinstance(keys, list)
        }
        new_keys: list[str] = []
        for hour in _hours_between(since, _hour(now)):
            done = set(folded.get(hour, ()))
            keys = self._traffic.hour_keys(FEEDBACK, hour)
            new_keys.extend(k for k in keys if k not in done)
            folded[hour] = keys
        return folded, new_keys

    def rows(
        self, since: datetime, until: datetime, *, with_inputs: bool = False
    ) -> tuple[list[dict[str, Any]], int]:
        """The labeled rows of the capture hours overlapping ``[since, until)`` (with their
        inputs, for training: one more document an hour), and how many hours were read."""
        out: list[dict[str, Any]] = []
        hours = self._hours_to_read(since, until)
        for hour in hours:
            rows = columns_as_rows(self._columns(hour))
            if with_inputs and rows:
                inputs = self._labels.inputs(self._model, hour)
                rows = [r | {"inputs": inputs.get(r["prediction_id"])} for r in rows]
            out.extend(rows)
        return out, len(hours)

    def joined(
        self, since: datetime, until: datetime, *, version: str, label_delay_ms: int
    ) -> tuple[quality.Joined, int]:
        """Live quality's input for ``version``: its labeled predictions of the capture hours
        overlapping ``[since, until)`` whose label came within ``label_delay_ms`` (the rule of
        ``quality.join``), from one columnar document an hour; and how many were read."""
        ts: list[int] = []
        predictions: list[Any] = []
        actuals: list[Any] = []
        probabilities: list[Any] = []
        hours = self._hours_to_read(since, until)
        # One GET an hour, in parallel: on S3 each is a round trip of tens of milliseconds.
        with ThreadPoolExecutor(max_workers=READERS) as pool:
            documents = list(pool.map(self._columns, hours))
        for columns in documents:
            if not columns or "ts" not in columns or "label_ts" not in columns:
                continue
            size = len(columns["ts"])
            chance = columns.get("probabilities") or [None] * size
            for i in range(size):
                at, came = columns["ts"][i], columns["label_ts"][i]
                if (
                    str(columns["version"][i]) != version
                    or not isinstance(at, int)
                    or not isinstance(came, int)
                    or not 0 <= came - at <= label_delay_ms
                ):
                    continue
                ts.append(at)
                predictions.append(columns["prediction"][i])
                actuals.append(columns["actual"][i])
                probabilities.append(chance[i])
        order = sorted(range(len(ts)), key=ts.__getitem__)
        return (
            quality.Joined(
                ts=[ts[i] for i in order],
                predictions=[predictions[i] for i in order],
                actuals=[actuals[i] for i in order],
                probabilities=[probabilities[i] for i in order],
                captured=len(ts),
                labels=len(ts),
                unmatched_labels=0,
            ),
            len(hours),
        )

    def _columns(self, hour: str) -> dict[str, list[Any]]:
        """An hour's labeled columns, read once a run."""
        if self._run is not None and hour in self._run.columns:
            return self._run.columns[hour]
        columns, _ = self._labels.columns(self._model, hour)
        if self._run is not None:
            self._run.columns[hour] = columns
        return columns

    def _fold_hour(
        self, hour: str, group: dict[str, Label], prefixes: list[str], summary: FoldSummary
    ) -> set[str]:
        keys = [k for prefix in prefixes for k in self._traffic.hour_keys(prefix, hour)]
        captures, read = self._traffic.rows_of(keys, ids=set(group))
        summary.capture_hours += 1
        summary.capture_objects += read["objects_read"]
        summary.corrupt_objects += read["corrupt_objects"]
        summary.problems.extend(read["problems"])
        for attempt in (1, 2):
            existing, etag = self._labels.hour(self._model, hour)
            result = fold(existing, captures, group)
            if not (result.added or result.updated):
                break
            try:
                self._labels.put_hour(self._model, hour, result.rows, etag)
                break
            except ConflictError:
                summary.conflicts += 1
                if attempt == 2:
                    raise
        if result.added or result.updated:
            summary.hours_written.append(hour)
        summary.joined += len(result.joined) - result.evaluation
        summary.evaluation += result.evaluation
        summary.added += result.added
        summary.updated += result.updated
        summary.dropped += result.dropped
        return result.joined


def _hour(moment: datetime) -> str:
    return hour_of_ms(int(moment.timestamp() * 1000))


def _window_hours(since: datetime, until: datetime) -> list[str]:
    return _hours_between(_hour(since), _hour(until - timedelta(milliseconds=1)))


def _hours_between(first: str, last: str) -> list[str]:
    """Every hour partition from ``first`` to ``last`` inclusive."""
    start = datetime.strptime(first, "dt=%Y-%m-%d/hour=%H").replace(tzinfo=UTC)
    end = datetime.strptime(last, "dt=%Y-%m-%d/hour=%H").replace(tzinfo=UTC)
    out = []
    while start <= end:
        out.append(f"{start:dt=%Y-%m-%d/hour=%H}")
        start += timedelta(hours=1)
    return out


def _strings(raw: Any) -> list[str]:
    return [str(v) for v in raw] if isinstance(raw, list) else []


def _pending(raw: Any) -> dict[str, Label]:
    if not isinstance(raw, dict):
        return {}
    out = {}
    for pid, value in raw.items():
        if isinstance(value, list) and len(value) == 2 and isinstance(value[0], int):
            out[str(pid)] = Label(value[0], value[1])
    return out


def label_folder() -> LabelFolder:
    """Composition root: the folder of the function's model over its capture bucket."""
    settings = drift_settings()
    s3 = client("s3")
    return LabelFolder(
        settings.model_name,
        TrainingDataStore(settings.capture_bucket, s3),
        LabelStore(settings.capture_bucket, s3),
    )
