"""The report on one training file: its checks, problems and stats, in words with the numbers.

``ReportBuilder`` collects what the checks of ``mlops.domain.dataset`` find, in report order,
and ``build`` makes the ``DataReport`` a person reads. The wording helpers at the end keep every
check's detail in one voice (``1,234 rows``, ``5%``, ``lines 2, 9``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from mlops.errors import Problem

MAX_REPORTED = 50
Status = Literal["pass", "warn", "fail"]


@dataclass(frozen=True)
class Check:
    """One named check of a training file and what it found, in words with the numbers."""

    name: str
    status: Status
    detail: str

    def as_dict(self) -> dict[str, str]:
        return {"name": self.name, "status": self.status, "detail": self.detail}


@dataclass(frozen=True)
class DataReport:
    """Everything checked on one training file, accepted or rejected.

    ``problems`` lists what is wrong, addressed by column (a required column missing from the
    header, a column over the missing-value limit) or by ``line N.column`` (an invalid cell;
    ``line N`` for a row with the wrong number of cells, N being the record's last physical
    line), at most ``MAX_REPORTED``; the summary and ``stats`` carry the full counts.
    """

    passed: bool
    summary: str
    checks: tuple[Check, ...]
    problems: tuple[Problem, ...]
    stats: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        """JSON-serialisable, with the same keys for every report."""
        return {
            "passed": self.passed,
            "summary": self.summary,
            "checks": [c.as_dict() for c in self.checks],
            "problems": [p.as_dict() for p in self.problems],
            "stats": self.stats,
        }


class EarlyCheckFailedError(Exception):
    """An early check failed: the checks after it cannot run."""


@dataclass
class ReportBuilder:
    stored_bytes: int
    sha256: str
    checks: list[Check] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    stats: dict[str, Any] = field(init=False)

    def __post_init__(self) -> None:
        # Every key is present in every report, rejected early or not.
        self.stats = {
            "bytes": self.stored_bytes,
            "uncompressed_bytes": None,
            "compression": None,
            "sha256": self.sha256,
            "rows_read": 0,
            "rows_used": 0,
            "rows_dropped": 0,
            "rows_invalid": 0,
            "duplicate_rows": 0,
            "columns": {},
            "class_counts": None,
        }

    def add(self, name: str, status: Status, detail: str) -> None:
        self.checks.append(Check(name, status, detail))

    def fail(self, name: str, detail: str) -> None:
        self.add(name, "fail", detail)

    def stop(self, name: str, detail: str) -> EarlyCheckFailedError:
        self.fail(name, detail)
        return EarlyCheckFailedError(detail)

    def build(self) -> DataReport:
        failed = [c.detail for c in self.checks if c.status == "fail"]
        warnings = sum(c.status == "warn" for c in self.checks)
        if failed:
            summary = "rejected: " + "; ".join(failed)
        else:
            used, dropped = self.stats["rows_used"], self.stats["rows_dropped"]
            summary = f"accepted: {used:,} rows"
            if dropped:
                summary += f" ({dropped:,} dropped for empty cells)"
            summary += f", {plural(warnings, 'warning')}" if warnings else ", no warnings"
        return DataReport(
            passed=not failed,
            summary=summary,
            checks=tuple(self.checks),
            problems=tuple(self.problems[:MAX_REPORTED]),
            stats=self.stats,
        )


# --- wording ---------------------------------------------------------------------------------


def line_numbers(first: list[int]) -> str:
    """``line 7`` or ``lines 2, 9, 16``: where the first few faults of a kind are."""
    return ("line " if len(first) == 1 else "lines ") + ", ".join(f"{n:,}" for n in first)


def percent(rate: float) -> str:
    return f"{100 * rate:.3g}%"


def plural(n: int, word: str, words: str | None = None) -> str:
    return f"{n:,} {word if n == 1 else (words or word + 's')}"


def show(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float | np.floating) else repr(value)


def listed(names: list[str]) -> str:
    """At most ``MAX_REPORTED`` names: a header of 30,000 columns must not make a 300 KB line."""
    more = len(names) - MAX_REPORTED
    return ", ".join(names[:MAX_REPORTED]) + (f" and {more} more" if more > 0 else "")
