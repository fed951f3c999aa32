"""Read the drift sketches of a window, hour by hour, through hourly roll-ups.

The prediction logger writes one sketch per batch:
``sketches/model=<m>/version=<v>/dt=YYYY-MM-DD/hour=HH/<batch-id>.json``. Under heavy traffic
that is thousands of objects an hour, and reading them one GET at a time would make drift cost
grow with traffic again. So each hour is read through its roll-up,
``sketches/model=<m>/version=<v>/rollup/dt=YYYY-MM-DD/hour=HH.json``: the merged sketch, the
batch keys it covers and what was skipped. An evaluation lists each hour (one LIST), reads its
roll-up (one GET), reads only batches the roll-up lacks (late deliveries: the logger retries
for up to 6 hours), and writes the roll-up back when it grew. Cost: O(hours in the window),
not O(batches). An hour whose roll-up was written ``FINAL_AFTER`` past its end is final: no
batch can arrive any more, so it is not listed again, and its merged sketch is kept in memory
for the process's next reads (the drift and rollout evaluations of one run share them).

**Counted once.** A redelivery may re-batch log events already stored (``domain.event_set``):
each batch sketch lists its events' digests, and the roll-up's companion object
(``…/hour=HH.events``, read only when the hour has new batches) the digests it has counted.
A batch whose events are all counted is a duplicate; one that overlaps only in part makes the
hour be recounted from all its batches, largest first.

**Never fatal, never silent.** Every object is read with a byte cap (``MAX_SKETCH_BYTES``,
``MAX_ROLLUP_BYTES``, ``MAX_EVENTS_BYTES``) and checked (``Sketch.from_dict``, then
``SketchPlan.check``: the version's own baseline, features and bins). Anything that fails,
whatever the reason (not JSON, nested too deep, another version or baseline, totals that
disagree, numbers out of bounds, too big), is skipped: the hour is merged from the good
objects, the roll-up is written anyway and remembers the skipped keys (so they are neither
re-read every hour nor forgotten), and every evaluation whose window holds them lists them in
``skipped``. A roll-up that cannot be trusted is rebuilt from its batches, the source of truth.
Only S3 itself failing (``StorageError``) stops an evaluation, so that Lambda retries it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from mlops.domain import event_set
from mlops.domain.event_set import Digests, EventLedger
from mlops.domain.layout import sketch_prefix
from mlops.domain.sketch import (
    DEFAULT_MAX_UNSEEN,
    Sketch,
    SketchError,
    SketchPlan,
)
from mlops.domain.sketch_merge import merge_all
from mlops.errors import StorageError

_NOT_FOUND = frozenset({"404", "NoSuchKey", "NotFound"})
ROLLUP_SCHEMA = 2  # 2: bounded sketches, event digests, skipped keys remembered
# A batch sketch: ~10 kB usual; at most 10,000 events' digests (110 kB) and, per categorical
# feature, its baseline categories (validation allows 1,000) and K unseen names. A roll-up
# adds its batch keys (~110 bytes each). The digests: 8 bytes an event.
MAX_SKETCH_BYTES = 4 << 20
MAX_ROLLUP_BYTES = 16 << 20
MAX_EVENTS_BYTES = 64 << 20  # 8M events an hour
MAX_REMEMBERED = 100  # skipped keys a roll-up lists (all are counted)
_MERGE_EVERY = 32  # sketches held before they are merged (each up to ~200 kB with its samples)
READERS = 8  # concurrent GETs (botocore keeps 10 connections a client)
# The logger's invocations are retried for up to 6 hours (CloudWatch Logs' async delivery); an
# hour whose roll-up was written this long after its end holds every batch it ever will.
FINAL_AFTER = timedelta(hours=7)
_FINAL_CACHE_SIZE = 512  # final hours kept in memory (a roll-up's sketch: ~10-300 kB)


@dataclass
class SketchWindow:
    """The merged sketch of a window (None when no traffic) and how it was read."""

    sketch: Sketch | None
    hours: int
    batches: int = 0  # batch objects covered (through roll-ups or read now)
    objects_read: int = 0  # GETs this evaluation made
    bytes_read: int = 0
    rollups_written: int = 0
    rebuilt_hours: int = 0  # hours recounted from all their batches
    duplicates: int = 0  # redelivered batches whose events were all counted already
    skipped: list[dict[str, str]] = field(default_factory=list)  # key + reason
    skipped_count: int = 0  # may exceed len(skipped): a roll-up lists at most MAX_REMEMBERED
    # Each hour's merged sketch (hours with traffic), oldest first: per-hour estimates.
    hourly: list[tuple[datetime, Sketch]] = field(default_factory=list)

    def skip(self, key: str, reason: str) -> None:
        self.skipped.append({"key": key, "reason": reason})
        self.skipped_count += 1

    def note(self, body: bytes | str | None, size: int) -> None:
        """One GET made (None: the object was not there; still a request)."""
        self.objects_read += body is not None
        self.bytes_read += size

    def as_dict(self) -> dict[str, Any]:
        return {
            "hours": self.hours,
            "batches": self.batches,
            "objects_read": self.objects_read,
            "bytes_read": self.bytes_read,
            "rollups_written": self.rollups_written,
            "rebuilt_hours": self.rebuilt_hours,
            "duplicates": self.duplicates,
            "skipped": self.skipped[:50],
            "skipped_count": self.skipped_count,
        }


def hours_of(since: datetime, until: datetime) -> list[datetime]:
    """The whole UTC hours that start in ``[since, until)``, oldest first."""
    start = since.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    if start < since:
        start += timedelta(hours=1)
    out = []
    while start < until:
        out.append(start)
        start += timedelta(hours=1)
    return out


@dataclass(frozen=True)
class _Final:
    """An hour's reading, kept in memory: for good when the hour is final, else for a run."""

    sketch: Sketch | None
    batches: int
    duplicates: int
    skipped: list[dict[str, str]]
    skipped_count: int


