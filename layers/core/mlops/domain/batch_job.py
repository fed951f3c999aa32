"""A batch-scoring job: its identity, where its outputs go, and what its parts and summary say.

A job is one uploaded object (bucket, key and S3 version or ETag). Its id is derived from them,
so a redelivered notification or a retried invocation is the same job and writes the same keys
(an overwrite, never a duplicate), and Step Functions refuses a second execution of one name.
Outputs live under ``batch-output/<job id>/`` in the input's bucket:

    summary.json                       the job's summary (written last: its presence = done)
    job.json                           written when the job starts (engine, version)
    parts/part-<first row>.csv         predictions: row, [id], [prediction_id], prediction,
                                       probability_<class>… (classifiers), model_version
    parts/part-<first row>.json        that part's small summary (what ``summarize`` reads)
    parts/rejected-<first row>.csv     the part's rejected rows: row, [id], field, reason, code
    map-results/                       the Distributed Map's own result files (ResultWriter)

The first row (12 digits, zero-padded) names a part, so keys sort in file order and a retried
chunk or Map batch overwrites its own part.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from mlops.domain.batch_rows import Rejection, ValidChunk
from mlops.domain.layout import batch_output_prefix
from mlops.domain.scoring import Scores
from mlops.errors import InvalidEventError, Problem

JOB_SCHEMA = 1
LAMBDA = "lambda"
STEP_FUNCTIONS = "step-functions"
ENGINES = (LAMBDA, STEP_FUNCTIONS)
# Statuses of a summary: every row scored or rejected; some batches failed (their rows are
# neither); the file could not be scored at all (not a CSV, no model); the run broke off.
SUCCEEDED = "succeeded"
PARTIAL = "partial"
REJECTED = "rejected"
FAILED = "failed"
_NAME_CHARS = re.compile(r"[^A-Za-z0-9_.-]+")
_STEM_CHARS = 40
ROW_DIGITS = 12
METADATA_VERSION = "mlops-version"  # x-amz-meta-mlops-version: the model version to score with
METADATA_ID_COLUMN = "mlops-id-column"  # x-amz-meta-mlops-id-column: echoed in the output


def job_id_for(key: str, revision: str) -> str:
    """``<file stem>-<12 hex digits>`` from the key and the object's version id (or ETag): a
    valid Step Functions execution name (≤ 80 characters of ``[A-Za-z0-9_.-]``)."""
    stem = key.rsplit("/", 1)[-1]
    for suffix in (".csv", ".CSV", ".txt"):
        stem = stem.removesuffix(suffix)
    stem = _NAME_CHARS.sub("_", stem).strip("._-")[:_STEM_CHARS] or "job"
    digest = hashlib.sha256(f"{key}\n{revision}".encode("utf-8", "surrogatepass")).hexdigest()
    return f"{stem}-{digest[:12]}"


@dataclass(frozen=True)
class BatchJob:
    """What every step of a job needs (the Distributed Map's ``BatchInput`` carries it)."""

    job_id: str
    bucket: str
    key: str
    etag: str
    version_id: str | None
    size: int
    model: str
    model_version: str
    engine: str
    started_ms: int
    id_column: str | None = None

    @property
    def output_prefix(self) -> str:
        return batch_output_prefix(self.job_id)

    @property
    def summary_key(self) -> str:
        return f"{self.output_prefix}summary.json"

    @property
    def marker_key(self) -> str:
        return f"{self.output_prefix}job.json"

    @property
    def parts_prefix(self) -> str:
        return f"{self.output_prefix}parts/"

    @property
    def map_results_prefix(self) -> str:
        return f"{self.output_prefix}map-results"

    def part_key(self, first_row: int, kind: str = "part", suffix: str = ".csv") -> str:
        return f"{self.parts_prefix}{kind}-{first_row:0{ROW_DIGITS}d}{suffix}"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self) | {
            "schema": JOB_SCHEMA,
            "output_prefix": self.output_prefix,
            "map_results_prefix": self.map_results_prefix,
        }

    @classmethod
    def from_dict(cls, raw: Any) -> BatchJob:
        """A job back from an event (``BatchInput``, ``summarize``); ``InvalidEventError``
        naming every bad field."""
        if not isinstance(raw, Mapping):
            raise InvalidEventError("a batch job must be an object", [Problem("job", "missing")])
        problems: list[Problem] = []
        texts = ("job_id", "bucket", "key", "etag", "model", "model_version", "engine")
        for name in texts:
            if not isinstance(raw.get(name), str) or not raw[name]:
                problems.append(Problem(f"job.{name}", "expected a non-empty string"))
        for name in ("size", "started_ms"):
            value = raw.get(name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                problems.append(Problem(f"job.{name}", "expected a non-negative integer"))
        for name in ("version_id", "id_column"):
            if raw.get(name) is not None and not isinstance(raw[name], str):
                problems.append(Problem(f"job.{name}", "expected a string or null"))
        if raw.get("engine") not in ENGINES:
            problems.append(Problem("job.engine", f"expected one of {', '.join(ENGINES)}"))
        if isinstance(raw.get("job_id"), str) and _NAME_CHARS.search(raw["job_id"]):
            problems.append(Problem("job.job_id", "expected [A-Za-z0-9_.-] only"))
        if problems:
            raise InvalidEventError("not a batch job", problems)
        return cls(
            job_id=raw["job_id"],
            bucket=raw["bucket"],
            key=raw["key"],
            etag=raw["etag"],
            version_id=raw.get("version_id"),
            size=raw["size"],
            model=raw["model"],
            model_version=raw["model_version"],
            engine=raw["engine"],
            started_ms=raw["started_ms"],
            id_column=raw.get("id_column"),
        )


@dataclass
class PartSummary:
    """One chunk (or Map batch): its rows and where they went. Small: ``summarize`` reads one
    per part, never the predictions."""

    first_row: int
    rows: int = 0
    scored: int = 0
    rejected: int = 0  # rows
    problems: dict[str, int] = field(default_factory=dict)  # by reason code
    part_key: str | None = None
    rejected_key: str | None = None
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> PartSummary:
        return cls(
            first_row=int(raw["first_row"]),
            rows=int(raw["rows"]),
            scored=int(raw["scored"]),
            rejected=int(raw["rejected"]),
            problems={str(k): int(v) for k, v in dict(raw.get("problems") or {}).items()},
            part_key=raw.get("part_key"),
            rejected_key=raw.get("rejected_key"),
            seconds=float(raw.get("seconds") or 0.0),
        )


@dataclass
class Totals:
    """What a job's parts add up to."""

    rows: int = 0
    scored: int = 0
    rejected: int = 0
    parts: int = 0
    problems: Counter[str] = field(default_factory=Counter)
    rejected_reports: int = 0

    def add(self, part: PartSummary) -> None:
        self.rows += part.rows
        self.scored += part.scored
        self.rejected += part.rejected
        self.parts += 1
        self.problems.update(part.problems)
        self.rejected_reports += part.rejected_key is not None


def totals_of(parts: Iterable[PartSummary]) -> Totals:
    totals = Totals()
    for part in parts:
        totals.add(part)
    return totals


def summary_document(
    job: BatchJob,
    totals: Totals,
    *,
    status: str,
    finished_ms: int,
    error: str | None = None,
    problems: list[Problem] | None = None,
    timings: Mapping[str, float] | None = None,
    failed_batches: int = 0,
) -> dict[str, Any]:
    """``summary.json``: a person's answer to "what happened to my file"."""
    return {
        "schema": JOB_SCHEMA,
        "job_id": job.job_id,
        "status": status,
        "engine": job.engine,
        "input": {
            "bucket": job.bucket,
            "key": job.key,
            "etag": job.etag,
            "version_id": job.version_id,
            "size": job.size,
        },
        "model": job.model,
        "model_version": job.model_version,
        "id_column": job.id_column,
        "rows": totals.rows,
        "scored": totals.scored,
        "rejected": totals.rejected,
        "rejected_by_reason": dict(sorted(totals.problems.items())),
        "parts": totals.parts,
        "failed_batches": failed_batches,
        "output_prefix": f"s3://{job.bucket}/{job.output_prefix}",
        "predictions": f"s3://{job.bucket}/{job.parts_prefix}part-*.csv",
        "rejected_rows": (
            f"s3://{job.bucket}/{job.parts_prefix}rejected-*.csv"
            if totals.rejected_reports
            else None
        ),
        "error": error,
        "problems": [p.as_dict() for p in problems or []],
        "started_ms": job.started_ms,
        "finished_ms": finished_ms,
        "seconds": round(max(finished_ms - job.started_ms, 0) / 1000, 3),
        "timings": {k: round(v, 3) for k, v in (timings or {}).items()},
    }


# --- part files -------------------------------------------------------------------------------


def predictions_csv(
    chunk: ValidChunk,
    scores: Scores,
    model_version: str,
    id_column: str | None,
    prediction_ids: list[str] | None = None,
) -> str:
    """The valid rows' predictions, one CSV line each, with a header; with ``prediction_ids``
    (the rows are captured) a ``prediction_id`` column, the key ``/feedback`` takes."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    head = ["row"] + ([id_column] if id_column else [])
    if prediction_ids is not None:
        head.append("prediction_id")
    classes = [str(c) for c in scores.classes]
    writer.writerow(
        head + ["prediction"] + [f"probability_{c}" for c in classes] + ["model_version"]
    )
    valid = chunk.valid
    rows = chunk.rows[valid].tolist()
    columns: list[Any] = [rows]
    if id_column:
        columns.append([i for i, ok in zip(chunk.ids, valid.tolist(), strict=True) if ok])
    if prediction_ids is not None:
        columns.append(prediction_ids)
    columns.append(scores.values)
    if scores.probabilities is not None:
        # float32 probabilities at 6 decimals, as /predict answers them.
        columns.extend(
            [f"{p:.6f}" for p in scores.probabilities[:, j].tolist()] for j in range(len(classes))
        )
    columns.append([model_version] * len(rows))
    writer.writerows(zip(*columns, strict=True))
    return out.getvalue()


def rejections_csv(rejections: list[Rejection], ids: Mapping[int, str] | None) -> str:
    """A part's rejected rows: one line per problem (a row with two bad fields has two)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["row"] + (["id"] if ids is not None else []) + ["field", "reason", "code"])
    for r in rejections:
        ident = [ids.get(r.row, "")] if ids is not None else []
        writer.writerow([r.row, *ident, r.field, r.reason, r.code])
    return out.getvalue()


def problem_counts(rejections: Iterable[Rejection]) -> dict[str, int]:
    return dict(Counter(r.code for r in rejections))
