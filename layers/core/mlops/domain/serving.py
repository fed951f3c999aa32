"""What a rollout is judged on, as a mergeable digest of serving traffic (DESIGN §6, cost model).

A rollout's judge needs, per variant (production, canary, shadow): how many rows were served
and with a usable prediction, how many of the candidate's attempts failed (production answered
instead), when it first served, the latency of its requests (p50/p95), and its answers (the
shadow's disagreement with production on the same requests; the prediction PSI). Reading every
capture since the rollout began made that cost follow traffic. Instead the prediction logger
adds a ``Serving`` digest per variant to each batch sketch, the sketch roll-ups merge them, and
the judge reads one roll-up an hour: O(hours), whatever the traffic.

Counts merge exactly. Latencies and answers are **bottom-K samples**: the ``SAMPLE_SIZE``
requests (latency) and prediction ids (answers) with the smallest 52-bit hash. The bottom K of
a union is the bottom K of its parts' bottom Ks, so merging is exact and independent of how
traffic was batched; a request or id delivered twice has one hash and is kept once; below K
values the sample is the whole population; above it, a uniform sample (the hash does not
depend on the value). The answers of production and of its shadow share prediction ids, so
both keep the *same* ids: the pairs for disagreement survive sampling.

Reading a document (``Serving.from_dict``) refuses what the builder cannot have written:
counts outside 0..``MAX_COUNT``, more usable predictions or failures than rows, a sample larger
than K or than its population, hashes out of range or not strictly increasing, a latency that
is not a finite number of milliseconds in range, an answer that is not a finite number
(regression) or a short label (classification).
"""

from __future__ import annotations

import hashlib
import heapq
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from mlops.domain.names import PRODUCTION

SAMPLE_SIZE = 2048  # K: a p95 of 50k requests estimated within 5 % (tests/unit/test_serving.py)
HASH_BITS = 52  # exact in a float64 (JSON readers)
MAX_COUNT = 2**53 - 1
MAX_LATENCY_MS = 1e9
MAX_LABEL_CHARS = 64
MAX_FAILED_NAMES = 8  # candidate versions named in failures, per digest
MAX_TIMESTAMP_MS = 253_402_300_799_999
PRODUCTION_VARIANT = PRODUCTION  # rows served by the alias itself (no variant)
_FLOAT_MAX = 1.7976931348623157e308


def is_number(value: Any) -> bool:
    """A finite int or float, not a bool. Exact types first: this runs on every row."""
    kind = type(value)
    if kind is float:
        return bool(value - value == 0.0)  # NaN and infinities give NaN
    if kind is int:
        return bool(-_FLOAT_MAX <= value <= _FLOAT_MAX)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # an int beyond float64
        return False


def usable_prediction(task: str) -> Callable[[Any], bool]:
    """Whether a captured prediction counts as an answer (a NaN output is captured null)."""
    if task == "regression":
        return is_number
    return lambda value: value is not None and not isinstance(value, dict | list)


def id_hash(text: str) -> int:
    """The 52-bit hash a sample is ordered by: the same text, the same hash, everywhere."""
    digest = hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "big") >> (64 - HASH_BITS)