@dataclass(frozen=True)
class _Reading:
    """What every read of one window checks against, and where it reports."""

    model: str
    version: str
    plan: SketchPlan
    max_unseen: int
    result: SketchWindow
    now: datetime


@dataclass
class _Rollup:
    batches: set[str]
    sketch: Sketch | None
    events: dict[str, Any]  # {"count": n, "sha256": hex} of the companion digests
    duplicates: int
    skipped: list[dict[str, str]]
    skipped_count: int
    final: bool
    doc: dict[str, Any]


@dataclass
class _Count:
    """An hour being counted: the running merge and what was left out."""

    max_unseen: int
    ledger: EventLedger
    merged: Sketch | None = None
    pending: list[Sketch] = field(default_factory=list)
    duplicates: int = 0
    skipped: list[dict[str, str]] = field(default_factory=list)
    skipped_count: int = 0
    overlapping: list[tuple[str, int]] = field(default_factory=list)

    def add(self, sketch: Sketch) -> None:
        self.pending.append(sketch)
        if len(self.pending) >= _MERGE_EVERY:
            self.flush()

    def flush(self) -> Sketch | None:
        parts = [self.merged, *self.pending] if self.merged is not None else self.pending
        if parts:
            self.merged = merge_all(parts, max_unseen=self.max_unseen)
        self.pending = []
        return self.merged

    def skip(self, key: str, reason: str) -> None:
        self.skipped_count += 1
        if len(self.skipped) < MAX_REMEMBERED:
            self.skipped.append({"key": key, "reason": reason})


