"""Reports are strict JSON: what browsers, jq, Athena and CloudWatch parse."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from typing import Any

import numpy as np

from mlops.domain import strict_json


def refuse(constant: str) -> Any:
    raise ValueError(constant)


def test_non_finite_numbers_anywhere_are_written_as_null() -> None:
    # Given a report with NaN and infinities nested in dicts, lists and tuples (numpy's too)
    doc = {
        "value": math.inf,
        "metrics": {"rmse": np.float64("inf"), "r2": math.nan, "mae": 1.5},
        "over_time": [{"value": -math.inf}, {"value": 2}],
        "pair": (math.nan, 3),
        "at": datetime(2026, 12, 7, tzinfo=UTC),
    }
    # When it is written
    text = strict_json.dumps(doc)
    # Then a strict parser reads it, every non-finite value null, the rest as it was
    assert json.loads(text, parse_constant=refuse) == {
        "value": None,
        "metrics": {"rmse": None, "r2": None, "mae": 1.5},
        "over_time": [{"value": None}, {"value": 2}],
        "pair": [None, 3],
        "at": "2026-12-07 00:00:00+00:00",
    }
    assert doc["value"] == math.inf  # the caller's document is left alone