@dataclass(frozen=True)
class Serving:
    """One variant's serving traffic (of one version, over a batch, an hour or a window)."""

    rows: int
    predictions: int  # rows with a usable prediction
    # Production rows whose candidate failed, by the candidate version they name ("" when they
    # name none: counted against any candidate). At most MAX_FAILED_NAMES names, the largest.
    failed: dict[str, int]
    first_ts: int | None  # earliest row (ms)
    first_failed_ts: int | None  # earliest failed row (ms)
    latencies: tuple[tuple[int, float], ...]  # (request hash, ms), bottom K by hash
    answers: tuple[tuple[int, Any], ...]  # (prediction id hash, prediction), bottom K by hash

    def failed_for(self, version: str) -> int:
        """Failures that count against candidate ``version``."""
        return self.failed.get("", 0) + (self.failed.get(version, 0) if version else 0)

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "predictions": self.predictions,
            "failed": dict(self.failed),
            "first_ts": self.first_ts,
            "first_failed_ts": self.first_failed_ts,
            "latency_hashes": [h for h, _ in self.latencies],
            "latency_ms": [v for _, v in self.latencies],
            "answer_hashes": [h for h, _ in self.answers],
            "answers": [v for _, v in self.answers],
        }

    @classmethod
    def from_dict(cls, raw: Any, *, task: str) -> Serving:
        """Read a digest; ``ValueError``/``TypeError``/``KeyError`` for anything the builder
        cannot have written (see the module's docstring)."""
        if not isinstance(raw, Mapping):
            raise TypeError(f"a serving digest is a JSON object, not {type(raw).__name__}")
        rows, predictions = _count(raw["rows"]), _count(raw["predictions"])
        if predictions > rows:
            raise ValueError(f"{predictions} usable predictions of {rows} rows")
        failed_raw = raw["failed"]
        if not isinstance(failed_raw, Mapping) or len(failed_raw) > MAX_FAILED_NAMES:
            raise ValueError("failed must map at most a few candidate versions to counts")
        failed = {_label(k): _count(v) for k, v in failed_raw.items()}
        if sum(failed.values()) > rows:
            raise ValueError("more failed rows than rows")
        latencies = _pairs(raw["latency_hashes"], raw["latency_ms"], rows, _latency)
        usable = usable_prediction(task)

        def answer(value: Any) -> Any:
            if not usable(value) or (isinstance(value, str) and len(value) > MAX_LABEL_CHARS):
                raise ValueError("an answer is a finite number or a short label")
            return float(value) if task == "regression" else value

        answers = _pairs(raw["answer_hashes"], raw["answers"], predictions, answer)
        return cls(
            rows=rows,
            predictions=predictions,
            failed=failed,
            first_ts=_timestamp(raw["first_ts"], rows > 0),
            first_failed_ts=_timestamp(raw["first_failed_ts"], sum(failed.values()) > 0),
            latencies=latencies,
            answers=answers,
        )


def build(rows: Iterable[Mapping[str, Any]], *, task: str) -> dict[str, Serving]:
    """Each variant's digest of capture rows (``capture.capture_rows``) of one version."""
    usable = usable_prediction(task)
    parts: dict[str, _Builder] = {}
    for row in rows:
        variant = row.get("variant")
        name = variant if isinstance(variant, str) and variant else PRODUCTION_VARIANT
        part = parts.get(name)
        if part is None:
            part = parts[name] = _Builder()
        part.add(row, usable)
    return {name: part.digest() for name, part in sorted(parts.items())}


def merge(parts: Iterable[Serving]) -> Serving:
    """The digest of all the parts' rows (exact; see the module's docstring)."""
    items = list(parts)
    failed: dict[str, int] = {}
    for part in items:
        for name, n in part.failed.items():
            failed[name] = failed.get(name, 0) + n
    firsts = [p.first_ts for p in items if p.first_ts is not None]
    failed_firsts = [p.first_failed_ts for p in items if p.first_failed_ts is not None]
    return Serving(
        rows=sum(p.rows for p in items),
        predictions=sum(p.predictions for p in items),
        failed=_largest(failed),
        first_ts=min(firsts) if firsts else None,
        first_failed_ts=min(failed_firsts) if failed_firsts else None,
        latencies=_bottom(v for p in items for v in p.latencies),
        answers=_bottom(v for p in items for v in p.answers),
    )


def merge_variants(parts: Iterable[Mapping[str, Serving]]) -> dict[str, Serving]:
    """Variant by variant, ``merge`` of several documents' digests."""
    grouped: dict[str, list[Serving]] = {}
    for part in parts:
        for name, digest in part.items():
            grouped.setdefault(name, []).append(digest)
    return {name: merge(group) for name, group in sorted(grouped.items())}


EMPTY = Serving(0, 0, {}, None, None, (), ())