class SketchStore:
    def __init__(self, bucket: str, s3: Any) -> None:
        self.bucket = bucket
        self._s3 = s3
        self._final: dict[tuple[str, ...], _Final] = {}  # final hours read, by partition
        self._run: dict[tuple[str, ...], _Final] | None = None  # inside ``run()``: every hour

    @contextmanager
    def run(self) -> Iterator[None]:
        """One evaluation run (an invocation of the drift evaluator): every hour read is kept
        until it ends, so the rollout judge reads production's hours the drift evaluation has
        just brought up to date without a request. Outside a run only final hours are kept."""
        self._run = {}
        try:
            yield
        finally:
            self._run = None

    def window(
        self,
        model: str,
        version: str,
        since: datetime,
        until: datetime,
        plan: SketchPlan,
        *,
        max_unseen: int = DEFAULT_MAX_UNSEEN,
        now: datetime | None = None,
    ) -> SketchWindow:
        """Every sketch of ``model`` v``version`` whose hour partition starts in
        ``[since, until)``, merged (at most ``max_unseen`` unseen names a feature); ``plan``
        is the version's baseline the sketches must be binned on; ``now`` decides which hours
        are final."""
        hours = hours_of(since, until)
        result = SketchWindow(sketch=None, hours=len(hours))
        moment = now if now is not None else datetime.now(UTC)
        reading = _Reading(model, version, plan, max_unseen, result, moment)
        parts: list[Sketch] = []
        for hour in hours:
            merged = self._hour(hour, reading)
            if merged is not None:
                parts.append(merged)
                result.hourly.append((hour, merged))
        result.sketch = merge_all(parts, max_unseen=max_unseen) if parts else None
        return result

    def _hour(self, hour: datetime, at: _Reading) -> Sketch | None:
        base = sketch_prefix(at.model, at.version)
        partition = f"dt={hour:%Y-%m-%d}/hour={hour:%H}"
        key = (self.bucket, base, partition, at.plan.fingerprint, str(at.max_unseen))
        known = self._final.get(key)
        if known is None and self._run is not None:
            known = self._run.get(key)
        if known is None:
            known = self._read_hour(hour, at, base, partition, key)
            if self._run is not None:
                self._run[key] = known
        return _reuse(known, at.result)

    def _read_hour(
        self, hour: datetime, at: _Reading, base: str, partition: str, key: tuple[str, ...]
    ) -> _Final:
        """The hour through its roll-up, brought up to date."""
        result = at.result
        final = at.now >= hour + timedelta(hours=1) + FINAL_AFTER
        batch_prefix = f"{base}{partition}/"
        rollup_key = f"{base}rollup/{partition}.json"
        events_key = f"{base}rollup/{partition}.events"
        rollup, found = self._read_rollup(rollup_key, batch_prefix, at)
        if rollup is not None and rollup.final:  # nothing can have arrived since: no LIST
            return self._remember(key, rollup)
        batch_keys = sorted(self._keys(batch_prefix))
        fresh = [k for k in batch_keys if rollup is None or k not in rollup.batches]
        if not fresh and (rollup is not None or not found):  # nothing new, nothing to repair
            if rollup is None:  # no traffic; kept when final (an empty hour has no roll-up)
                return self._keep(key, _NO_TRAFFIC) if final else _NO_TRAFFIC
            if final:  # once, so that it is never listed again
                self._put_json(rollup_key, rollup.doc | {"final": True})
                result.rollups_written += 1
                return self._remember(key, rollup)
            return _final_of(rollup)
        counted = None if rollup is None else self._read_events(events_key, rollup, result)
        if rollup is not None and counted is None:
            rollup = None  # its digests are lost: recount the hour from its batches
            fresh = batch_keys
        if rollup is None:
            count = _Count(at.max_unseen, EventLedger())
        else:
            count = _Count(
                at.max_unseen,
                EventLedger(counted),
                merged=rollup.sketch,
                duplicates=rollup.duplicates,
                skipped=list(rollup.skipped),
                skipped_count=rollup.skipped_count,
            )
        self._count(fresh, count, at)
        if count.overlapping:
            # A redelivery re-batched events across batches already counted: recount the hour
            # from all its batches, largest first, so that a batch holding others wins.
            result.rebuilt_hours += 1
            count = self._recount(batch_keys, at)
        merged = count.flush()
        covered = sorted((rollup.batches if rollup else set()) | set(fresh))
        self._write(rollup_key, events_key, at.plan, covered, count, final=final)
        result.rollups_written += 1
        return _Final(merged, len(covered), count.duplicates, count.skipped, count.skipped_count)

    def _remember(self, key: tuple[str, ...], rollup: _Rollup) -> _Final:
        return self._keep(key, _final_of(rollup))

    def _keep(self, key: tuple[str, ...], known: _Final) -> _Final:
        """Keep a final hour's reading for good (the oldest goes past the cache's size)."""
        if len(self._final) >= _FINAL_CACHE_SIZE:
            self._final.pop(next(iter(self._final)))
        self._final[key] = known
        return known

    def _count(self, keys: list[str], count: _Count, at: _Reading) -> None:
        """Read ``keys`` in order into ``count``, each once."""
        for key, body in self._bodies(keys, at.result):
            read = _parse_batch(key, body, at, count)
            if read is None:
                continue
            sketch, digests = read
            verdict, uncounted = count.ledger.admit(digests)
            if verdict == "merge":
                count.add(sketch)
            elif verdict == "duplicate":
                count.duplicates += 1
            else:
                count.overlapping.append((key, uncounted))

    def _recount(self, keys: list[str], at: _Reading) -> _Count:
        sizes: dict[str, int] = {}
        probe = _Count(at.max_unseen, EventLedger())
        for key, body in self._bodies(keys, at.result):  # first: how many events each holds
            read = _parse_batch(key, body, at, probe)
            if read is not None:
                sizes[key] = 0 if read[1] is None else int(read[1].size)
        count = _Count(at.max_unseen, EventLedger())
        order = sorted(sizes, key=lambda k: (-sizes[k], k))
        self._count(order, count, at)
        for key, reason in ((s["key"], s["reason"]) for s in probe.skipped):
            count.skip(key, reason)
        count.skipped_count += probe.skipped_count - len(probe.skipped)
        for key, uncounted in count.overlapping:
            count.skip(
                key,
                f"redelivered events overlap other batches in part: {uncounted} of its "
                "events not counted",
            )
        count.overlapping = []
        return count

    def _bodies(
        self, keys: list[str], result: SketchWindow
    ) -> Iterator[tuple[str, bytes | str | None]]:
        """Each key with its body (or why not), in order. GETs run ``READERS`` at a time (an
        hour after a flood holds thousands of batches: one at a time at 20-50 ms a GET would
        take minutes), ``_MERGE_EVERY`` keys at a time, so memory holds that many bodies."""
        with ThreadPoolExecutor(max_workers=READERS) as pool:
            for start in range(0, len(keys), _MERGE_EVERY):
                chunk = keys[start : start + _MERGE_EVERY]
                fetched = pool.map(lambda key: self._fetch(key, MAX_SKETCH_BYTES), chunk)
                for key, (body, size) in zip(chunk, fetched, strict=True):
                    result.note(body, size)
                    yield key, body

    def _read_rollup(
        self, key: str, batch_prefix: str, at: _Reading
    ) -> tuple[_Rollup | None, bool]:
        """The hour's roll-up, and whether there was an object at all (one that cannot be
        trusted is reported, then rebuilt)."""
        body = self._get(key, MAX_ROLLUP_BYTES, at.result)
        if body is None:
            return None, False
        try:
            if isinstance(body, str):
                raise ValueError(body)
            doc = _json(body)
            if not isinstance(doc, dict):
                raise ValueError(f"a roll-up is a JSON object, not {type(doc).__name__}")
            if doc.get("schema") != ROLLUP_SCHEMA or doc.get("baseline") != at.plan.fingerprint:
                raise ValueError("another schema or baseline")
            batches = doc["batches"]
            if not isinstance(batches, list) or not all(
                isinstance(k, str) and k.startswith(batch_prefix) for k in batches
            ):
                raise ValueError("batches must be keys of this hour")
            sketch = None if doc["sketch"] is None else Sketch.from_dict(doc["sketch"])
            if sketch is not None:
                at.plan.check(sketch, at.model, at.version)
            events = doc["events"]
            if not (
                isinstance(events, dict)
                and type(events.get("count")) is int
                and isinstance(events.get("sha256"), str)
            ):
                raise ValueError("events must name the count and sha256 of the digests")
            skipped = doc["skipped"]
            if not isinstance(skipped, list) or len(skipped) > MAX_REMEMBERED:
                raise ValueError("skipped must be a short list")
            remembered = [{"key": str(s["key"]), "reason": str(s["reason"])} for s in skipped]
            duplicates, skipped_count = doc["duplicates"], doc["skipped_count"]
            if type(duplicates) is not int or type(skipped_count) is not int:
                raise ValueError("duplicates and skipped_count must be counts")
            final = doc.get("final", False)
            if type(final) is not bool:
                raise ValueError("final must be true or false")
            rollup = _Rollup(
                set(batches),
                sketch,
                events,
                duplicates,
                remembered,
                max(0, skipped_count),
                final,
                doc,
            )
        except (ValueError, KeyError, TypeError, SketchError) as exc:
            # Rebuilt from the batches, which are the source of truth.
            at.result.skip(key, f"roll-up unreadable, rebuilt: {exc}"[:300])
            return None, True
        return rollup, True

    def _read_events(self, key: str, rollup: _Rollup, result: SketchWindow) -> Digests | None:
        expected = rollup.events
        if expected["count"] == 0:
            return event_set.empty()
        body = self._get(key, MAX_EVENTS_BYTES, result)
        try:
            if body is None or isinstance(body, str):
                raise ValueError(body or "missing")
            if hashlib.sha256(body).hexdigest() != expected["sha256"]:
                raise ValueError("not the digests its roll-up counted")
            digests = event_set.from_bytes(body, limit=MAX_EVENTS_BYTES // 8)
            if digests.size != expected["count"]:
                raise ValueError("not as many digests as its roll-up counted")
        except ValueError as exc:
            result.skip(key, f"counted events unreadable, hour rebuilt: {exc}"[:300])
            return None
        return digests

    def _write(
        self,
        rollup_key: str,
        events_key: str,
        plan: SketchPlan,
        batches: list[str],
        count: _Count,
        *,
        final: bool,
    ) -> None:
        """The digests first, then the roll-up naming them: a roll-up never points at digests
        that were not written (the other way round, the next read finds a sha256 mismatch and
        recounts)."""
        digests = count.ledger.counted()
        body = event_set.to_bytes(digests)
        if digests.size:
            self._put(events_key, body, "application/octet-stream")
        doc = {
            "schema": ROLLUP_SCHEMA,
            "baseline": plan.fingerprint,
            "batches": batches,
            "sketch": None if count.merged is None else count.merged.to_dict(),
            "events": {"count": int(digests.size), "sha256": hashlib.sha256(body).hexdigest()},
            "duplicates": count.duplicates,
            "skipped": count.skipped,
            "skipped_count": count.skipped_count,
            "final": final,
        }
        self._put_json(rollup_key, doc)

    def _put_json(self, key: str, doc: dict[str, Any]) -> None:
        self._put(key, json.dumps(doc, separators=(",", ":")).encode(), "application/json")

    def _keys(self, prefix: str) -> Iterator[str]:
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Prefix": prefix}
        while True:
            try:
                page = self._s3.list_objects_v2(**kwargs)
            except (ClientError, BotoCoreError) as exc:
                raise StorageError(f"cannot list s3://{self.bucket}/{prefix}: {exc}") from exc
            for item in page.get("Contents", []):
                if str(item["Key"]).endswith(".json"):
                    yield str(item["Key"])
            if not page.get("IsTruncated"):
                return
            kwargs["ContinuationToken"] = page["NextContinuationToken"]

    def _get(self, key: str, limit: int, result: SketchWindow) -> bytes | str | None:
        body, size = self._fetch(key, limit)
        result.note(body, size)
        return body

    def _fetch(self, key: str, limit: int) -> tuple[bytes | str | None, int]:
        """The object's bytes; None when it does not exist; a reason (str) when it is bigger
        than ``limit`` (never read whole: at most ``limit + 1`` bytes leave S3's stream).
        With the bytes read. Safe to call from several threads (boto3 clients are)."""
        try:
            response = self._s3.get_object(Bucket=self.bucket, Key=key)
            stream = response["Body"]
            try:
                size = int(response.get("ContentLength", 0))
                body = b"" if size > limit else bytes(stream.read(limit + 1))
            finally:
                stream.close()
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in _NOT_FOUND:
                return None, 0
            raise StorageError(f"cannot read s3://{self.bucket}/{key}: {exc}") from exc
        except BotoCoreError as exc:
            raise StorageError(f"cannot read s3://{self.bucket}/{key}: {exc}") from exc
        if size > limit or len(body) > limit:
            return f"{max(size, len(body)):,} bytes, above the {limit:,} read for it", len(body)
        return body, len(body)

    def _put(self, key: str, body: bytes, content_type: str) -> None:
        try:
            self._s3.put_object(Bucket=self.bucket, Key=key, Body=body, ContentType=content_type)
        except (ClientError, BotoCoreError) as exc:
            raise StorageError(f"cannot write s3://{self.bucket}/{key}: {exc}") from exc


def _parse_batch(
    key: str, body: bytes | str | None, at: _Reading, count: _Count
) -> tuple[Sketch, Digests | None] | None:
    """A batch document's sketch and event digests; None (and ``count`` told why) when it
    is gone, too big, or not a sketch of this version on its plan."""
    if body is None:
        return None
    if isinstance(body, str):
        count.skip(key, body)
        return None
    try:
        doc = _json(body)
        sketch = Sketch.from_dict(doc)
        at.plan.check(sketch, at.model, at.version)
        digests = None if doc.get("events") is None else event_set.decode(doc["events"])
    except (ValueError, SketchError) as exc:
        count.skip(key, f"not a sketch of this version: {exc}"[:300])
        return None
    return sketch, digests


def _json(body: bytes) -> Any:
    """``json.loads``, with nesting too deep for the parser reported as a ``ValueError``."""
    try:
        return json.loads(body)
    except RecursionError as exc:
        raise ValueError("nested too deep to be a sketch") from exc


_NO_TRAFFIC = _Final(None, 0, 0, [], 0)


def _final_of(rollup: _Rollup) -> _Final:
    return _Final(
        rollup.sketch,
        len(rollup.batches),
        rollup.duplicates,
        list(rollup.skipped),
        rollup.skipped_count,
    )


def _reuse(known: _Final, result: SketchWindow) -> Sketch | None:
    _remembered(known.skipped, known.skipped_count, result)
    result.duplicates += known.duplicates
    result.batches += known.batches
    return known.sketch


def _remembered(skipped: list[dict[str, str]], count: int, result: SketchWindow) -> None:
    result.skipped.extend(skipped)
    result.skipped_count += count
