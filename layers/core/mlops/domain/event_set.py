"""Which CloudWatch log events a batch sketch counts, so that a redelivery is counted once.

CloudWatch Logs may deliver log events again, batched differently: 10 events once, then the
same events as 5 + 5. The logger names its objects after the events they hold (the same
events, the same key, an overwrite), so a re-batched delivery writes new objects, and their
sketches would count the same rows a second time.

So each batch sketch records the events it counts, as a set of 64-bit digests of their event
ids, and an hourly roll-up keeps the union of the digests of the batches it merged. Merging a
batch into the hour (``EventLedger.admit``):

- none of its events counted yet: merged;
- all of them counted already (a redelivery re-batched inside what was counted): a duplicate,
  not merged, counted as such;
- some counted, some not (a redelivery re-batched across batches already counted): it cannot
  be split (a sketch counts rows, it cannot subtract some), so it is not merged and the caller
  recounts the hour from all its batches, largest first; what still overlaps then is skipped
  and listed with the number of its events left uncounted.

The key does not depend on batching (one object per event would be: thousands of objects an
hour); the digests do not depend on it, and cost 8 bytes an event (CloudWatch's ids are 56
digits). Two event ids of one hour share a digest with probability about n**2 / 2**65 (3e-8 at
a million events an hour); the cost of such a collision is a batch taken for a redelivery.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Iterable
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

Digests = npt.NDArray[np.uint64]
Verdict = Literal["merge", "duplicate", "overlap"]
DIGEST_BYTES = 8
MAX_BATCH_EVENTS = 100_000  # a subscription delivery holds at most 10,000 log events


def digests(event_ids: Iterable[str]) -> Digests:
    """The sorted, distinct 64-bit digests (blake2b) of ``event_ids``."""
    raw = b"".join(
        hashlib.blake2b(event_id.encode(), digest_size=DIGEST_BYTES).digest()
        for event_id in event_ids
    )
    return np.unique(np.frombuffer(raw, dtype="<u8").astype(np.uint64))


def empty() -> Digests:
    return np.zeros(0, dtype=np.uint64)


def to_bytes(values: Digests) -> bytes:
    """Little-endian bytes of sorted digests: a roll-up's companion object."""
    return values.astype("<u8").tobytes()


def from_bytes(raw: bytes, *, limit: int) -> Digests:
    """Digests written by ``to_bytes``; ``ValueError`` unless at most ``limit`` of them, whole
    and strictly increasing (as ``to_bytes`` of a set writes them)."""
    if len(raw) % DIGEST_BYTES or len(raw) > limit * DIGEST_BYTES:
        raise ValueError(f"{len(raw)} bytes are not at most {limit} whole 8-byte digests")
    values = np.frombuffer(raw, dtype="<u8").astype(np.uint64)
    if values.size > 1 and not bool(np.all(values[1:] > values[:-1])):
        raise ValueError("digests are not a sorted set")
    return values


def encode(values: Digests) -> str:
    """Digests as base64 text, for a JSON sketch document."""
    return base64.b64encode(to_bytes(values)).decode("ascii")


def decode(text: Any) -> Digests:
    """The digests of a sketch document's ``events``; ``ValueError`` for anything else."""
    if not isinstance(text, str) or len(text) > 4 * MAX_BATCH_EVENTS * DIGEST_BYTES // 3 + 4:
        raise ValueError("events must be base64 text of at most 100,000 digests")
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError) as exc:
        raise ValueError(f"events are not base64: {exc}") from exc
    return from_bytes(raw, limit=MAX_BATCH_EVENTS)


class EventLedger:
    """The events an hour has counted. ``admit`` says what to do with a batch, and counts its
    events when it is to be merged; the caller orders the batches (by key normally, largest
    first when recounting an hour)."""

    def __init__(self, counted: Digests | None = None) -> None:
        start = empty() if counted is None else counted
        self._seen: set[int] = set(start.tolist())
        self._parts = [start]

    def admit(self, batch: Digests | None) -> tuple[Verdict, int]:
        """``("merge", 0)`` when none of the batch's events is counted (or it does not say
        which events it holds: None), ``("duplicate", 0)`` when all are, and
        ``("overlap", n)`` when only some are, ``n`` being the events not counted elsewhere."""
        if batch is None or not batch.size:
            return "merge", 0
        values = batch.tolist()
        already = sum(1 for v in values if v in self._seen)
        if already == len(values):
            return "duplicate", 0
        if already:
            return "overlap", len(values) - already
        self._seen.update(values)
        self._parts.append(batch)
        return "merge", 0

    def counted(self) -> Digests:
        """Every counted digest, sorted."""
        return np.unique(np.concatenate(self._parts))

    def __len__(self) -> int:
        return len(self._seen)