class _Builder:
    def __init__(self) -> None:
        self.rows = self.predictions = 0
        self.failed: dict[str, int] = {}
        self.first_ts: int | None = None
        self.first_failed_ts: int | None = None
        self.latencies: dict[int, float] = {}
        self.answers: dict[int, Any] = {}

    def add(self, row: Mapping[str, Any], usable: Callable[[Any], bool]) -> None:
        self.rows += 1
        ts = row.get("ts")
        stamp = ts if type(ts) is int and 0 <= ts <= MAX_TIMESTAMP_MS else None
        if stamp is not None and (self.first_ts is None or stamp < self.first_ts):
            self.first_ts = stamp
        if isinstance(row.get("candidate_error"), str):
            named = row.get("candidate_version")
            name = named[:MAX_LABEL_CHARS] if isinstance(named, str) else ""
            self.failed[name] = self.failed.get(name, 0) + 1
            if stamp is not None and (self.first_failed_ts is None or stamp < self.first_failed_ts):
                self.first_failed_ts = stamp
        pid, request = row.get("prediction_id"), row.get("request_id")
        raw: Any = row.get("latency_ms")
        # One latency a request: its rows (one per instance) share the request id.
        if is_number(raw) and 0 <= raw <= MAX_LATENCY_MS:
            key = request if isinstance(request, str) else f"row:{pid}"
            h, ms = id_hash(key), float(raw)
            if h not in self.latencies or ms < self.latencies[h]:
                self.latencies[h] = ms
        prediction = row.get("prediction")
        if usable(prediction):
            self.predictions += 1
            if isinstance(pid, str):
                kept = prediction[:MAX_LABEL_CHARS] if isinstance(prediction, str) else prediction
                h = id_hash(pid)
                if h not in self.answers or _order(kept) < _order(self.answers[h]):
                    self.answers[h] = kept

    def digest(self) -> Serving:
        if self.first_ts is None and self.rows:
            self.first_ts = 0  # rows without a usable timestamp: "long ago" (never in the bake)
        return Serving(
            rows=self.rows,
            predictions=self.predictions,
            failed=_largest(self.failed),
            first_ts=self.first_ts,
            first_failed_ts=self.first_failed_ts
            if self.first_failed_ts is not None or not self.failed
            else 0,
            latencies=_bottom(self.latencies.items()),
            answers=_bottom(self.answers.items()),
        )


def _bottom(items: Iterable[tuple[int, Any]]) -> tuple[tuple[int, Any], ...]:
    """The SAMPLE_SIZE smallest hashes, ascending, each once: with the smallest of its values
    (a request's rows, an id delivered twice, have one value; the rule only makes the result
    independent of the order the values come in)."""
    unique: dict[int, Any] = {}
    for h, value in items:
        if h not in unique or _order(value) < _order(unique[h]):
            unique[h] = value
    return tuple(heapq.nsmallest(SAMPLE_SIZE, unique.items(), key=lambda item: item[0]))


def _order(value: Any) -> tuple[str, Any]:
    return (type(value).__name__, value)


def _largest(counts: Mapping[str, int]) -> dict[str, int]:
    if len(counts) <= MAX_FAILED_NAMES:
        return dict(sorted(counts.items()))
    kept = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:MAX_FAILED_NAMES]
    return dict(sorted(kept))


def _pairs(
    hashes: Any, values: Any, population: int, read: Callable[[Any], Any]
) -> tuple[tuple[int, Any], ...]:
    if not isinstance(hashes, list) or not isinstance(values, list) or len(hashes) != len(values):
        raise ValueError("a sample is two lists of equal length")
    if len(hashes) > min(SAMPLE_SIZE, population):
        raise ValueError(f"a sample of {len(hashes)} is larger than K or its population")
    previous = -1
    out = []
    for h, value in zip(hashes, values, strict=True):
        if type(h) is not int or not previous < h < 2**HASH_BITS:
            raise ValueError("sample hashes are increasing 52-bit integers")
        previous = h
        out.append((h, read(value)))
    return tuple(out)


def _latency(value: Any) -> float:
    if not is_number(value) or not 0 <= value <= MAX_LATENCY_MS:
        raise ValueError("a latency is a finite number of milliseconds")
    return float(value)


def _count(value: Any) -> int:
    if type(value) is not int or not 0 <= value <= MAX_COUNT:
        raise ValueError(f"a count is an integer from 0 to 2**53-1, not {str(value)[:30]!r}")
    return value


def _label(value: Any) -> str:
    if not isinstance(value, str) or len(value) > MAX_LABEL_CHARS:
        raise ValueError("a version name is a short string")
    return value


def _timestamp(value: Any, present: bool) -> int | None:
    if value is None and not present:
        return None
    if type(value) is not int or not 0 <= value <= MAX_TIMESTAMP_MS or not present:
        raise ValueError("a timestamp is given exactly when there are rows, in ms")
    return value
